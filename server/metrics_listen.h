/*
 * metrics_listen.h - /metrics over HTTP: the representation of a scrape
 * (the format Accept prefers), and the listener of --metrics-listen, a
 * second libmicrohttpd daemon on its own address that answers /metrics
 * only (404 for every other path).
 */
#ifndef FACTSD_METRICS_LISTEN_H
#define FACTSD_METRICS_LISTEN_H

#include "config.h"
#include "metrics.h"
#include "render.h"

#include <stddef.h>

/* Fills *out with the service's gauges at this moment. Called from the
 * listener's thread; must be thread-safe. */
typedef void (*factsd_metrics_gauges_fn)(void *cls, factsd_metrics_gauges *out);

/* Makes the representation of a scrape with the gauges g, in the format
 * the Accept value accept (may be NULL) prefers (factsd_metrics_negotiate),
 * marked as negotiated (Vary: Accept). Returns a representation owned by
 * the caller (factsd_repr_free), or NULL when memory runs out or the body
 * would pass FACTSD_METRICS_BODY_MAX. */
factsd_repr *factsd_metrics_repr_new(const factsd_metrics_gauges *g, const char *accept);

/* A running metrics listener. Opaque. */
typedef struct factsd_metrics_listener factsd_metrics_listener;

/* Starts listening on cfg's metrics address (cfg->metrics_host and
 * metrics_port; port 0 picks a free one) with one thread, cfg's timeout
 * and CORS policy (the configuration is copied); gauges(cls) supplies the
 * gauges of each scrape and must stay callable until
 * factsd_metrics_listener_stop. Returns the listener, or NULL with a
 * one-line reason in msg (size bytes) when the address cannot be bound, the
 * thread cannot start or memory runs out. */
factsd_metrics_listener *factsd_metrics_listen(const factsd_config *cfg,
                                               factsd_metrics_gauges_fn gauges, void *cls,
                                               char *msg, size_t size);

/* The listener's base URL, e.g. "http://127.0.0.1:9100" (with the port it
 * got). Valid until factsd_metrics_listener_stop. */
const char *factsd_metrics_listener_url(const factsd_metrics_listener *l);

/* Stops the listener (closing its connections) and frees it. NULL is a
 * no-op. */
void factsd_metrics_listener_stop(factsd_metrics_listener *l);

#endif /* FACTSD_METRICS_LISTEN_H */
