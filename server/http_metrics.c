/*
 * http_metrics.c - the service's own view of itself (http_conn.h): the
 * gauges a scrape reads, GET /metrics on the main listener, GET /readyz,
 * and the count of each request as it completes (metrics.c keeps the
 * counters).
 */
#include "http_conn.h"

#include "held.h"
#include "metrics.h"
#include "problem.h"
#include "render.h"
#include "view.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The metrics' name of each method. */
static const factsd_metrics_method metrics_methods[] = {
    [FACTSD_METHOD_GET] = FACTSD_METRICS_GET,         [FACTSD_METHOD_HEAD] = FACTSD_METRICS_HEAD,
    [FACTSD_METHOD_OPTIONS] = FACTSD_METRICS_OPTIONS, [FACTSD_METHOD_POST] = FACTSD_METRICS_POST,
    [FACTSD_METHOD_PUT] = FACTSD_METRICS_PUT,         [FACTSD_METHOD_PATCH] = FACTSD_METRICS_PATCH,
    [FACTSD_METHOD_DELETE] = FACTSD_METRICS_DELETE,   [FACTSD_METHOD_OTHER] = FACTSD_METRICS_OTHER,
};

void factsd_http_gauges(void *cls, factsd_metrics_gauges *g)
{
    factsd_http *h = cls;
    atomic_fetch_add(&h->readers, 1);
    factsd_view *v = factsd_view_ref(atomic_load(&h->view));
    atomic_fetch_sub(&h->readers, 1);
    g->revision = facts_store_revision(factsd_view_store(v));
    factsd_view_unref(v);
    g->connections = factsd_conn_count(h->conns);
    size_t polls = 0, streams = 0, history = 0;
    factsd_held_counts(h->held, &polls, &streams, &history);
    g->long_polls = polls;
    g->streams = streams;
    g->history = history;
}

void factsd_http_metrics_get(factsd_http_conn *k, struct MHD_Connection *c, factsd_answer *out)
{
    factsd_metrics_gauges g;
    factsd_http_gauges(k->http, &g);
    out->own = factsd_metrics_repr_new(&g, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                        "Accept"));
    out->repr = out->own;
    out->status = out->own != NULL ? 200 : 500;
}

void factsd_http_ready_get(factsd_http_conn *k, factsd_answer *out)
{
    uint64_t revision = facts_store_revision(factsd_view_store(k->view));
    factsd_metrics_replica rep;
    factsd_metrics_replica_get(&rep);
    const char *detail = NULL;
    if (atomic_load(&k->http->stopping))
        detail = "the server is stopping";
    else if (rep.enabled && !rep.ready)
        detail = rep.revision == 0 ? "the replica has not loaded a snapshot yet"
                 : rep.diverged    ? "the primary's data is behind this replica's, or differs "
                                     "at the same revision: the replica keeps its revision "
                                     "until the primary moves past it"
                                   : "the replica has not caught up with its primary";
    out->repr = out->own = NULL;
    out->status = 500;
    if (detail == NULL) {
        char *body = malloc(64);
        if (body != NULL)
            snprintf(body, 64, "{\"status\":\"ready\",\"revision\":%llu}",
                     (unsigned long long)revision);
        out->own = body != NULL ? factsd_repr_new(body, strlen(body), FACTSD_MEDIA_JSON, NULL)
                                : NULL;
        factsd_repr_set_revision(out->own, revision);
        out->status = 200;
    } else {
        json_t *extra = json_object();
        bool ok = extra != NULL;
        if (ok && rep.enabled)
            ok = json_object_set_new(extra, "lag_seconds",
                                     json_real((double)rep.lag_ms / 1000.0)) == 0;
        if (ok && rep.enabled && rep.revision > 0)
            ok = json_object_set_new(extra, "revision",
                                     json_integer((json_int_t)rep.revision)) == 0;
        if (ok)
            out->own = factsd_problem_new_ext(FACTSD_PROBLEM_UNAVAILABLE, detail, extra);
        else
            json_decref(extra);
        out->status = 503;
    }
    out->repr = out->own;
    if (out->own == NULL)
        out->status = 500;
}

void factsd_http_metrics_record(factsd_http_conn *k, enum MHD_RequestTerminationCode toe)
{
    if (k->status == 0)
        return;
    bool held = k->waited || k->held.is_stream;
    uint64_t bytes = k->held.is_stream                         ? k->held.sent
                     : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? k->sent
                                                                 : 0;
    uint64_t ns = 0;
    if (!held) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns = factsd_http_elapsed_ns(&k->t0, &t1);
    }
    factsd_metrics_request(k->routed ? k->route.id : FACTSD_ROUTE_NONE,
                           metrics_methods[k->method], k->status, bytes, !held, ns);
}
