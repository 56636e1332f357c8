/*
 * test_history.c - the change history: order, capacity, the "gone" answer
 * for a client that fell behind or is ahead, entries outliving the history,
 * and readers racing a writer.
 *
 * usage: test_history DATA_DIR (unused)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "facts.h"

static json_t *entry(uint64_t rev)
{
    return json_pack("{s:I, s:s}", "revision", (json_int_t)rev, "op", "update");
}

static void test_basics(void)
{
    facts_history *h = facts_history_new(3, 10);
    CHECK(h != NULL);
    if (!h)
        return;
    facts_history_entry *out[8];
    size_t n = 99;
    uint64_t latest = 0, oldest = 0;
    CHECK(facts_history_since(h, 10, 8, out, &n, &latest, &oldest) == FACTS_OK && n == 0 &&
          latest == 10 && oldest == 10);
    n = 99;
    CHECK(facts_history_since(h, 9, 8, out, &n, &latest, &oldest) == FACTS_EGONE && n == 99);
    CHECK(facts_history_since(h, 11, 8, out, &n, &latest, &oldest) == FACTS_EGONE);
    for (uint64_t r = 11; r <= 12; r++)
        CHECK(facts_history_append(h, r, entry(r), NULL) == FACTS_OK);
    CHECK(facts_history_since(h, 10, 8, out, &n, &latest, &oldest) == FACTS_OK && n == 2 &&
          latest == 12);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *text = facts_history_entry_text(out[i], &len);
        char want[64];
        snprintf(want, sizeof want, "{\"revision\":%zu,\"op\":\"update\"}", 11 + i);
        CHECK(facts_history_entry_revision(out[i]) == 11 + i);
        CHECK(len == strlen(want) && strcmp(text, want) == 0);
        CHECK(json_is_object(facts_history_entry_json(out[i])));
        facts_history_entry_unref(out[i]);
    }
    /* Past the capacity the oldest goes. */
    for (uint64_t r = 13; r <= 14; r++)
        CHECK(facts_history_append(h, r, entry(r), NULL) == FACTS_OK);
    CHECK(facts_history_since(h, 10, 8, out, &n, &latest, &oldest) == FACTS_EGONE && oldest == 11);
    CHECK(facts_history_since(h, 11, 2, out, &n, &latest, &oldest) == FACTS_OK && n == 2 &&
          facts_history_entry_revision(out[0]) == 12 && facts_history_entry_revision(out[1]) == 13);
    /* Entries outlive the history. */
    facts_error err;
    CHECK(facts_history_append(h, 14, entry(14), &err) == FACTS_EARG);
    CHECK(facts_history_append(h, 9, entry(9), &err) == FACTS_EARG);
    CHECK(facts_history_append(h, 15, json_array(), &err) == FACTS_EARG);
    CHECK(facts_history_latest(h) == 14);
    facts_history_free(h);
    CHECK(facts_history_entry_revision(out[1]) == 13);
    facts_history_entry_unref(out[0]);
    facts_history_entry_unref(out[1]);
    CHECK(facts_history_new(0, 1) == NULL);
    CHECK(facts_history_new(FACTS_HISTORY_MAX + 1, 1) == NULL);
    facts_history_free(NULL);
}

enum { WRITES = 2000 };

static facts_history *shared;
static int reader_errors;

static void *reader(void *arg)
{
    (void)arg;
    uint64_t seen = 0;
    int errors = 0;
    while (seen < WRITES) {
        facts_history_entry *out[64];
        size_t n;
        uint64_t latest, oldest;
        facts_status s = facts_history_since(shared, seen, 64, out, &n, &latest, &oldest);
        if (s == FACTS_EGONE) {
            seen = oldest; /* fell behind: resync, as a client would */
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (facts_history_entry_revision(out[i]) != seen + 1)
                errors++;
            seen = facts_history_entry_revision(out[i]);
            facts_history_entry_unref(out[i]);
        }
    }
    __atomic_add_fetch(&reader_errors, errors, __ATOMIC_RELAXED);
    return NULL;
}

/* A reload may jump ahead: the revisions skipped were never published, so
 * a client at one of them (or before the jump) gets what follows. */
