/*
 * main.c - the factsd executable: flags to a configuration, the dataset to a
 * store, then the HTTP service until SIGINT or SIGTERM.
 */
#include "config.h"
#include "http.h"

#include <facts.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifndef FACTSD_VERSION
#define FACTSD_VERSION FACTS_VERSION
#endif

enum { GRACE_MS = 10000 };

/* Lets the process open as many descriptors as the configuration needs. */
static void raise_fd_limit(unsigned connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    json_object_seed(0);
    factsd_config cfg;
    factsd_config_init(&cfg);
    char msg[1024];
    switch (factsd_config_parse(&cfg, argc, argv, msg, sizeof msg)) {
    case FACTSD_CONFIG_HELP:
        fputs(factsd_config_usage(), stdout);
        return 0;
    case FACTSD_CONFIG_VERSION:
        printf("factsd %s (dataset format %s)\n", FACTSD_VERSION, FACTS_DATASET_FORMAT);
        return 0;
    case FACTSD_CONFIG_ERROR:
        fprintf(stderr, "%s\n%s", msg, factsd_config_usage());
        return 2;
    case FACTSD_CONFIG_RUN:
        break;
    }

    facts_store *store = NULL;
    facts_error err;
    facts_status st = cfg.data_path[0] != '\0'
                          ? facts_store_load_file(cfg.data_path, &store, &err)
                          : facts_store_load_embedded(&store, &err);
    if (st != FACTS_OK) {
        facts_error_format(&err, msg, sizeof msg);
        fprintf(stderr, "factsd: cannot load the dataset: %s\n", msg);
        return 1;
    }

    /* Block the stop signals in every thread; this one waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        fprintf(stderr, "factsd: cannot block SIGINT and SIGTERM\n");
        facts_store_unref(store);
        return 1;
    }
    raise_fd_limit(cfg.max_connections);

    factsd_http *http = factsd_http_start(&cfg, store, msg, sizeof msg);
    facts_store_unref(store);
    if (http == NULL) {
        fprintf(stderr, "factsd: %s\n", msg);
        return 1;
    }
    printf("factsd listening on %s\n", factsd_http_url(http));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    factsd_http_stop(http, GRACE_MS);
    return 0;
}
