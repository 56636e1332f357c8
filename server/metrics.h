/*
 * metrics.h - the service's metrics: counters and histograms kept per
 * thread, the gauges a scrape reads, the replica state, and their
 * rendering in the Prometheus text format (0.0.4) or OpenMetrics 1.0.0.
 *
 * The registry is process-wide, like the process it describes: each thread
 * that records gets its own cache-line-aligned block of counters on its
 * first record (registered once under a mutex; a block of a thread that
 * exited is handed to the next new thread, so sums never go back), and
 * increments it with relaxed atomics. Recording takes no lock shared by
 * the workers; a scrape sums every block. Nothing here calls
 * libmicrohttpd.
 *
 * Replica hook: a replica (a server that follows a primary) reports its
 * state with factsd_metrics_replica_set. The first call turns replica mode
 * on for the life of the process: from then on the scrape carries
 * factsd_replica_lag_seconds and factsd_replica_connected, and /readyz
 * answers ready only while the last report said ready (a snapshot is
 * loaded and caught up), naming lag_seconds and revision when it is not.
 * Call it once with ready false before the HTTP service starts, so that
 * the service is never ready before the replica is; then on every change
 * of state (a cheap call: a few relaxed atomic stores), from any thread.
 */
#ifndef FACTSD_METRICS_H
#define FACTSD_METRICS_H

#include "routes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FACTSD_METRICS_BODY_MAX = 1024 * 1024, /* bytes of a rendered scrape */
    FACTSD_METRICS_BLOCKS_MAX = 4096       /* per-thread blocks at once; the
                                              threads beyond share one */
};

/* The request methods counted apart; the rest are "other". */
typedef enum factsd_metrics_method {
    FACTSD_METRICS_GET = 0,
    FACTSD_METRICS_HEAD,
    FACTSD_METRICS_OPTIONS,
    FACTSD_METRICS_POST,
    FACTSD_METRICS_PUT,
    FACTSD_METRICS_PATCH,
    FACTSD_METRICS_DELETE,
    FACTSD_METRICS_OTHER,
    FACTSD_METRICS_METHOD_COUNT
} factsd_metrics_method;

/* The formats of a scrape. */
typedef enum factsd_metrics_format {
    FACTSD_METRICS_TEXT = 0,   /* text/plain; version=0.0.4 */
    FACTSD_METRICS_OPENMETRICS /* application/openmetrics-text; version=1.0.0 */
} factsd_metrics_format;

/* The values a scrape reads from the service at that moment. */
typedef struct factsd_metrics_gauges {
    uint64_t revision;    /* the published dataset revision */
    uint64_t connections; /* open client connections */
    uint64_t long_polls;  /* long-polls of /v1/changes held waiting */
    uint64_t streams;     /* event streams open */
    uint64_t history;     /* change entries the history keeps */
} factsd_metrics_gauges;

/* What the replica last reported (factsd_metrics_replica_set). */
typedef struct factsd_metrics_replica {
    bool enabled;      /* replica mode is on: it reported at least once */
    bool connected;    /* it is connected to its primary */
    bool ready;        /* a snapshot is loaded and it has caught up */
    bool diverged;     /* its primary's data is behind its own, or differs at
                          the same revision: it waits, not ready */
    uint64_t lag_ms;   /* how far it is behind its primary */
    uint64_t revision; /* the revision it has applied; 0: none yet */
} factsd_metrics_replica;

/* Counts one answered request: route (factsd_route_id; an id outside the
 * known set counts as "other", as FACTSD_ROUTE_NONE does), method, status
 * (its class: 1xx to 5xx), bytes of content sent, and, when timed, its
 * duration in nanoseconds in the latency histogram of its route. Never
 * fails (when no block can be allocated the record is dropped). */
void factsd_metrics_request(factsd_route_id route, factsd_metrics_method method,
                            unsigned status, uint64_t bytes, bool timed, uint64_t duration_ns);

/* Counts one journal append (ok: it was stored and synced) that took
 * duration_ns. Never fails. */
void factsd_metrics_journal_append(bool ok, uint64_t duration_ns);

/* Counts one compaction that completed. Never fails. */
void factsd_metrics_compaction(void);

/* The replica hook (see the file comment): rep (borrowed; its enabled is
 * ignored) says how far the replica is behind its primary, whether it is
 * connected, ready to answer (a snapshot loaded and caught up), diverged,
 * and the revision it has applied (0: none yet). Thread-safe; never
 * fails. */
void factsd_metrics_replica_set(const factsd_metrics_replica *rep);

/* Fills *out with the replica's last report (enabled false and the rest
 * zero before any). Thread-safe; never fails. */
void factsd_metrics_replica_get(factsd_metrics_replica *out);

/* Notes the process's start (for process_start_time_seconds; the first
 * call wins). The service calls it as it starts. Never fails. */
void factsd_metrics_start(void);

/* The format the Accept value accept (may be NULL) prefers: OpenMetrics
 * when it ranks application/openmetrics-text above text/plain, the text
 * format otherwise (also when it allows neither). Never fails. */
factsd_metrics_format factsd_metrics_negotiate(const char *accept);

/* Renders every metric in format, with the gauges g and the build version
 * version (a short string; quotes and backslashes are escaped). Returns a
 * NUL-terminated body owned by the caller (free()) and sets *len, or NULL
 * when memory runs out or the body would pass FACTSD_METRICS_BODY_MAX.
 * Thread-safe (it reads the counters while others record). */
char *factsd_metrics_render(factsd_metrics_format format, const factsd_metrics_gauges *g,
                            const char *version, size_t *len);

#endif /* FACTSD_METRICS_H */
