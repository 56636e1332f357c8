/*
 * http.h - the factsd HTTP service: a hardened libmicrohttpd daemon serving
 * the read API from the current dataset snapshot and, with a token, the
 * write API that publishes the next one. A host program can embed it: fill
 * a factsd_config, load a facts_store, call factsd_http_start (or
 * factsd_http_start_writable), and factsd_http_stop when done.
 */
#ifndef FACTSD_HTTP_H
#define FACTSD_HTTP_H

#include "config.h"

#include <facts.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A running service. Opaque. */
typedef struct factsd_http factsd_http;

/* Renders every representation of store once, then starts listening on
 * cfg's address (and, with cfg->metrics_listen, on its metrics address for
 * /metrics alone) with cfg's limits (the configuration is copied; the service
 * takes its own reference on store). Before any worker thread starts it seeds
 * Jansson's hash function (json_object_seed(0)) and sets SIGPIPE to be
 * ignored for the whole process. Returns the service, or NULL with a
 * one-line reason in msg (size bytes) when the address cannot be bound, a
 * thread cannot start or memory runs out. */
factsd_http *factsd_http_start(const factsd_config *cfg, facts_store *store, char *msg,
                               size_t size);

/* As factsd_http_start, taking writes too: token (copied; NULL: the
 * service is read-only and refuses writes with 403) is the Bearer token
 * writes must carry; journal (may be NULL: writes are kept in memory only;
 * ownership passes to the service, also on failure) receives every change,
 * durably, before it is acknowledged; history (borrowed, may be NULL) holds
 * the change entries of the revisions before store's, oldest first, ending
 * at its revision (factsd_journal_open_replay's), which /v1/changes serves
 * as if they had been made here (not consecutive or not ending there: the
 * history starts at store's revision). cfg->data_path names the file that
 * compaction rewrites and reload re-reads ("" = the embedded dataset, which
 * compaction refuses); cfg->journal_path the journal's file. */
factsd_http *factsd_http_start_writable(const factsd_config *cfg, facts_store *store,
                                        const char *token, facts_journal *journal,
                                        const json_t *history, char *msg, size_t size);

/* Re-reads the dataset (cfg's data_path, or the embedded one), replays the
 * journal onto it and publishes the result, serialised with writes, with a
 * "reload" change entry. Revisions only move forward: a result at the
 * running revision with the same records changes nothing; one that differs
 * without a later revision is published as the next revision when there is
 * no journal, and refused with a journal (whose records are numbered after
 * the dataset's). Returns true with what happened in msg (size bytes), or
 * false with a one-line reason in msg leaving the running snapshot in place
 * (an invalid file, a journal that does not apply, a revision that does not
 * move forward, no memory). Thread-safe; not for a request handler thread. */
bool factsd_http_reload(factsd_http *h, char *msg, size_t size);

/* The port the service listens on (the one picked when cfg's port was 0). */
uint16_t factsd_http_port(const factsd_http *h);

/* The service's base URL, e.g. "http://127.0.0.1:8080". Valid until
 * factsd_http_stop. */
const char *factsd_http_url(const factsd_http *h);

/* The base URL of the metrics listener (cfg's metrics_listen), e.g.
 * "http://127.0.0.1:9100", or NULL when /metrics is served on the main
 * listener. Valid until factsd_http_stop. */
const char *factsd_http_metrics_url(const factsd_http *h);

/* Publishes store (the service takes its own reference) in place of the
 * current snapshot: renders all its representations first, then swaps them
 * in at once. Requests already running finish on the snapshot they started
 * with; every later request reads the new one. Returns true, or false with a
 * one-line reason in msg (size bytes) when memory runs out, leaving the
 * current snapshot published. Thread-safe. */
bool factsd_http_publish(factsd_http *h, facts_store *store, char *msg, size_t size);

/* A replica's step: publishes store (the service takes its own reference),
 * whose revision must be after the running one, as the next snapshot, and
 * records entry (a change entry as factsd_feed_entry_new makes them, which
 * the service's /v1/changes and /v1/stream then serve as they are; the
 * reference is consumed, also on failure; NULL: a "reload" entry at the
 * store's revision) in the history. Renders all representations before
 * taking the writer lock. Returns true, or false with a one-line reason in
 * msg (size bytes) when the revision does not move forward or memory runs
 * out, leaving the running snapshot and the history as they were.
 * Thread-safe; not for a request handler thread. */
bool factsd_http_advance(factsd_http *h, facts_store *store, json_t *entry, char *msg,
                         size_t size);

/* Stops accepting connections, lets requests in progress finish (waiting at
 * most grace_ms milliseconds), closes every connection, and frees h. NULL is
 * a no-op. Must not be called from a request handler thread. */
void factsd_http_stop(factsd_http *h, unsigned grace_ms);

#endif /* FACTSD_HTTP_H */
