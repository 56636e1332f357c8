/*
 * stream.c - the /v1/stream query and the event producer (see stream.h).
 */
#include "stream.h"

#include "text.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Parses a comma-separated collection list into a mask; false when a name
 * is empty or not a collection. */
static bool stream_kinds_parse(const char *list, unsigned *kinds)
{
    unsigned mask = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char name[32];
        facts_kind kind;
        if (len == 0 || len >= sizeof name)
            return false;
        memcpy(name, p, len);
        name[len] = '\0';
        if (facts_kind_from_collection(name, &kind) != FACTS_OK)
            return false;
        mask |= 1u << kind;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *kinds = mask;
    return true;
}

size_t factsd_stream_query_parse(const char *query, size_t len, const char *header,
                                 factsd_stream_query *q, factsd_problem_param *bad,
                                 size_t cap)
{
    q->resume = false;
    q->last = 0;
    q->kinds = 0;
    bool seen_collection = false, seen_last = false;
    size_t nbad = 0, count = 0, pos = 0;
    long long v = 0;
    factsd_query_param p;
    while (factsd_problem_query_next(query, len, &pos, &count, &p, bad, cap, &nbad)) {
        const char *name = p.name, *value = p.value;
        bool value_ok = p.value_ok;
        const char *again = "given more than once";
        if (strcmp(name, "collection") == 0) {
            if (seen_collection || !value_ok || !stream_kinds_parse(value, &q->kinds))
                nbad = factsd_problem_param_add(
                    bad, cap, nbad, "collection",
                    seen_collection ? again
                                    : "expected a comma-separated list of actors, events, "
                                      "troop-estimates, sources");
            seen_collection = true;
        } else if (strcmp(name, "last-event-id") == 0) {
            if (seen_last || !value_ok || !factsd_text_parse_int(value, 0, INT64_MAX, &v)) {
                nbad = factsd_problem_param_add(
                    bad, cap, nbad, "last-event-id",
                    seen_last ? again : "expected a revision: a whole number >= 0");
            } else {
                q->resume = true;
                q->last = (uint64_t)v;
            }
            seen_last = true;
        } else if (strcmp(name, "pretty") != 0) {
            nbad = factsd_problem_param_add(bad, cap, nbad, name[0] != '\0' ? name : "query",
                                            "not a parameter of this resource");
        }
    }
    if (header != NULL) {
        /* EventSource sends back the last id it saw; an empty one means
         * none. Whitespace around a field value is not part of it. */
        char id[24];
        size_t hlen = strlen(header);
        while (hlen > 0 && (header[0] == ' ' || header[0] == '\t')) {
            header++;
            hlen--;
        }
        while (hlen > 0 && (header[hlen - 1] == ' ' || header[hlen - 1] == '\t'))
            hlen--;
        bool fits = hlen < sizeof id;
        if (fits) {
            memcpy(id, header, hlen);
            id[hlen] = '\0';
        }
        if (hlen == 0) {
            /* keep the query's position, if any */
        } else if (!fits || !factsd_text_parse_int(id, 0, INT64_MAX, &v)) {
            nbad = factsd_problem_param_add(bad, cap, nbad, "Last-Event-ID",
                                            "expected a revision: a whole number >= 0");
        } else {
            q->resume = true;
            q->last = (uint64_t)v;
        }
    }
    return nbad;
}

void factsd_stream_init(factsd_stream *s, uint64_t cursor, unsigned kinds)
{
    memset(s, 0, sizeof *s);
    s->cursor = cursor;
    s->kinds = kinds;
}

void factsd_stream_release(factsd_stream *s)
{
    facts_history_entry_unref(s->entry);
    s->entry = NULL;
}

/* Whether the stream's filter lets entry e through: changes of a wanted
 * collection, and every entry that names none (a reload). */
static bool stream_wants(const factsd_stream *s, const facts_history_entry *e)
{
    if (s->kinds == 0)
        return true;
    const char *coll = json_string_value(json_object_get(facts_history_entry_json(e),
                                                         "collection"));
    facts_kind kind;
    if (coll == NULL || facts_kind_from_collection(coll, &kind) != FACTS_OK)
        return true;
    return (s->kinds & (1u << kind)) != 0;
}

/* Sets the literal piece from a format; it always fits (the callers'
 * texts are short). */
