/*
 * main.c - the factsd executable: flags to a configuration, the dataset to a
 * store with the journal replayed onto it, then the HTTP service until
 * SIGINT or SIGTERM (SIGHUP reloads the dataset); or, with --compact, the
 * dataset saved with the journal applied and an empty journal; or, with
 * --follow, a read-only replica of a primary (follow.h).
 */
#include "auth.h"
#include "config.h"
#include "follow.h"
#include "http.h"
#include "write.h"

#include <facts.h>
#include <jansson.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
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

/* Prints err as "factsd: what: message" on stderr. */
static void print_error(const char *what, const facts_error *err)
{
    char msg[1024];
    facts_error_format(err, msg, sizeof msg);
    fprintf(stderr, "factsd: %s: %s\n", what, msg);
}

/* Opens and replays the journal of cfg onto *store; logs a cut torn tail;
 * the replayed changes' entries go to history (may be NULL). Returns the
 * journal, or NULL with the reason printed. */
static facts_journal *journal_start(const factsd_config *cfg, facts_store **store,
                                    json_t *history)
{
    facts_journal *j = NULL;
    facts_journal_report rep;
    facts_error err;
    if (factsd_journal_open_replay(cfg->journal_path, store, &j, &rep, history, &err) !=
        FACTS_OK) {
        print_error("cannot use the journal", &err);
        return NULL;
    }
    if (rep.torn_bytes > 0)
        fprintf(stderr,
                "factsd: warning: the journal's last record was torn (a crash while "
                "writing): %llu bytes cut at byte offset %llu, saved to %s\n",
                (unsigned long long)rep.torn_bytes, (unsigned long long)rep.torn_offset,
                rep.torn_saved[0] != '\0' ? rep.torn_saved : "(nowhere)");
    if (rep.records > 0)
        fprintf(stderr, "factsd: journal: %zu records, now at revision %llu\n", rep.records,
                (unsigned long long)facts_store_revision(*store));
    return j;
}

/* --compact: the dataset with the journal applied, saved over --data, and
 * an empty journal. Returns the exit status. */
static int compact(const factsd_config *cfg, facts_store *store)
{
    if (cfg->data_path[0] == '\0') {
        fprintf(stderr, "factsd: --compact needs --data FILE: the embedded dataset cannot be "
                        "rewritten\n");
        facts_store_unref(store);
        return 2;
    }
    facts_journal *j = NULL;
    if (cfg->journal_path[0] != '\0' && (j = journal_start(cfg, &store, NULL)) == NULL) {
        facts_store_unref(store);
        return 1;
    }
    facts_error err;
    int rc = 0;
    if (facts_store_save(store, cfg->data_path, &err) != FACTS_OK) {
        print_error("cannot save the dataset", &err);
        rc = 1;
    } else if (j != NULL && facts_journal_reset(j, &err) != FACTS_OK) {
        print_error("the dataset is saved but the journal could not be emptied", &err);
        rc = 1;
    } else {
        printf("factsd: compacted %s at revision %llu\n", cfg->data_path,
               (unsigned long long)facts_store_revision(store));
    }
    facts_journal_close(j);
    facts_store_unref(store);
    return rc;
}

/* The write token from --token-file or FACTSD_TOKEN; NULL with *failed
 * false when neither is given. */
static char *token_load(const factsd_config *cfg, bool *failed)
{
    char msg[512];
    char *token = NULL;
    *failed = false;
    const char *env = getenv("FACTSD_TOKEN");
    if (cfg->token_path[0] != '\0')
        token = factsd_token_read_file(cfg->token_path, msg, sizeof msg);
    else if (env != NULL)
        token = factsd_token_from_env(env, msg, sizeof msg);
    else
        return NULL;
    if (token == NULL) {
        fprintf(stderr, "factsd: %s\n", msg);
        *failed = true;
    }
    /* The process keeps its own copy: the environment (readable in
     * /proc/PID/environ, inherited by children) need not. */
    unsetenv("FACTSD_TOKEN");
    return token;
}

/* Blocks the stop and reload signals in every thread to come; the main
 * thread waits for them (serve), so a reload runs there, outside any signal
 * handler. Returns false with the reason printed. */
static bool signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0) {
        fprintf(stderr, "factsd: cannot block SIGINT, SIGTERM and SIGHUP\n");
        return false;
    }
    return true;
}

