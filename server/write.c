/*
 * write.c - a write request turned into a change (see write.h).
 *
 * Journal payload, one JSON object per change:
 *   {"op":"create"|"replace"|"delete","collection":"events","key":"<id>",
 *    "time":"2024-11-01T12:00:00.000Z",
 *    "record":{...the stored record in dataset form, id included...}}
 * ("record" is absent for a delete; "time", when the change was made, as its
 * change entry says, is absent from older journals). Replaying it is one
 * facts_store_apply.
 */
#include "write.h"

#include "problem.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {"create", "replace", "delete"};

bool factsd_write_depth_ok(const char *body, size_t len, unsigned max)
{
    unsigned depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

bool factsd_write_if_match(const char *if_match, const char *etag)
{
    if (if_match == NULL)
        return true;
    if (etag == NULL)
        return false;
    const size_t elen = strlen(etag);
    const char *p = if_match;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        if (*p == '*') {
            /* "*" stands alone (RFC 9110): anything around it is no match. */
            const char *q = p + 1;
            while (*q == ' ' || *q == '\t')
                q++;
            return p == if_match + strspn(if_match, " \t") && *q == '\0';
        }
        bool weak = p[0] == 'W' && p[1] == '/';
        if (weak)
            p += 2;
        if (*p != '"')
            return false;
        const char *end = strchr(p + 1, '"');
        if (end == NULL)
            return false;
        size_t n = (size_t)(end - p) + 1;
        if (!weak && n == elen && memcmp(p, etag, n) == 0)
            return true;
        p = end + 1;
    }
    return false;
}

/* Sets the change to a problem of kind; extra (may be NULL) is stolen. */
static void change_fail(factsd_change *out, factsd_problem_kind kind, const char *detail,
                        json_t *extra)
{
    out->status = factsd_problem_status(kind);
    out->problem = factsd_problem_new_ext(kind, detail, extra);
    if (out->problem == NULL)
        out->status = 500;
}

static void change_oom(factsd_change *out)
{
    change_fail(out, FACTSD_PROBLEM_INTERNAL, "the server ran out of memory", NULL);
}

/* Keeps printable ASCII of s (Jansson's messages may quote the body's bytes,
 * which need not be UTF-8). */
