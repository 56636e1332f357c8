/*
 * fuzz_load.c - the strict dataset loader on arbitrary bytes.
 *
 * facts_store_load_buffer either returns a complete store or fails with the
 * error filled and the out pointer untouched. A store that loads must also
 * survive the trip facts_store_save makes: its canonical JSON, written
 * indented, loads again to the same records and revision.
 */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_jansson();
    return 0;
}

/* The saved form of st (as facts_store_save writes it) loads to the same
 * records. */
static void check_round_trip(const facts_store *st)
{
    char *text = json_dumps(facts_store_json(st), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    FUZZ_CHECK(text != NULL, "json_dumps of a loaded store");
    facts_store *again = FUZZ_UNTOUCHED;
    facts_error err;
    facts_status s = facts_store_load_buffer(text, strlen(text), "saved", &again, &err);
    FUZZ_CHECK(s == FACTS_OK, "a loaded store's own JSON does not load: %s (%s at \"%s\")",
               err.text, err.rule, err.pointer);
    FUZZ_CHECK(facts_store_same_records(st, again), "the saved form holds other records");
    FUZZ_CHECK(facts_store_revision(st) == facts_store_revision(again), "revision %llu, %llu",
               (unsigned long long)facts_store_revision(st),
               (unsigned long long)facts_store_revision(again));
    facts_store_unref(again);
    free(text);
}

/* What a loaded store promises about its records. */
static void check_store(const facts_store *st)
{
    FUZZ_CHECK(facts_store_revision(st) >= 1, "revision 0");
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        size_t n = facts_store_count(st, (facts_kind)k);
        FUZZ_CHECK(facts_store_at(st, (facts_kind)k, n) == NULL, "facts_store_at past the end");
        for (size_t i = 0; i < n; i++) {
            const facts_record *r = facts_store_at(st, (facts_kind)k, i);
            FUZZ_CHECK(r != NULL && facts_record_kind(r) == (facts_kind)k, "record %zu", i);
            const char *id = facts_record_id(r);
            FUZZ_CHECK(strlen(id) == 36, "id \"%s\"", id);
            FUZZ_CHECK(facts_store_find(st, (facts_kind)k, id) == r, "find by id %s", id);
            FUZZ_CHECK(facts_store_find(st, (facts_kind)k, facts_record_slug(r)) == r,
                       "find by slug %s", facts_record_slug(r));
            FUZZ_CHECK(facts_record_name(r) != NULL, "a record without a name");
            const json_t *j = facts_record_json(r);
            FUZZ_CHECK(json_is_object(j) &&
                           strcmp(json_string_value(json_object_get(j, "id")), id) == 0,
                       "the canonical JSON carries the id");
            facts_date_range d;
            if (facts_record_date(r, &d) && d.precision != FACTS_PRECISION_UNKNOWN)
                FUZZ_CHECK(d.first_day <= d.last_day, "date %d..%d", (int)d.first_day,
                           (int)d.last_day);
            int64_t low, high;
            if (facts_estimate_bounds(r, &low, &high))
                FUZZ_CHECK(0 <= low && low <= high, "bounds %lld..%lld", (long long)low,
                           (long long)high);
        }
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    facts_store *st = FUZZ_UNTOUCHED;
    facts_error err;
    fuzz_error_poison(&err);
    facts_status s = facts_store_load_buffer((const char *)data, size, "fuzz", &st, &err);
    if (s != FACTS_OK) {
        FUZZ_CHECK(st == FUZZ_UNTOUCHED, "a failed load set the out pointer");
        fuzz_check_error(&err, s);
        return 0;
    }
    FUZZ_CHECK(st != NULL && st != FUZZ_UNTOUCHED, "a load returned no store");
    check_store(st);
    check_round_trip(st);
    facts_store_unref(st);
    return 0;
}
