/*
 * http_feed.c - the change feed's part of the request cycle (http_conn.h):
 * GET /v1/changes (answered at once, or held as a long-poll by held.c) and
 * GET /v1/stream (an event stream produced by held.c and stream.c).
 */
#include "http_conn.h"

#include "feed.h"
#include "held.h"
#include "problem.h"
#include "render.h"
#include "stream.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

enum MHD_Result factsd_http_changes(factsd_http_conn *k, struct MHD_Connection *c,
                                    const char *method)
{
    factsd_http *h = k->http;
    if (k->waited && atomic_load(&k->held.peer_gone))
        return MHD_NO; /* the client left while it waited: close */
    const char *q = memchr(k->target, '?', k->target_len);
    size_t qlen = q != NULL ? k->target_len - (size_t)(q - k->target) - 1 : 0;
    factsd_feed_query fq;
    factsd_problem_param bad[8];
    size_t nbad = factsd_feed_query_parse(q != NULL ? q + 1 : "", qlen, &fq, bad, 8);
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
    };
    if (nbad > 0) {
        factsd_repr_free(k->own);
        k->own = factsd_problem_new(FACTSD_PROBLEM_INVALID_PARAMETERS,
                                    nbad == 1 ? "a query parameter is not valid here"
                                              : "some query parameters are not valid here",
                                    bad, nbad < 8 ? nbad : 8);
        return factsd_http_send(k, c, method, 400, k->own, &opts);
    }
    facts_history_entry *ents[FACTSD_FEED_LIMIT_MAX];
    size_t n = 0;
    uint64_t latest = 0, oldest = 0;
    facts_status st;
    factsd_held_result r = factsd_held_changes(h->held, &k->held, c, &fq, !k->waited, ents, &n,
                                               &latest, &oldest, &st);
    if (r == FACTSD_HELD_FULL) {
        factsd_repr_free(k->own);
        k->own = factsd_problem_new(FACTSD_PROBLEM_UNAVAILABLE,
                                    "too many requests are waiting for changes: retry "
                                    "shortly",
                                    NULL, 0);
        opts.retry_after = "1";
        return factsd_http_send(k, c, method, 503, k->own, &opts);
    }
    if (r == FACTSD_HELD_SUSPENDED) {
        /* The handler runs again only after this call returns, in this
         * connection's worker. */
        k->waited = true;
        return MHD_YES;
    }
    factsd_repr_free(k->own);
    k->own = NULL;
    if (st == FACTS_EGONE) {
        char detail[320];
        if (fq.since > latest)
            snprintf(detail, sizeof detail,
                     "revision %llu is newer than the latest, %llu: reload the collections "
                     "and continue from the revision they report",
                     (unsigned long long)fq.since, (unsigned long long)latest);
        else
            snprintf(detail, sizeof detail,
                     "the changes after revision %llu are no longer kept (the history starts "
                     "after revision %llu): reload the collections and continue from the "
                     "revision they report",
                     (unsigned long long)fq.since, (unsigned long long)oldest);
        json_t *extra = json_object();
        if (extra != NULL &&
            json_object_set_new(extra, "revision", json_integer((json_int_t)latest)) == 0)
            k->own = factsd_problem_new_ext(FACTSD_PROBLEM_GONE, detail, extra);
        else
            json_decref(extra);
        return factsd_http_send(k, c, method, 410, k->own, &opts);
    }
    if (st == FACTS_OK) {
        uint64_t next = n > 0 ? facts_history_entry_revision(ents[n - 1]) : fq.since;
        k->own = factsd_feed_render(ents, n, latest, next);
        for (size_t i = 0; i < n; i++)
            facts_history_entry_unref(ents[i]);
    }
    return factsd_http_send(k, c, method, 200, k->own, &opts);
}

/* The content reader of a HEAD answer: no content. */
static ssize_t stream_head_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* Adds the headers of a stream answer; false when memory runs out. */
static bool stream_headers_add(struct MHD_Response *resp, factsd_http *h, const char *origin)
{
    return MHD_add_response_header(resp, "Content-Type", "text/event-stream") == MHD_YES &&
           MHD_add_response_header(resp, "Cache-Control", "no-cache") == MHD_YES &&
           MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES &&
           MHD_add_response_header(resp, "X-Accel-Buffering", "no") == MHD_YES &&
           factsd_cors_add_headers(resp, &h->cfg, origin);
}

enum MHD_Result factsd_http_stream(factsd_http_conn *k, struct MHD_Connection *c,
                                   const char *method)
{
    factsd_http *h = k->http;
    const char *q = memchr(k->target, '?', k->target_len);
    size_t qlen = q != NULL ? k->target_len - (size_t)(q - k->target) - 1 : 0;
    factsd_stream_query sq;
    factsd_problem_param bad[8];
    size_t nbad = factsd_stream_query_parse(
        q != NULL ? q + 1 : "", qlen, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                    "Last-Event-ID"),
        &sq, bad, 8);
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
    };
    factsd_repr_free(k->own);
    k->own = NULL;
    if (nbad > 0) {
        k->own = factsd_problem_new(FACTSD_PROBLEM_INVALID_PARAMETERS,
                                    nbad == 1 ? "a parameter is not valid here"
                                              : "some parameters are not valid here",
                                    bad, nbad < 8 ? nbad : 8);
        return factsd_http_send(k, c, method, 400, k->own, &opts);
    }
    if (k->method == FACTSD_METHOD_HEAD) {
        /* The headers alone, without taking a stream. Answered without
         * chunking (libmicrohttpd would end a chunked HEAD answer with a
         * last-chunk all the same), and the connection closes. */
        struct MHD_Response *head =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, FACTSD_HELD_STREAM_BLOCK,
                                              stream_head_read, NULL, NULL);
        enum MHD_Result rc = MHD_NO;
        if (head != NULL &&
            MHD_set_response_options(head, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END) ==
                MHD_YES &&
            stream_headers_add(head, h, opts.origin) &&
            MHD_add_response_header(head, "Connection", "close") == MHD_YES)
            rc = factsd_http_queue(k, c, method, 200, head);
        else
            rc = factsd_http_queue(k, c, method, 500, h->fallback);
        if (head != NULL)
            MHD_destroy_response(head);
        return rc;
    }
    struct MHD_Response *resp = NULL;
    factsd_held_stream_result st = factsd_held_stream_open(h->held, &k->held, c, &sq, &resp);
    if (st == FACTSD_HELD_STREAM_NOMEM)
        return factsd_http_queue(k, c, method, 500, h->fallback);
    if (st != FACTSD_HELD_STREAM_OK) {
        k->own = factsd_problem_new(FACTSD_PROBLEM_UNAVAILABLE,
                                    st == FACTSD_HELD_STREAM_CLOSED
                                        ? "the server is stopping: retry shortly"
                                        : "too many event streams are open: retry shortly",
                                    NULL, 0);
        opts.retry_after = "1";
        return factsd_http_send(k, c, method, 503, k->own, &opts);
    }
    if (!stream_headers_add(resp, h, opts.origin)) {
        MHD_destroy_response(resp);
        return factsd_http_queue(k, c, method, 500, h->fallback);
    }
    enum MHD_Result rc = factsd_http_queue(k, c, method, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}
