/*
 * http.h - the factsd HTTP service: a hardened libmicrohttpd daemon serving
 * the read API for one dataset snapshot. A host program can embed it:
 * fill a factsd_config, load a facts_store, call factsd_http_start, and
 * factsd_http_stop when done.
 */
#ifndef FACTSD_HTTP_H
#define FACTSD_HTTP_H

#include "config.h"

#include <facts.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A running service. Opaque. */
typedef struct factsd_http factsd_http;

/* Renders every representation of store once, then starts listening on
 * cfg's address with cfg's limits (the configuration is copied; the service
 * takes its own reference on store). Before any worker thread starts it seeds
 * Jansson's hash function (json_object_seed(0)) and sets SIGPIPE to be
 * ignored for the whole process. Returns the service, or NULL with a
 * one-line reason in msg (size bytes) when the address cannot be bound, a
 * thread cannot start or memory runs out. */
factsd_http *factsd_http_start(const factsd_config *cfg, facts_store *store, char *msg,
                               size_t size);

/* The port the service listens on (the one picked when cfg's port was 0). */
uint16_t factsd_http_port(const factsd_http *h);

/* The service's base URL, e.g. "http://127.0.0.1:8080". Valid until
 * factsd_http_stop. */
const char *factsd_http_url(const factsd_http *h);

/* Publishes store (the service takes its own reference) in place of the
 * current snapshot: renders all its representations first, then swaps them
 * in at once. Requests already running finish on the snapshot they started
 * with; every later request reads the new one. Returns true, or false with a
 * one-line reason in msg (size bytes) when memory runs out, leaving the
 * current snapshot published. Thread-safe. */
bool factsd_http_publish(factsd_http *h, facts_store *store, char *msg, size_t size);

/* Stops accepting connections, lets requests in progress finish (waiting at
 * most grace_ms milliseconds), closes every connection, and frees h. NULL is
 * a no-op. Must not be called from a request handler thread. */
void factsd_http_stop(factsd_http *h, unsigned grace_ms);

#endif /* FACTSD_HTTP_H */
