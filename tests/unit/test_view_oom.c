/*
 * test_view_oom.c - allocation failures inside Jansson while factsd builds
 * a view: for every allocation of factsd_view_new, making exactly that one
 * fail gives NULL or a complete view, never a crash. Leaks on those paths
 * are caught by the sanitizer build (LeakSanitizer at exit).
 *
 * usage: test_view_oom DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "failing_alloc.h"
#include "config.h"
#include "facts.h"
#include "view.h"

static const char openapi[] = "{\"openapi\":\"3.1.0\"}";


int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_view_oom DATA_DIR\n");
        return 2;
    }
    /* Installed before the core's first load, which wraps it. */
    json_set_alloc_funcs(failing_malloc, free);
    char path[1024];
    snprintf(path, sizeof path, "%s/valid/minimal.json", argv[1]);
    facts_store *store = NULL;
    facts_error err;
    CHECK(facts_store_load_file(path, &store, &err) == FACTS_OK);
    if (store == NULL)
        return check_done("test_view_oom");
    factsd_config cfg;
    factsd_config_init(&cfg);
    char msg[256];
    failing_calls = 0;
    factsd_view *v = factsd_view_new(store, openapi, sizeof openapi - 1, &cfg, msg, sizeof msg);
    long total = failing_calls;
    CHECK(v != NULL && total > 20);
    factsd_view_unref(v);
    int nulls = 0;
    for (long n = 0; n < total; n++) {
        failing_countdown = n;
        v = factsd_view_new(store, openapi, sizeof openapi - 1, &cfg, msg, sizeof msg);
        failing_countdown = -1;
        if (v == NULL)
            nulls++;
        factsd_view_unref(v);
    }
    CHECK(nulls > 0);
    facts_store_unref(store);
    return check_done("test_view_oom");
}