static void stream_lit_set(factsd_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void stream_lit_set(factsd_stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(s->lit, sizeof s->lit, fmt, ap);
    va_end(ap);
    s->lit_len = w < 0 ? 0 : (size_t)w < sizeof s->lit ? (size_t)w : sizeof s->lit - 1;
    s->lit_off = 0;
}

/* Sets up the next piece to write; false when there is nothing to send. */
static bool stream_next(factsd_stream *s, facts_history *h)
{
    if (!s->started) {
        s->started = true;
        /* The id line gives a client its position before any change comes:
         * reconnecting, it resumes from there instead of from a later
         * "now". (A block with no data dispatches no event.) */
        stream_lit_set(s, "retry: %d\nid: %" PRIu64 "\n: revision %" PRIu64 "\n\n",
                       FACTSD_STREAM_RETRY_MS, s->cursor, facts_history_latest(h));
        s->sent_id = s->cursor;
        return true;
    }
    for (;;) {
        facts_history_entry *e = NULL;
        size_t k = 0;
        uint64_t latest = 0, oldest = 0;
        facts_status st = facts_history_since(h, s->cursor, 1, &e, &k, &latest, &oldest);
        if (st == FACTS_EGONE) {
            /* At the start the client's Last-Event-ID is outside the
             * history: it reloads and the stream goes on. Later the reader
             * fell behind what the history keeps: it is dropped. */
            stream_lit_set(s,
                           "event: reset\nid: %" PRIu64 "\ndata: {\"revision\":%" PRIu64
                           ",\"detail\":\"the changes after revision %" PRIu64
                           " are not available: reload the collections, then follow the "
                           "changes after revision %" PRIu64 "%s\"}\n\n",
                           latest, latest, s->cursor, latest,
                           s->sent_event ? " (this stream fell behind and ends here)" : "");
            s->ending = s->sent_event;
            s->sent_event = true;
            s->cursor = s->sent_id = latest;
            return true;
        }
        if (k == 0) {
            if (!s->heartbeat_due)
                return false;
            s->heartbeat_due = false;
            if (s->cursor != s->sent_id) {
                /* Changes the filter skipped moved the position. */
                stream_lit_set(s, ": heartbeat\nid: %" PRIu64 "\n\n", s->cursor);
                s->sent_id = s->cursor;
            } else {
                stream_lit_set(s, ": heartbeat\n\n");
            }
            return true;
        }
        uint64_t rev = facts_history_entry_revision(e);
        s->cursor = rev;
        if (!stream_wants(s, e)) {
            facts_history_entry_unref(e);
            continue;
        }
        stream_lit_set(s, "id: %" PRIu64 "\ndata: ", rev);
        s->sent_id = rev;
        s->entry = e;
        s->entry_off = 0;
        s->tail_off = 0;
        s->sent_event = true;
        return true;
    }
}

/* Copies up to max - *out bytes of src[*off..len) into buf + *out. */
static void stream_copy(char *buf, size_t max, size_t *out, const char *src, size_t len,
                        size_t *off)
{
    size_t room = max - *out, left = len - *off;
    size_t take = left < room ? left : room;
    memcpy(buf + *out, src + *off, take);
    *out += take;
    *off += take;
}

factsd_stream_state factsd_stream_produce(factsd_stream *s, facts_history *h, char *buf,
                                         size_t max, size_t *n)
{
    size_t out = 0;
    for (;;) {
        if (s->lit_off < s->lit_len)
            stream_copy(buf, max, &out, s->lit, s->lit_len, &s->lit_off);
        if (s->lit_off == s->lit_len && s->entry != NULL) {
            size_t len = 0;
            const char *text = facts_history_entry_text(s->entry, &len);
            stream_copy(buf, max, &out, text, len, &s->entry_off);
            if (s->entry_off == len) {
                stream_copy(buf, max, &out, "\n\n", 2, &s->tail_off);
                if (s->tail_off == 2)
                    factsd_stream_release(s);
            }
        }
        if (out == max) {
            *n = out;
            return FACTSD_STREAM_MORE;
        }
        /* Everything set up so far is out. */
        if (s->ending) {
            *n = out;
            return out > 0 ? FACTSD_STREAM_MORE : FACTSD_STREAM_END;
        }
        if (!stream_next(s, h)) {
            *n = out;
            return FACTSD_STREAM_IDLE;
        }
    }
}
