/*
 * http_publish.c - what replaces the published dataset other than a write
 * (http.h): factsd_http_publish for an embedding program, factsd_http_reload
 * for SIGHUP, factsd_http_advance for a replica's step. Each renders the
 * next view first and swaps it in under the writer mutex, so readers never
 * wait and revisions only move forward.
 */
#include "http_conn.h"

#include "feed.h"
#include "held.h"
#include "openapi.h"
#include "view.h"
#include "write.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

bool factsd_http_publish(factsd_http *h, facts_store *store, char *msg, size_t size)
{
    factsd_view *next = factsd_view_new(store, (const char *)factsd_openapi_json,
                                        factsd_openapi_json_len, &h->cfg, msg, size);
    if (next == NULL)
        return false;
    pthread_mutex_lock(&h->writer);
    factsd_http_view_swap(h, next);
    pthread_mutex_unlock(&h->writer);
    return true;
}

bool factsd_http_advance(factsd_http *h, facts_store *store, json_t *entry, char *msg, size_t size)
{
    uint64_t revision = facts_store_revision(store);
    factsd_view *next = factsd_view_new(store, (const char *)factsd_openapi_json,
                                        factsd_openapi_json_len, &h->cfg, msg, size);
    if (next == NULL) {
        json_decref(entry);
        return false;
    }
    if (entry == NULL &&
        (entry = factsd_feed_entry_new(revision, "reload", NULL, NULL, NULL, NULL, 0)) == NULL) {
        factsd_view_unref(next);
        snprintf(msg, size, "out of memory");
        return false;
    }
    pthread_mutex_lock(&h->writer);
    uint64_t was = facts_store_revision(factsd_view_store(atomic_load(&h->view)));
    if (revision <= was) {
        pthread_mutex_unlock(&h->writer);
        factsd_view_unref(next);
        json_decref(entry);
        snprintf(msg, size, "revision %llu is not after the running revision %llu",
                 (unsigned long long)revision, (unsigned long long)was);
        return false;
    }
    factsd_http_view_swap(h, next);
    factsd_held_record(h->held, revision, entry);
    pthread_mutex_unlock(&h->writer);
    return true;
}

bool factsd_http_reload(factsd_http *h, char *msg, size_t size)
{
    pthread_mutex_lock(&h->writer);
    facts_store *store = NULL;
    facts_error err;
    facts_status st = h->cfg.data_path[0] != '\0'
                          ? facts_store_load_file(h->cfg.data_path, &store, &err)
                          : facts_store_load_embedded(&store, &err);
    if (st != FACTS_OK) {
        char why[512];
        facts_error_format(&err, why, sizeof why);
        snprintf(msg, size, "the dataset is not valid, the running one stays: %s", why);
        pthread_mutex_unlock(&h->writer);
        return false;
    }
    if (h->journal == NULL && h->cfg.journal_path[0] != '\0') {
        /* Without its journal the reload would drop acknowledged writes. */
        facts_store_unref(store);
        snprintf(msg, size,
                 "the journal is not open after an earlier failure, the running "
                 "data stays: restart the server");
        pthread_mutex_unlock(&h->writer);
        return false;
    }
    if (h->journal != NULL && h->cfg.journal_path[0] != '\0') {
        /* Replaying needs the journal read again: close it, reopen it with
         * the replay onto the new store; on failure reopen it as it is. */
        facts_journal_close(h->journal);
        h->journal = NULL;
        facts_journal *j = NULL;
        st = factsd_journal_open_replay(h->cfg.journal_path, &store, &j, NULL, NULL, &err);
        if (st != FACTS_OK) {
            char why[512];
            facts_error_format(&err, why, sizeof why);
            snprintf(msg, size,
                     "the journal does not apply to the dataset, the running one "
                     "stays: %s",
                     why);
            facts_store_unref(store);
            if (facts_journal_open(h->cfg.journal_path, NULL, NULL, &h->journal, NULL, &err) !=
                FACTS_OK) {
                atomic_store(&h->writes_disabled, true);
                factsd_http_log_error("cannot reopen the journal; writes are disabled", &err);
            }
            pthread_mutex_unlock(&h->writer);
            return false;
        }
        h->journal = j;
    }
    /* Revisions only move forward, and one revision is one content: a
     * follower at the running revision must see a reload that changes
     * anything. */
    const facts_store *running = factsd_view_store(atomic_load(&h->view));
    uint64_t was = facts_store_revision(running);
    uint64_t revision = facts_store_revision(store);
    if (revision <= was) {
        if (facts_store_same_records(running, store)) {
            /* Nothing to follow, whatever the number says (without a
             * journal the running revision is ahead of the file's). */
            facts_store_unref(store);
            snprintf(msg, size, "the dataset is unchanged at revision %llu",
                     (unsigned long long)was);
            pthread_mutex_unlock(&h->writer);
            return true;
        }
        if (h->cfg.journal_path[0] != '\0') {
            /* The journal numbers its records after the dataset's revision:
             * the reloaded data cannot take a later one here. */
            facts_store_unref(store);
            snprintf(msg, size,
                     "the reloaded data is at revision %llu, not after the running revision "
                     "%llu, and it differs: the running data stays (compact, then edit the "
                     "dataset and give it a \"revision\" above %llu)",
                     (unsigned long long)revision, (unsigned long long)was,
                     (unsigned long long)was);
            pthread_mutex_unlock(&h->writer);
            return false;
        }
        /* Without a journal nothing durable carries the number: the new
         * data takes the next revision. (After a restart the server is at
         * the file's revision again; followers ahead of it get 410.) */
        if (facts_store_renumber(store, was + 1, &err) != FACTS_OK) {
            facts_store_unref(store);
            snprintf(msg, size, "the running data stays: %.200s", err.text);
            pthread_mutex_unlock(&h->writer);
            return false;
        }
        revision = was + 1;
    }
    factsd_view *next = factsd_view_new(store, (const char *)factsd_openapi_json,
                                        factsd_openapi_json_len, &h->cfg, msg, size);
    facts_store_unref(store);
    if (next == NULL) {
        pthread_mutex_unlock(&h->writer);
        return false;
    }
    factsd_http_view_swap(h, next);
    factsd_held_record(h->held, revision,
                       factsd_feed_entry_new(revision, "reload", NULL, NULL, NULL, NULL, 0));
    pthread_mutex_unlock(&h->writer);
    snprintf(msg, size, "revision %llu", (unsigned long long)revision);
    return true;
}
