/*
 * test_oom.c - allocation failures inside Jansson while a dataset loads: for
 * every allocation of a load, making exactly that one fail gives either
 * FACTS_ENOMEM with nothing returned, or (when the failure does not matter)
 * a store identical to a clean load - never a store with altered data.
 *
 * usage: test_oom DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "failing_alloc.h"
#include "facts.h"


int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_oom DATA_DIR\n");
        return 2;
    }
    /* Installed before the core's first load, which wraps it. */
    json_set_alloc_funcs(failing_malloc, free);
    char path[1024];
    snprintf(path, sizeof path, "%s/valid/minimal.json", argv[1]);
    facts_store *ref = NULL;
    facts_error err;
    failing_calls = 0;
    CHECK(facts_store_load_file(path, &ref, &err) == FACTS_OK);
    long total = failing_calls;
    CHECK(ref && total > 50);
    if (!ref)
        return check_done("test_oom");
    int bad = 0, enomem = 0;
    for (long n = 0; n < total; n++) {
        failing_countdown = n;
        facts_store *st = (facts_store *)(uintptr_t)0x1;
        facts_status s = facts_store_load_file(path, &st, &err);
        failing_countdown = -1;
        if (s == FACTS_ENOMEM && st == (facts_store *)(uintptr_t)0x1 && err.status == s) {
            enomem++;
        } else if (s == FACTS_OK && json_equal((json_t *)facts_store_json(st),
                                                (json_t *)facts_store_json(ref))) {
            facts_store_unref(st);
        } else {
            fprintf(stderr, "allocation %ld failed: %s (%s)\n", n, facts_status_name(s), err.text);
            if (s == FACTS_OK)
                facts_store_unref(st);
            bad++;
        }
    }
    CHECK(bad == 0);
    CHECK(enomem > 0);
    facts_store_unref(ref);
    return check_done("test_oom");
}
