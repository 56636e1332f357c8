/*
 * feed.c - change entries, the /v1/changes query and its answer (see
 * feed.h).
 */
#include "feed.h"

#include "text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void factsd_feed_time_now(char *out, size_t size)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    struct tm tm;
    gmtime_r(&t.tv_sec, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03ldZ", day, t.tv_nsec / 1000000);
}

/* Sets obj[key] to the string value unless value is NULL; false when
 * memory runs out. */
static bool feed_string_set(json_t *obj, const char *key, const char *value)
{
    if (value == NULL)
        return true;
    json_t *s = json_string(value);
    return s != NULL && json_object_set_new(obj, key, s) == 0;
}

json_t *factsd_feed_entry_new(uint64_t revision, const char *op, const char *collection,
                              const char *id, const char *slug, const char *record,
                              size_t record_len)
{
    return factsd_feed_entry_at(NULL, revision, op, collection, id, slug, record, record_len);
}

json_t *factsd_feed_entry_at(const char *time, uint64_t revision, const char *op,
                             const char *collection, const char *id, const char *slug,
                             const char *record, size_t record_len)
{
    char when[40];
    if (time != NULL)
        snprintf(when, sizeof when, "%s", time);
    else
        factsd_feed_time_now(when, sizeof when);
    json_t *e = json_object();
    if (e == NULL)
        return NULL;
    json_t *rev = json_integer((json_int_t)revision);
    bool ok = rev != NULL && json_object_set_new(e, "revision", rev) == 0 &&
              feed_string_set(e, "time", when) && feed_string_set(e, "op", op) &&
              feed_string_set(e, "collection", collection) && feed_string_set(e, "id", id) &&
              feed_string_set(e, "slug", slug);
    if (ok && record != NULL) {
        json_t *rec = json_loadb(record, record_len, JSON_REJECT_DUPLICATES, NULL);
        ok = rec != NULL && json_object_set_new(e, "record", rec) == 0;
    }
    if (!ok) {
        json_decref(e);
        return NULL;
    }
    return e;
}

size_t factsd_feed_query_parse(const char *query, size_t len, factsd_feed_query *q,
                               factsd_problem_param *bad, size_t cap)
{
    q->since = 0;
    q->limit = FACTSD_FEED_LIMIT_DEFAULT;
    q->wait = 0;
    bool have_since = false, seen_limit = false, seen_wait = false;
    size_t nbad = 0, count = 0, pos = 0;
    factsd_query_param p;
    while (factsd_problem_query_next(query, len, &pos, &count, &p, bad, cap, &nbad)) {
        const char *name = p.name, *value = p.value;
        bool value_ok = p.value_ok;
        long long v = 0;
        const char *again = "given more than once";
        if (strcmp(name, "since") == 0) {
            if (have_since || !value_ok || !factsd_text_parse_int(value, 0, INT64_MAX, &v))
                nbad = factsd_problem_param_add(
                    bad, cap, nbad, "since",
                    have_since ? again : "expected a revision: a whole number >= 0");
            else
                q->since = (uint64_t)v;
            have_since = true;
        } else if (strcmp(name, "limit") == 0) {
            if (seen_limit || !value_ok ||
                !factsd_text_parse_int(value, 1, FACTSD_FEED_LIMIT_MAX, &v))
                nbad = factsd_problem_param_add(
                    bad, cap, nbad, "limit",
                    seen_limit ? again : "expected a whole number from 1 to 500");
            else
                q->limit = (size_t)v;
            seen_limit = true;
        } else if (strcmp(name, "wait") == 0) {
            if (seen_wait || !value_ok ||
                !factsd_text_parse_int(value, 0, FACTSD_FEED_WAIT_MAX, &v))
                nbad = factsd_problem_param_add(
                    bad, cap, nbad, "wait",
                    seen_wait ? again : "expected seconds: a whole number from 0 to 60");
            else
                q->wait = (unsigned)v;
            seen_wait = true;
        } else if (strcmp(name, "pretty") != 0) {
            nbad = factsd_problem_param_add(bad, cap, nbad, name[0] != '\0' ? name : "query",
                                            "not a parameter of this resource");
        }
    }
    if (!have_since)
        nbad = factsd_problem_param_add(bad, cap, nbad, "since",
                                        "required: the revision you have");
    return nbad;
}

factsd_repr *factsd_feed_render(facts_history_entry *const *entries, size_t n, uint64_t latest,
                                uint64_t next)
{
    factsd_buf b;
    size_t max = 64;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        facts_history_entry_text(entries[i], &len);
        max += len + 1;
    }
    factsd_buf_init(&b, max + 64);
    factsd_buf_puts(&b, "{\"changes\":[");
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *text = facts_history_entry_text(entries[i], &len);
        if (i > 0)
            factsd_buf_puts(&b, ",");
        factsd_buf_append(&b, text, len);
    }
    factsd_buf_printf(&b, "],\"revision\":%" PRIu64 ",\"next\":%" PRIu64 "}", latest, next);
    size_t len = 0;
    char *body = factsd_buf_steal(&b, &len);
    if (body == NULL)
        return NULL;
    factsd_repr *r = factsd_repr_new(body, len, FACTSD_MEDIA_JSON, NULL);
    if (r != NULL)
        factsd_repr_set_revision(r, latest);
    return r;
}