static void test_gaps(void)
{
    facts_history *h = facts_history_new(4, 1);
    CHECK(h != NULL);
    if (!h)
        return;
    uint64_t revs[] = {2, 3, 7, 8, 20};
    for (size_t i = 0; i < sizeof revs / sizeof revs[0]; i++)
        CHECK(facts_history_append(h, revs[i], entry(revs[i]), NULL) == FACTS_OK);
    /* Capacity 4: revision 2 went, so the history starts after 2. */
    facts_history_entry *out[8];
    size_t n = 0;
    uint64_t latest = 0, oldest = 0;
    CHECK(facts_history_since(h, 1, 8, out, &n, &latest, &oldest) == FACTS_EGONE &&
          oldest == 2 && latest == 20);
    struct {
        uint64_t since;
        size_t n;
        uint64_t first;
    } cases[] = {{2, 4, 3}, {3, 3, 7}, {4, 3, 7}, {6, 3, 7}, {7, 2, 8},
                 {8, 1, 20}, {12, 1, 20}, {19, 1, 20}, {20, 0, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        n = 99;
        facts_status st = facts_history_since(h, cases[c].since, 8, out, &n, &latest, &oldest);
        CHECK(st == FACTS_OK && n == cases[c].n);
        if (st == FACTS_OK && n > 0)
            CHECK(facts_history_entry_revision(out[0]) == cases[c].first);
        for (size_t i = 0; st == FACTS_OK && i < n; i++) {
            if (i > 0)
                CHECK(facts_history_entry_revision(out[i]) >
                      facts_history_entry_revision(out[i - 1]));
            facts_history_entry_unref(out[i]);
        }
    }
    CHECK(facts_history_since(h, 21, 8, out, &n, &latest, &oldest) == FACTS_EGONE);
    facts_history_free(h);
}

/* A restart after a change that could not be recorded: clients behind it
 * are told, nothing is kept, the sequence goes on after it. */
static void test_reset(void)
{
    facts_history *h = facts_history_new(4, 1);
    CHECK(h != NULL);
    if (!h)
        return;
    for (uint64_t r = 2; r <= 4; r++)
        CHECK(facts_history_append(h, r, entry(r), NULL) == FACTS_OK);
    facts_history_entry *out[8];
    size_t n = 0;
    uint64_t latest = 0, oldest = 0;
    CHECK(facts_history_since(h, 1, 8, out, &n, &latest, &oldest) == FACTS_OK && n == 3);
    facts_history_entry *kept = out[0];
    for (size_t i = 1; i < n; i++)
        facts_history_entry_unref(out[i]);
    facts_history_reset(h, 6);
    CHECK(facts_history_latest(h) == 6);
    CHECK(facts_history_since(h, 4, 8, out, &n, &latest, &oldest) == FACTS_EGONE &&
          oldest == 6 && latest == 6);
    CHECK(facts_history_since(h, 6, 8, out, &n, &latest, &oldest) == FACTS_OK && n == 0);
    CHECK(facts_history_append(h, 6, entry(6), NULL) == FACTS_EARG);
    CHECK(facts_history_append(h, 7, entry(7), NULL) == FACTS_OK);
    CHECK(facts_history_since(h, 6, 8, out, &n, &latest, &oldest) == FACTS_OK && n == 1 &&
          facts_history_entry_revision(out[0]) == 7);
    if (n == 1)
        facts_history_entry_unref(out[0]);
    CHECK(facts_history_entry_revision(kept) == 2); /* a held entry outlives the reset */
    facts_history_entry_unref(kept);
    facts_history_free(h);
}

static void test_threads(void)
{
    shared = facts_history_new(100, 0);
    if (!shared)
        return;
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, reader, NULL);
    int failed = 0;
    for (uint64_t r = 1; r <= WRITES; r++)
        failed += facts_history_append(shared, r, entry(r), NULL) != FACTS_OK;
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK(failed == 0 && reader_errors == 0);
    facts_history_free(shared);
}

int main(void)
{
    test_basics();
    test_gaps();
    test_reset();
    test_threads();
    return check_done("test_history");
}
