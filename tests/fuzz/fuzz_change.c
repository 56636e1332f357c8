/*
 * fuzz_change.c - changes (create, replace, delete, and a JSON Merge Patch
 * turned into a replace, as PATCH does) applied to the embedded article
 * store.
 *
 * Input layout:
 *   byte 0  bits 0-1: create, replace, delete, merge patch
 *           bit 2:    also call facts_store_apply and compare
 *           bits 3-7: max - 1 problems asked of facts_store_apply_all
 *   byte 1  bits 0-1: the kind
 *           bit 2:    name the record by id (else by slug)
 *           bit 3:    the key is the text up to the first NUL (else a record)
 *   byte 2  which record of the kind (modulo their number)
 *   rest    [key NUL] JSON: the record, or the merge patch; a delete ignores
 *           it. Input that is not JSON is skipped (the server refuses it
 *           before the core sees it).
 *
 * Checked besides the sanitizers: the error contract of facts_store_apply_all
 * (outputs untouched, 1..max problems each filled, errs[0] the status) and
 * that facts_store_apply reports errs[0]; on success the new revision, the
 * changed record where it should be, counts, that the new store's saved
 * form loads again to the same records (what a compaction relies on), and
 * that deleting a created record gives the base's records back (every record
 * of the article is referred to, so that is also where deletes succeed).
 */
#include "fuzz.h"

enum { ERRS_MAX = 32, KEY_MAX = 96 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_jansson();
    (void)fuzz_article();
    return 0;
}

/* RFC 7396 on target (owned, may be NULL); returns the result (owned). */
static json_t *merge_patch(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        FUZZ_CHECK(target != NULL, "json_object");
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)patch, key, value) {
        if (json_is_null(value)) {
            json_object_del(target, key);
            continue;
        }
        json_t *merged = merge_patch(json_incref(json_object_get(target, key)), value);
        FUZZ_CHECK(merged != NULL && json_object_set_new(target, key, merged) == 0, "merge");
    }
    return target;
}

static void check_same_error(const facts_error *a, const facts_error *b)
{
    FUZZ_CHECK(a->status == b->status && a->line == b->line && a->column == b->column &&
                   strcmp(a->source, b->source) == 0 && strcmp(a->pointer, b->pointer) == 0 &&
                   strcmp(a->rule, b->rule) == 0 && strcmp(a->text, b->text) == 0,
               "facts_store_apply says \"%s\" at \"%s\", apply_all's first says \"%s\" at \"%s\"",
               a->text, a->pointer, b->text, b->pointer);
}