/* Prints where the service listens, then waits for SIGINT or SIGTERM;
 * SIGHUP reloads the dataset (a replica's comes from its primary). */
static void serve(factsd_http *http, const sigset_t *set, bool replica)
{
    printf("factsd listening on %s\n", factsd_http_url(http));
    if (factsd_http_metrics_url(http) != NULL)
        printf("factsd metrics on %s/metrics\n", factsd_http_metrics_url(http));
    fflush(stdout);
    char msg[1024];
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        if (replica)
            fprintf(stderr, "factsd: SIGHUP ignored: a replica's data comes from its primary\n");
        else if (factsd_http_reload(http, msg, sizeof msg))
            fprintf(stderr, "factsd: reloaded the dataset: %s\n", msg);
        else
            fprintf(stderr, "factsd: reload failed: %s\n", msg);
    }
}

/* --follow: the primary's snapshot, then the service (read-only) and the
 * thread applying the primary's changes. Until the first snapshot loads the
 * process does not listen, and SIGINT or SIGTERM end it at once. Returns
 * the exit status. */
static int replica_run(const factsd_config *cfg)
{
    char msg[1024];
    if (getenv("FACTSD_TOKEN") != NULL) {
        fprintf(stderr, "factsd: --follow cannot go with FACTSD_TOKEN: a replica takes no "
                        "writes\n");
        return 2;
    }
    factsd_follow *f = factsd_follow_new(cfg, msg, sizeof msg);
    if (f == NULL) {
        fprintf(stderr, "factsd: %s\n", msg);
        return 1;
    }
    fprintf(stderr, "factsd: following %s: loading its snapshot\n", cfg->follow_url);
    facts_store *store = factsd_follow_bootstrap(f);
    if (store == NULL) {
        factsd_follow_free(f);
        return 1;
    }
    fprintf(stderr, "factsd: loaded the primary's snapshot at revision %llu\n",
            (unsigned long long)facts_store_revision(store));
    sigset_t set;
    if (!signals_block(&set)) {
        facts_store_unref(store);
        factsd_follow_free(f);
        return 1;
    }
    raise_fd_limit(cfg->max_connections);
    factsd_http *http = factsd_http_start(cfg, store, msg, sizeof msg);
    if (http == NULL) {
        fprintf(stderr, "factsd: %s\n", msg);
        facts_store_unref(store);
        factsd_follow_free(f);
        return 1;
    }
    bool started = factsd_follow_start(f, http, store, msg, sizeof msg);
    facts_store_unref(store);
    if (!started) {
        fprintf(stderr, "factsd: %s\n", msg);
        factsd_follow_free(f);
        factsd_http_stop(http, 0);
        return 1;
    }
    serve(http, &set, true);
    factsd_follow_free(f);
    factsd_http_stop(http, GRACE_MS);
    return 0;
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

    if (cfg.follow_url[0] != '\0')
        return replica_run(&cfg);

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
    if (cfg.compact)
        return compact(&cfg, store);

    bool token_failed;
    char *token = token_load(&cfg, &token_failed);
    if (token_failed) {
        facts_store_unref(store);
        return 1;
    }
    /* The journal's changes since the dataset: /v1/changes answers from
     * before a restart, so followers (replicas) go on without a snapshot. */
    json_t *history = json_array();
    facts_journal *journal = NULL;
    if (history == NULL ||
        (cfg.journal_path[0] != '\0' &&
         (journal = journal_start(&cfg, &store, history)) == NULL)) {
        if (history == NULL)
            fprintf(stderr, "factsd: out of memory\n");
        json_decref(history);
        facts_store_unref(store);
        free(token);
        return 1;
    }

    sigset_t wait_set;
    if (!signals_block(&wait_set)) {
        facts_store_unref(store);
        facts_journal_close(journal);
        json_decref(history);
        free(token);
        return 1;
    }
    raise_fd_limit(cfg.max_connections);

    factsd_http *http =
        factsd_http_start_writable(&cfg, store, token, journal, history, msg, sizeof msg);
    json_decref(history);
    facts_store_unref(store);
    if (token != NULL) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (http == NULL) {
        fprintf(stderr, "factsd: %s\n", msg);
        return 1;
    }
    serve(http, &wait_set, false);
    factsd_http_stop(http, GRACE_MS);
    return 0;
}
