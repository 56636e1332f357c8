/*
 * change.c - one change (create, replace, delete) turned into a new store.
 *
 * The new dataset shares every untouched record's JSON with the base store
 * (Jansson's reference counts are atomic, and neither store modifies a
 * value), adds or swaps the one record, and goes through the loader's full
 * validation. Errors inside the changed record are reported relative to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* If pointer starts with prefix followed by '/' or its end, rewrites it in
 * place to the rest ("" or "/...") and returns true. */
static bool strip_prefix(char *pointer, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(pointer, prefix, n) != 0 || (pointer[n] != '/' && pointer[n] != '\0'))
        return false;
    memmove(pointer, pointer + n, strlen(pointer + n) + 1);
    return true;
}

/* A shallow copy of record with "id" set to id (or left out when NULL). */
static json_t *record_with_id(const json_t *record, const char *id)
{
    json_t *copy = json_object();
    if (!copy)
        return NULL;
    if (id && json_object_set_new(copy, "id", json_string(id)) != 0)
        goto fail;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)record, k, v) {
        if (id && strcmp(k, "id") == 0)
            continue;
        if (json_object_set(copy, k, v) != 0)
            goto fail;
    }
    return copy;
fail:
    json_decref(copy);
    return NULL;
}

static facts_status oom(facts_error *err)
{
    facts_error_set(err, FACTS_ENOMEM, "change", 0, 0, "", "memory", "out of memory");
    return FACTS_ENOMEM;
}

/* Where a problem lies: inside the changed record (its pointer is made
 * relative to it) or elsewhere in the dataset; and whether it is a conflict. */
static facts_status classify(facts_error *e, const char *prefix, facts_op op)
{
    bool in_record = op != FACTS_OP_DELETE && strip_prefix(e->pointer, prefix);
    if (in_record)
        snprintf(e->source, sizeof e->source, "record");
    if (e->status == FACTS_EINVALID &&
        (strcmp(e->rule, "duplicate-slug") == 0 || strcmp(e->rule, "duplicate-id") == 0 ||
         !in_record))
        e->status = FACTS_ECONFLICT;
    return e->status;
}

facts_status facts_store_apply_all(const facts_store *base, facts_op op, facts_kind kind,
                                   const char *key, const json_t *record, facts_store **out,
                                   const facts_record **rec, facts_error *errs, size_t max,
                                   size_t *n)
{
    facts_error first;
    facts_error *err = max > 0 ? &errs[0] : NULL;
    *n = max > 0 ? 1 : 0; /* every early failure fills errs[0] */
    if ((unsigned)kind >= FACTS_KIND_COUNT || (unsigned)op > FACTS_OP_DELETE ||
        (op != FACTS_OP_DELETE && !json_is_object(record))) {
        facts_error_set(err, FACTS_EARG, "change", 0, 0, "", "argument",
                        "a change needs a known collection and operation, and a record object");
        return FACTS_EARG;
    }
    const facts_record *old = NULL;
    size_t index = base->count[kind]; /* where the changed record sits */
    if (op != FACTS_OP_CREATE) {
        old = facts_store_find(base, kind, key);
        if (!old) {
            facts_error_set(err, FACTS_ENOTFOUND, "change", 0, 0, "", "not-found",
                            "no %s has the id or slug \"%.64s\"", facts_kind_name(kind),
                            key ? key : "");
            return FACTS_ENOTFOUND;
        }
        index = (size_t)(old - base->records[kind]);
    }
    if (op == FACTS_OP_REPLACE) {
        const json_t *given = json_object_get(record, "id");
        if (given && !(json_is_string(given) && strcmp(json_string_value(given), old->id) == 0)) {
            facts_error_set(err, FACTS_EINVALID, "record", 0, 0, "/id", "id-mismatch",
                            "a record keeps its id %s", old->id);
            return FACTS_EINVALID;
        }
    }
    if (op == FACTS_OP_CREATE && base->count[kind] >= FACTS_RECORDS_MAX) {
        facts_error_set(err, FACTS_ELIMIT, "change", 0, 0, "", "limit",
                        "%s already holds %d records", facts_kind_collection(kind),
                        FACTS_RECORDS_MAX);
        return FACTS_ELIMIT;
    }

    /* The new document: the base's canonical records (ids included), with
     * the one change. */
    json_t *doc = json_object();
    if (!doc || json_object_set_new(doc, "format", json_string(FACTS_DATASET_FORMAT)) != 0 ||
        json_object_set_new(doc, "revision", json_integer((json_int_t)base->revision + 1)) != 0) {
        json_decref(doc);
        return oom(err);
    }
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        json_t *arr = json_array();
        if (json_object_set_new(doc, facts_dataset_members[k], arr) != 0) {
            json_decref(doc);
            return oom(err);
        }
        for (size_t i = 0; i < base->count[k]; i++) {
            json_t *item = base->records[k][i].json;
            bool mine = k == (int)kind && i == index;
            if (mine && op == FACTS_OP_DELETE)
                continue;
            int rc;
            if (mine)
                rc = json_array_append_new(arr, record_with_id(record, old->id));
            else
                rc = json_array_append(arr, item);
            if (rc != 0) {
                json_decref(doc);
                return oom(err);
            }
        }
        if (k == (int)kind && op == FACTS_OP_CREATE &&
            json_array_append_new(arr, record_with_id(record, NULL)) != 0) {
            json_decref(doc);
            return oom(err);
        }
    }

    facts_store *st = NULL;
    size_t count = 0;
    facts_status s = facts_store_load_root_all(doc, "dataset", &st, &first, max > 0 ? errs : NULL,
                                               max, &count);
    if (s != FACTS_OK) {
        if (count == 0 && max > 0) {
            errs[0] = first; /* a failure before any record was looked at */
            count = 1;
        }
        char prefix[64];
        snprintf(prefix, sizeof prefix, "/%s/%zu", facts_dataset_members[kind], index);
        for (size_t i = 0; i < count; i++)
            classify(&errs[i], prefix, op);
        *n = count;
        return count > 0 ? errs[0].status : classify(&first, prefix, op);
    }
    /* The state must stay loadable: facts_store_save writes it indented, and
     * a file past the loader's cap could never be read again. */
    if (json_dumpb(st->json, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER) > FACTS_FILE_MAX) {
        facts_store_unref(st);
        facts_error_set(err, FACTS_ELIMIT, "record", 0, 0, "", "limit",
                        "the dataset would grow past %d bytes", FACTS_FILE_MAX);
        return FACTS_ELIMIT;
    }
    *n = 0;
    if (rec) {
        *rec = op == FACTS_OP_DELETE ? NULL
               : op == FACTS_OP_REPLACE ? facts_store_find(st, kind, old->id)
                                        : &st->records[kind][st->count[kind] - 1];
    }
    *out = st;
    return FACTS_OK;
}

facts_status facts_store_apply(const facts_store *base, facts_op op, facts_kind kind,
                               const char *key, const json_t *record, facts_store **out,
                               const facts_record **rec, facts_error *err)
{
    facts_error one;
    size_t n;
    facts_status s = facts_store_apply_all(base, op, kind, key, record, out, rec, &one, 1, &n);
    if (s != FACTS_OK && err)
        *err = one;
    return s;
}