/* The saved form of st loads again to the same records. */
static void check_round_trip(const facts_store *st)
{
    char *text = json_dumps(facts_store_json(st), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    FUZZ_CHECK(text != NULL, "json_dumps");
    facts_store *again = NULL;
    facts_error err;
    facts_status s = facts_store_load_buffer(text, strlen(text), "saved", &again, &err);
    FUZZ_CHECK(s == FACTS_OK, "a changed store's saved form does not load: %s (%s at \"%s\")",
               err.text, err.rule, err.pointer);
    FUZZ_CHECK(facts_store_same_records(st, again) &&
                   facts_store_revision(st) == facts_store_revision(again),
               "the saved form holds other records");
    facts_store_unref(again);
    free(text);
}

static void check_success(const facts_store *base, const facts_store *out, facts_op op,
                          facts_kind kind, const facts_record *old, const facts_record *rec)
{
    FUZZ_CHECK(out != NULL && out != FUZZ_UNTOUCHED && out != base, "a new store");
    FUZZ_CHECK(facts_store_revision(out) == facts_store_revision(base) + 1, "the next revision");
    size_t before = facts_store_count(base, kind), after = facts_store_count(out, kind);
    switch (op) {
    case FACTS_OP_CREATE:
        FUZZ_CHECK(after == before + 1, "a create adds one record (%zu, %zu)", before, after);
        break;
    case FACTS_OP_REPLACE:
        FUZZ_CHECK(after == before, "a replace keeps the count");
        FUZZ_CHECK(strcmp(facts_record_id(rec), facts_record_id(old)) == 0,
                   "a replace keeps the id");
        break;
    default:
        FUZZ_CHECK(after + 1 == before, "a delete removes one record");
        FUZZ_CHECK(rec == NULL, "a delete returns no record");
        FUZZ_CHECK(facts_store_find(out, kind, facts_record_id(old)) == NULL,
                   "the deleted record is gone");
        break;
    }
    if (rec != NULL) {
        FUZZ_CHECK(facts_record_kind(rec) == kind, "the record's kind");
        FUZZ_CHECK(facts_store_find(out, kind, facts_record_id(rec)) == rec &&
                       facts_store_find(out, kind, facts_record_slug(rec)) == rec,
                   "the changed record is found by id and slug");
    }
    check_round_trip(out);
    if (op == FACTS_OP_CREATE) {
        /* Nothing can refer to a record that did not exist: deleting it
         * again succeeds and gives the base's records back. */
        facts_store *undone = NULL;
        facts_error err;
        facts_status st =
            facts_store_apply(out, FACTS_OP_DELETE, kind, facts_record_id(rec), NULL, &undone,
                              NULL, &err);
        FUZZ_CHECK(st == FACTS_OK, "deleting a created record: %s (%s at \"%s\")", err.text,
                   err.rule, err.pointer);
        FUZZ_CHECK(facts_store_same_records(base, undone),
                   "create then delete does not give the base's records back");
        facts_store_unref(undone);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 3)
        return 0;
    const facts_store *base = fuzz_article();
    int mode = data[0] & 3;
    bool compare = data[0] & 4;
    size_t max = 1 + (size_t)(data[0] >> 3);
    facts_kind kind = (facts_kind)(data[1] & 3);
    bool by_id = data[1] & 4, literal = data[1] & 8;
    size_t count = facts_store_count(base, kind);
    const facts_record *pick = count ? facts_store_at(base, kind, data[2] % count) : NULL;
    const char *rest = (const char *)data + 3;
    size_t len = size - 3;

    char key[KEY_MAX + 1];
    const char *keyp = NULL;
    if (literal) {
        const char *nul = memchr(rest, '\0', len);
        size_t n = nul ? (size_t)(nul - rest) : len;
        if (n > KEY_MAX)
            return 0;
        memcpy(key, rest, n);
        key[n] = '\0';
        keyp = key;
        rest += nul ? n + 1 : n;
        len -= nul ? n + 1 : n;
    } else if (pick != NULL) {
        keyp = by_id ? facts_record_id(pick) : facts_record_slug(pick);
    }
    facts_op op = mode == 0 ? FACTS_OP_CREATE : mode == 2 ? FACTS_OP_DELETE : FACTS_OP_REPLACE;
    const facts_record *old = op == FACTS_OP_CREATE ? NULL : facts_store_find(base, kind, keyp);

    json_t *record = NULL;
    if (op != FACTS_OP_DELETE) {
        json_error_t jerr;
        json_t *given = json_loadb(rest, len, JSON_REJECT_DUPLICATES, &jerr);
        if (given == NULL)
            return 0;
        if (mode == 3 && old != NULL) {
            json_t *target = json_deep_copy(facts_record_json(old));
            FUZZ_CHECK(target != NULL, "json_deep_copy");
            json_object_del(target, "id");
            record = merge_patch(target, given);
            json_decref(given);
        } else {
            record = given;
        }
    }

    facts_error errs[ERRS_MAX];
    for (size_t i = 0; i < ERRS_MAX; i++)
        fuzz_error_poison(&errs[i]);
    facts_store *out = FUZZ_UNTOUCHED;
    const facts_record *rec = FUZZ_UNTOUCHED;
    size_t n = 12345;
    facts_status st =
        facts_store_apply_all(base, op, kind, keyp, record, &out, &rec, errs, max, &n);
    if (st != FACTS_OK) {
        FUZZ_CHECK(out == FUZZ_UNTOUCHED && rec == FUZZ_UNTOUCHED,
                   "a failed change set its outputs");
        FUZZ_CHECK(n >= 1 && n <= max, "%zu problems of at most %zu", n, max);
        if (st == FACTS_EINVALID)
            FUZZ_CHECK(strcmp(errs[0].source, "record") == 0 &&
                           (errs[0].pointer[0] == '\0' || errs[0].pointer[0] == '/'),
                       "an invalid record is pointed into (source \"%s\", \"%s\")",
                       errs[0].source, errs[0].pointer);
        fuzz_check_error(&errs[0], st);
        for (size_t i = 1; i < n; i++)
            fuzz_check_error(&errs[i], errs[i].status);
        if (st == FACTS_ENOTFOUND)
            FUZZ_CHECK(old == NULL, "a record that exists was not found");
    } else {
        FUZZ_CHECK(n == 0, "%zu problems on success", n);
        FUZZ_CHECK(op == FACTS_OP_CREATE || old != NULL, "a change to no record succeeded");
        check_success(base, out, op, kind, old, rec);
    }

    if (compare) {
        facts_store *out1 = FUZZ_UNTOUCHED;
        const facts_record *rec1 = FUZZ_UNTOUCHED;
        facts_error one;
        fuzz_error_poison(&one);
        facts_status st1 = facts_store_apply(base, op, kind, keyp, record, &out1, &rec1, &one);
        FUZZ_CHECK(st1 == st, "facts_store_apply %s, apply_all %s", facts_status_name(st1),
                   facts_status_name(st));
        if (st1 != FACTS_OK) {
            FUZZ_CHECK(out1 == FUZZ_UNTOUCHED && rec1 == FUZZ_UNTOUCHED, "outputs untouched");
            check_same_error(&one, &errs[0]);
        } else {
            FUZZ_CHECK(facts_store_same_records(out, out1), "the two calls made other stores");
            FUZZ_CHECK((rec == NULL) == (rec1 == NULL), "the two calls' records");
            facts_store_unref(out1);
        }
    }
    if (st == FACTS_OK)
        facts_store_unref(out);
    json_decref(record);
    return 0;
}