static void printable_copy(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0' && o + 1 < cap; s++)
        dst[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    dst[o] = '\0';
}

/* Parses the body: the depth first, then JSON with duplicate keys refused.
 * Returns the value (caller decrefs), or NULL with *out failed. */
static json_t *body_parse(const char *body, size_t len, factsd_change *out)
{
    if (!factsd_write_depth_ok(body, len, FACTSD_WRITE_DEPTH_MAX)) {
        change_fail(out, FACTSD_PROBLEM_MALFORMED_JSON,
                    "the JSON nests arrays and objects more than 32 deep", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v != NULL)
        return v;
    if (json_error_code(&jerr) == json_error_out_of_memory) {
        change_oom(out);
        return NULL;
    }
    char text[JSON_ERROR_TEXT_LENGTH];
    printable_copy(text, sizeof text, jerr.text);
    char detail[256];
    snprintf(detail, sizeof detail, "line %d, column %d: %s", jerr.line, jerr.column, text);
    json_t *extra = json_pack("{s:i,s:i}", "line", (json_int_t)jerr.line, "column",
                              (json_int_t)jerr.column);
    if (extra == NULL) {
        change_oom(out);
        return NULL;
    }
    change_fail(out, FACTSD_PROBLEM_MALFORMED_JSON, detail, extra);
    return NULL;
}

/* RFC 7396: applies patch to target (owned, may be NULL) and returns the
 * result (owned), or NULL when memory runs out. Depth is bounded by the
 * body's pre-scan. */
static json_t *merge_patch(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (target == NULL)
            return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)patch, key, value) {
        if (json_is_null(value)) {
            json_object_del(target, key);
            continue;
        }
        json_t *cur = json_object_get(target, key);
        json_t *merged = merge_patch(json_incref(cur), value);
        if (merged == NULL || json_object_set_new(target, key, merged) != 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

/* Adds {"pointer","rule","detail"} for each of errs[0..n) to a new "errors"
 * list inside a new object. Returns it, or NULL when memory runs out. */
static json_t *errors_json(const facts_error *errs, size_t n)
{
    json_t *extra = json_object();
    json_t *list = json_array();
    if (extra == NULL || list == NULL || json_object_set_new(extra, "errors", list) != 0) {
        json_decref(extra);
        if (extra == NULL)
            json_decref(list);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s,s:s,s:s}", "pointer", errs[i].pointer, "rule", errs[i].rule,
                              "detail", errs[i].text);
        if (e == NULL || json_array_append_new(list, e) != 0) {
            json_decref(extra);
            return NULL;
        }
    }
    return extra;
}

/* Turns a failed facts_store_apply_all into the change's problem. */
static void change_fail_core(factsd_change *out, facts_status st, const facts_error *errs,
                             size_t n)
{
    switch (st) {
    case FACTS_EINVALID:
    case FACTS_ELIMIT:
    case FACTS_EARG: {
        json_t *extra = errors_json(errs, n);
        if (extra == NULL) {
            change_oom(out);
            return;
        }
        change_fail(out, FACTSD_PROBLEM_INVALID_RECORD,
                    n == 1 ? "the record breaks a dataset rule"
                           : "the record breaks dataset rules",
                    extra);
        return;
    }
    case FACTS_ECONFLICT: {
        json_t *extra = errors_json(errs, n);
        if (extra == NULL) {
            change_oom(out);
            return;
        }
        /* A clash inside the record (a taken slug or id) speaks for itself;
         * one elsewhere means other records would be left broken. */
        change_fail(out, FACTSD_PROBLEM_CONFLICT,
                    strcmp(errs[0].source, "dataset") == 0
                        ? "other records still refer to it in a way the change would break "
                          "(each is listed in errors)"
                        : errs[0].text,
                    extra);
        return;
    }
    case FACTS_ENOTFOUND:
        change_fail(out, FACTSD_PROBLEM_NOT_FOUND, errs[0].text, NULL);
        return;
    default:
        change_oom(out);
        return;
    }
}

/* Builds the journal payload of the prepared change. */
static bool payload_build(factsd_change *out, facts_op op, facts_kind kind)
{
    factsd_feed_time_now(out->time, sizeof out->time);
    json_t *p = json_pack("{s:s,s:s,s:s,s:s}", "op", op_names[op], "collection",
                          facts_kind_collection(kind), "key", out->id, "time", out->time);
    if (p == NULL)
        return false;
    if (out->rec != NULL &&
        json_object_set(p, "record", (json_t *)facts_record_json(out->rec)) != 0) {
        json_decref(p);
        return false;
    }
    out->payload = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (out->payload == NULL)
        return false;
    out->payload_len = strlen(out->payload);
    return true;
}

void factsd_change_prepare(const factsd_view *v, factsd_write_op op, facts_kind kind,
                           const char *key, const char *body, size_t len,
                           const char *if_match, factsd_change *out)
{
    memset(out, 0, sizeof *out);
    const facts_store *base = factsd_view_store(v);
    const facts_record *cur = NULL;
    if (op != FACTSD_WRITE_CREATE) {
        cur = facts_store_find(base, kind, key);
        if (cur == NULL) {
            char detail[160];
            snprintf(detail, sizeof detail, "no %s has this id or slug", facts_kind_name(kind));
            change_fail(out, FACTSD_PROBLEM_NOT_FOUND, detail, NULL);
            return;
        }
        const factsd_repr *item = factsd_view_item(v, cur);
        const char *etag = item != NULL ? factsd_repr_etag(item) : NULL;
        if (etag == NULL) {
            change_oom(out);
            return;
        }
        if (!factsd_write_if_match(if_match, etag)) {
            snprintf(out->etag, sizeof out->etag, "%s", etag);
            change_fail(out, FACTSD_PROBLEM_PRECONDITION_FAILED,
                        "If-Match does not name the record's current ETag (see ETag)", NULL);
            return;
        }
    }
    json_t *record = NULL;
    if (op != FACTSD_WRITE_DELETE) {
        json_t *given = body_parse(body, len, out);
        if (given == NULL)
            return;
        if (op == FACTSD_WRITE_MERGE) {
            json_t *target = json_deep_copy(facts_record_json(cur));
            if (target == NULL) {
                json_decref(given);
                change_oom(out);
                return;
            }
            json_object_del(target, "id");
            record = merge_patch(target, given);
            json_decref(given);
            if (record == NULL) {
                change_oom(out);
                return;
            }
        } else {
            record = given;
        }
        if (!json_is_object(record)) {
            json_decref(record);
            facts_error e = {.status = FACTS_EINVALID, .rule = "type",
                             .text = "a record must be a JSON object"};
            change_fail_core(out, FACTS_EINVALID, &e, 1);
            return;
        }
    }
    facts_op fop = op == FACTSD_WRITE_CREATE   ? FACTS_OP_CREATE
                   : op == FACTSD_WRITE_DELETE ? FACTS_OP_DELETE
                                               : FACTS_OP_REPLACE;
    facts_error errs[FACTSD_WRITE_ERRORS_MAX];
    size_t n = 0;
    facts_store *next = NULL;
    const facts_record *rec = NULL;
    facts_status st =
        facts_store_apply_all(base, fop, kind, cur != NULL ? facts_record_id(cur) : NULL, record,
                              &next, &rec, errs, FACTSD_WRITE_ERRORS_MAX, &n);
    json_decref(record);
    if (st != FACTS_OK) {
        change_fail_core(out, st, errs, n > 0 ? n : 1);
        return;
    }
    out->next = next;
    out->rec = rec;
    snprintf(out->id, sizeof out->id, "%s",
             rec != NULL ? facts_record_id(rec) : facts_record_id(cur));
    /* A replacement equal to the record (the canonical JSON holds all of
     * it, references included) changes no other record either. */
    out->unchanged = fop == FACTS_OP_REPLACE && cur != NULL && rec != NULL &&
                     json_equal((json_t *)facts_record_json(cur), (json_t *)facts_record_json(rec));
    if (!payload_build(out, fop, kind)) {
        factsd_change_clear(out);
        change_oom(out);
    }
}

void factsd_change_clear(factsd_change *c)
{
    if (c == NULL)
        return;
    factsd_repr_free(c->problem);
    facts_store_unref(c->next);
    free(c->payload);
    memset(c, 0, sizeof *c);
}

/* What a replay carries from record to record. */
typedef struct replay_state {
    facts_store **store;
    uint64_t base;    /* the dataset's revision before the replay */
    json_t *skipped;  /* id -> {"collection","revision","record"|null}: the last
                         change to each record that the dataset already holds */
    json_t *history;  /* the replayed changes' entries, or NULL */
    bool verified;    /* the skipped changes were checked against the store */
} replay_state;

static facts_status replay_fail(facts_error *err, facts_status st, const char *rule,
                                const char *text)
{
    memset(err, 0, sizeof *err);
    err->status = st;
    snprintf(err->source, sizeof err->source, "journal");
    snprintf(err->rule, sizeof err->rule, "%s", rule);
    snprintf(err->text, sizeof err->text, "%s", text);
    return st;
}

/* The dataset may already hold the journal's first records (the state a
 * compaction saved before it could start a fresh journal). Skipping them is
 * safe only if the dataset really holds them: the last journalled change to
 * each record must be what the store has. Anything else - a dataset file
 * edited or replaced behind the journal's back - would silently drop
 * acknowledged writes, so it refuses. */
static facts_status replay_verify(replay_state *rs, facts_error *err)
{
    rs->verified = true;
    const char *id;
    json_t *eff;
    json_object_foreach(rs->skipped, id, eff) {
        facts_kind kind;
        const json_t *want = json_object_get(eff, "record");
        if (facts_kind_from_collection(json_string_value(json_object_get(eff, "collection")),
                                       &kind) != FACTS_OK)
            return replay_fail(err, FACTS_ECORRUPT, "journal", "not a change this server wrote");
        const facts_record *have = facts_store_find(*rs->store, kind, id);
        bool ok = json_is_null(want) ? have == NULL
                                     : have != NULL &&
                                           json_equal((json_t *)facts_record_json(have),
                                                      (json_t *)want);
        if (!ok) {
            char text[sizeof err->text];
            snprintf(text, sizeof text,
                     "the dataset does not hold the acknowledged change of revision %"
                     JSON_INTEGER_FORMAT " to %s %s that its revision claims: restore the "
                     "dataset file or the journal that belong together",
                     json_integer_value(json_object_get(eff, "revision")),
                     json_string_value(json_object_get(eff, "collection")), id);
            return replay_fail(err, FACTS_ECORRUPT, "journal-mismatch", text);
        }
    }
    return FACTS_OK;
}

/* Appends the change entry of a replayed record to rs->history (emptied
 * when the record has no time or memory runs out). rec is the created or
 * replaced record in next; a deleted record's slug is read from the store
 * before the change. */
static void replay_entry(replay_state *rs, uint64_t revision, int op, facts_kind kind,
                         const char *key, const char *time, const facts_record *rec)
{
    static const char *const entry_ops[] = {"create", "update", "delete"};
    json_t *e = NULL;
    if (time != NULL) {
        const char *coll = facts_kind_collection(kind);
        if (op == FACTS_OP_DELETE) {
            const facts_record *gone = facts_store_find(*rs->store, kind, key);
            e = factsd_feed_entry_at(time, revision, "delete", coll, key,
                                     gone != NULL ? facts_record_slug(gone) : NULL, NULL, 0);
        } else if (rec != NULL) {
            char *text = json_dumps(facts_record_json(rec), JSON_COMPACT);
            if (text != NULL)
                e = factsd_feed_entry_at(time, revision, entry_ops[op], coll,
                                         facts_record_id(rec), facts_record_slug(rec), text,
                                         strlen(text));
            free(text);
        }
    }
    if (e == NULL || json_array_append_new(rs->history, e) != 0)
        json_array_clear(rs->history);
}

static facts_status factsd_change_replay(void *ctx, uint64_t revision, const char *payload,
                                         size_t len, facts_error *err)
{
    replay_state *rs = ctx;
    facts_store **store = rs->store;
    uint64_t have = facts_store_revision(*store);
    json_error_t jerr;
    json_t *p = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *opname = json_string_value(json_object_get(p, "op"));
    const char *coll = json_string_value(json_object_get(p, "collection"));
    const char *key = json_string_value(json_object_get(p, "key"));
    const json_t *record = json_object_get(p, "record");
    facts_kind kind = FACTS_KIND_SOURCE;
    int op = -1;
    for (int i = 0; opname != NULL && i < 3; i++) {
        if (strcmp(opname, op_names[i]) == 0)
            op = i;
    }
    if (op < 0 || coll == NULL || key == NULL ||
        facts_kind_from_collection(coll, &kind) != FACTS_OK ||
        (op != FACTS_OP_DELETE && !json_is_object(record))) {
        json_decref(p);
        return replay_fail(err, FACTS_ECORRUPT, "journal", "not a change this server wrote");
    }
    if (revision <= rs->base) {
        /* Already in the dataset, it says: remember the change, check later. */
        json_t *eff = json_pack("{s:s,s:I,s:O}", "collection", coll, "revision",
                                (json_int_t)revision, "record",
                                op == FACTS_OP_DELETE ? json_null() : (json_t *)record);
        int rc = eff != NULL ? json_object_set_new(rs->skipped, key, eff) : -1;
        json_decref(p);
        return rc == 0 ? FACTS_OK
                       : replay_fail(err, FACTS_ENOMEM, "memory", "out of memory");
    }
    facts_status st;
    if (!rs->verified && (st = replay_verify(rs, err)) != FACTS_OK) {
        json_decref(p);
        return st;
    }
    if (revision != have + 1) {
        char text[sizeof err->text];
        snprintf(text, sizeof text,
                 "journal record of revision %llu does not follow the dataset's revision %llu",
                 (unsigned long long)revision, (unsigned long long)have);
        json_decref(p);
        return replay_fail(err, FACTS_ECORRUPT, "revision-gap", text);
    }
    facts_store *next = NULL;
    const facts_record *rec = NULL;
    st = facts_store_apply(*store, (facts_op)op, kind, op == FACTS_OP_CREATE ? NULL : key,
                           op == FACTS_OP_DELETE ? NULL : record, &next, &rec, err);
    if (st == FACTS_OK && rs->history != NULL)
        replay_entry(rs, revision, op, kind, key, json_string_value(json_object_get(p, "time")),
                     rec);
    json_decref(p);
    if (st != FACTS_OK) {
        char why[sizeof err->text];
        snprintf(why, sizeof why, "%s", err->text);
        snprintf(err->text, sizeof err->text, "journal record of revision %llu: %.200s",
                 (unsigned long long)revision, why);
        return st;
    }
    facts_store_unref(*store);
    *store = next;
    return FACTS_OK;
}

facts_status factsd_journal_open_replay(const char *path, facts_store **store,
                                        facts_journal **out, facts_journal_report *report,
                                        json_t *history, facts_error *err)
{
    facts_journal *j = NULL;
    replay_state rs = {store, facts_store_revision(*store), json_object(), history, false};
    if (rs.skipped == NULL)
        return replay_fail(err, FACTS_ENOMEM, "memory", "out of memory");
    facts_status st = facts_journal_open(path, factsd_change_replay, &rs, &j, report, err);
    if (st == FACTS_OK && !rs.verified && (st = replay_verify(&rs, err)) != FACTS_OK)
        facts_journal_close(j);
    json_decref(rs.skipped);
    if (st != FACTS_OK)
        return st;
    uint64_t last = facts_journal_revision(j);
    uint64_t have = facts_store_revision(*store);
    if (last != 0 && last != have) {
        facts_journal_close(j);
        memset(err, 0, sizeof *err);
        err->status = FACTS_ECORRUPT;
        snprintf(err->source, sizeof err->source, "%.120s", path);
        snprintf(err->rule, sizeof err->rule, "revision-gap");
        snprintf(err->text, sizeof err->text,
                 "the journal ends at revision %llu but the dataset is at revision %llu",
                 (unsigned long long)last, (unsigned long long)have);
        return FACTS_ECORRUPT;
    }
    *out = j;
    return FACTS_OK;
}
