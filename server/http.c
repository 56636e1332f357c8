/*
 * http.c - the libmicrohttpd daemon and the request cycle (see http.h and,
 * for what the cycle's parts share, http_conn.h). The parts: http_write.c
 * answers writes, http_feed.c /v1/changes and /v1/stream, http_metrics.c
 * /metrics and /readyz and counts each request, http_publish.c replaces
 * the published dataset (publish, reload, a replica's advance). Below them:
 * conn.c accepts connections, keeps their limits and deadlines;
 * request_check.c holds the framing rules; held.c holds long-polls and
 * streams open on the change history; access_log.c writes the log line;
 * routes.c answers the read API from the connection's view.
 *
 * Request cycle: the URI log callback copies the raw target into the
 * connection's context (libmicrohttpd decodes the URL it hands the access
 * handler, and a "%00" would cut it short). The first access-handler call
 * checks the framing and rejects bad requests at once with Connection:
 * close; a good request is answered on a later call so keep-alive survives.
 *
 * Writes: the first call also decides everything the headers can (route,
 * method, token, media type, length: 404, 405, 401, 403, 503, 415, 411,
 * 413) before any content is read; the content is then collected (at most
 * Content-Length, itself capped) and the final call runs the write
 * (http_write.c).
 */
#include "http.h"
#include "http_conn.h"

#include "access_log.h"
#include "conn.h"
#include "held.h"
#include "metrics.h"
#include "metrics_listen.h"
#include "openapi.h"
#include "negotiate.h"
#include "problem.h"
#include "request_check.h"
#include "render.h"
#include "routes.h"
#include "view.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
    MEMORY_LIMIT = 16 * 1024,  /* libmicrohttpd's memory per connection (it
                                  touches all of it: RSS grows by this much
                                  per open connection) */
    CONTENT_MAX = 16 * 1024,   /* request content read and discarded */
    DISCARD_MAX = 256 * 1024,  /* content read (and dropped) before a 413 is
                                  sent; beyond it the connection is cut */
};

static const char allow_read[] = "GET, HEAD, OPTIONS";

static const char fallback_body[] =
    "{\"type\":\"urn:factsd:problem:internal\",\"title\":\"Internal error\","
    "\"status\":500,\"detail\":\"the server ran out of memory\"}";

static bool method_writes(factsd_http_method m)
{
    return m == FACTSD_METHOD_POST || m == FACTSD_METHOD_PUT || m == FACTSD_METHOD_PATCH ||
           m == FACTSD_METHOD_DELETE;
}

/* ------------------------------------------------------------- helpers */

/* Points k at the published view, taking a new reference only when the
 * view changed since the connection's last request. */
static void conn_view_refresh(factsd_http *h, factsd_http_conn *k)
{
    unsigned gen = atomic_load(&h->view_generation);
    if (k->view != NULL && k->view_generation == gen)
        return;
    factsd_view_unref(k->view);
    atomic_fetch_add(&h->readers, 1);
    k->view = factsd_view_ref(atomic_load(&h->view));
    atomic_fetch_sub(&h->readers, 1);
    k->view_generation = gen;
}

void factsd_http_view_swap(factsd_http *h, factsd_view *next)
{
    factsd_view *old = atomic_exchange(&h->view, next);
    atomic_fetch_add(&h->view_generation, 1);
    while (atomic_load(&h->readers) != 0)
        sched_yield();
    factsd_view_unref(old);
}

static void conn_target_clear(factsd_http_conn *k)
{
    if (k->target != NULL && k->target != k->inline_target)
        free(k->target);
    k->target = NULL;
    k->target_len = 0;
    k->target_too_long = false;
    k->target_seen = false;
    k->routed = false;
}

const factsd_route *factsd_http_route(factsd_http_conn *k)
{
    if (!k->routed) {
        factsd_route_parse(k->target != NULL ? k->target : "", k->target_len, &k->route);
        /* With --metrics-listen, /metrics lives on that listener only. */
        if (k->route.id == FACTSD_ROUTE_METRICS && k->http->cfg.metrics_listen)
            k->route.id = FACTSD_ROUTE_NONE;
        k->routed = true;
    }
    return &k->route;
}

uint64_t factsd_http_elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    long long ns = (long long)(b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec);
    return ns > 0 ? (uint64_t)ns : 0;
}

/* Ends the current request's state (after completion or at close). */
static void conn_request_end(factsd_http_conn *k)
{
    factsd_conn_busy_set(&k->link, false);
    factsd_repr_free(k->own);
    k->own = NULL;
    k->started = false;
    k->answered = false;
    k->too_large = false;
    k->discarded = 0;
    k->status = 0;
    k->sent = 0;
    k->writing = false;
    k->refused = false;
    k->waited = false;
    factsd_held_slot_reset(&k->held);
    free(k->body);
    k->body = NULL;
    k->body_len = k->body_cap = 0;
    conn_target_clear(k);
}

static factsd_http_method method_parse(const char *m)
{
    static const struct {
        const char *name;
        factsd_http_method method;
    } methods[] = {
        {MHD_HTTP_METHOD_GET, FACTSD_METHOD_GET},
        {MHD_HTTP_METHOD_HEAD, FACTSD_METHOD_HEAD},
        {MHD_HTTP_METHOD_OPTIONS, FACTSD_METHOD_OPTIONS},
        {MHD_HTTP_METHOD_POST, FACTSD_METHOD_POST},
        {MHD_HTTP_METHOD_PUT, FACTSD_METHOD_PUT},
        {MHD_HTTP_METHOD_PATCH, FACTSD_METHOD_PATCH},
        {MHD_HTTP_METHOD_DELETE, FACTSD_METHOD_DELETE},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].method;
    }
    return FACTSD_METHOD_OTHER;
}

enum MHD_Result factsd_http_queue(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                                  unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    if (rc != MHD_YES)
        return rc;
    k->answered = true;
    k->status = status;
    if (resp == k->http->fallback)
        k->sent = k->method == FACTSD_METHOD_HEAD ? 0 : sizeof fallback_body - 1;
    if (k->http->cfg.access_log) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        factsd_access_log_write(ci != NULL ? ci->client_addr : NULL, method, k->target,
                                k->target_len, k->target_too_long, status, &k->t0);
    }
    return rc;
}

enum MHD_Result factsd_http_send(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                                 unsigned status, const factsd_repr *r,
                                 const factsd_reply_opts *opts)
{
    bool owned = false;
    struct MHD_Response *resp =
        r != NULL ? factsd_repr_response(r, &k->http->cfg, opts, &owned) : NULL;
    if (resp == NULL)
        return factsd_http_queue(k, c, method, 500, k->http->fallback);
    size_t len = 0;
    if (k->method == FACTSD_METHOD_HEAD || opts->not_modified)
        len = 0;
    else if (opts->gzip && factsd_repr_has_gzip(r))
        (void)factsd_repr_gzip_body(r, &len);
    else
        (void)factsd_repr_body(r, &len);
    k->sent = len;
    enum MHD_Result rc = factsd_http_queue(k, c, method, status, resp);
    if (owned)
        MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result factsd_http_problem(factsd_http_conn *k, struct MHD_Connection *c,
                                    const char *method, factsd_problem_kind kind,
                                    const char *detail, bool close)
{
    factsd_repr_free(k->own);
    if (kind == FACTSD_PROBLEM_READ_ONLY && k->http->cfg.follow_url[0] != '\0') {
        /* A replica names the primary that takes the writes. */
        json_t *extra = json_pack("{s:s}", "primary", k->http->cfg.follow_url);
        k->own = extra != NULL
                     ? factsd_problem_new_ext(kind,
                                              "this server is a read-only replica: send writes "
                                              "to its primary",
                                              extra) /* takes extra's reference */
                     : NULL;
    } else {
        k->own = factsd_problem_new(kind, detail, NULL, 0);
    }
    const char *allow = NULL;
    if (kind == FACTSD_PROBLEM_METHOD_NOT_ALLOWED) {
        allow = factsd_route_allow(factsd_http_route(k));
        if (allow == NULL)
            allow = allow_read;
    }
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        .allow = allow,
        .close = close,
    };
    /* RFC 6750: no error code when the request carried no credentials. */
    if (kind == FACTSD_PROBLEM_UNAUTHORIZED)
        opts.www_authenticate =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization") == NULL
                ? "Bearer realm=\"factsd\""
                : "Bearer realm=\"factsd\", error=\"invalid_token\"";
    return factsd_http_send(k, c, method, factsd_problem_status(kind), k->own, &opts);
}

/* ------------------------------------------------------- framing checks */

static enum MHD_Result header_count(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    factsd_check_headers_add(cls, key, value);
    return MHD_YES;
}

/* The request content a request may carry. */
static size_t content_cap(const factsd_http_conn *k)
{
    return method_writes(k->method) ? k->http->cfg.max_body : (size_t)CONTENT_MAX;
}

/* Checks what must be refused before routing (request_check.h); answers
 * and returns true when the request is refused (*rc set). */
static bool conn_check_framing(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                               const char *version, enum MHD_Result *rc)
{
    factsd_check_headers s;
    factsd_check_headers_start(&s, version);
    MHD_get_connection_values(c, MHD_HEADER_KIND, header_count, &s);
    factsd_check_headers_end(&s);
    /* libmicrohttpd keeps the request line in place, splitting it with
     * NULs: the version follows the target's terminating NUL directly,
     * unless a NUL byte inside the target cut the string short. */
    factsd_check_input rq = {
        .target = k->target,
        .target_len = k->target_len,
        .target_too_long = k->target_too_long,
        .target_whole = k->target_raw + k->target_len + 1 == (uintptr_t)version,
        .options = k->method == FACTSD_METHOD_OPTIONS,
        .http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0,
        .headers = &s,
        .content_cap = content_cap(k),
    };
    if (s.transfer_encoding == 1)
        rq.transfer_encoding = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (s.host == 1)
        rq.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (s.content_length == 1)
        rq.content_length =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    factsd_problem_kind kind;
    char buf[96];
    const char *detail = factsd_check_request(&rq, &kind, buf, sizeof buf);
    k->target_len = rq.target_len;
    if (detail == NULL)
        return false;
    *rc = factsd_http_problem(k, c, method, kind, detail, true);
    return true;
}

/* ------------------------------------------------------------- answers */

static enum MHD_Result conn_answer_options(factsd_http_conn *k, struct MHD_Connection *c,
                                           const char *method)
{
    bool asterisk = k->target_len == 1 && k->target[0] == '*';
    if (!asterisk && factsd_http_route(k)->id == FACTSD_ROUTE_NONE)
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_NOT_FOUND,
                                   "no resource lives at this path", false);
    const factsd_config *cfg = &k->http->cfg;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *req_method =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
                                                                MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return factsd_http_queue(k, c, method, 500, k->http->fallback);
    /* "*" speaks for the server as a whole: what every resource allows. */
    const char *allow = asterisk ? NULL : factsd_route_allow(factsd_http_route(k));
    if (allow == NULL)
        allow = allow_read;
    bool writes = strcmp(allow, allow_read) != 0;
    bool ok = MHD_add_response_header(resp, "Allow", allow) == MHD_YES &&
              MHD_add_response_header(resp, "Cache-Control", "no-cache") == MHD_YES;
    if (ok && !cfg->cors_any)
        ok = MHD_add_response_header(resp, "Vary", "Origin") == MHD_YES;
    if (ok && !asterisk && origin != NULL && req_method != NULL &&
        factsd_cors_allowed(cfg, origin)) {
        ok = MHD_add_response_header(resp, "Access-Control-Allow-Origin",
                                     cfg->cors_any ? "*" : origin) == MHD_YES &&
             MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow) ==
                 MHD_YES &&
             MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                     writes ? "Accept, Cache-Control, If-None-Match, "
                                              "Last-Event-ID, Authorization, Content-Type, "
                                              "If-Match"
                                            : "Accept, Cache-Control, If-None-Match, "
                                              "Last-Event-ID") ==
                 MHD_YES &&
             MHD_add_response_header(resp, "Access-Control-Max-Age", "86400") == MHD_YES;
    }
    enum MHD_Result rc = ok ? factsd_http_queue(k, c, method, MHD_HTTP_NO_CONTENT, resp)
                            : factsd_http_queue(k, c, method, 500, k->http->fallback);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result conn_answer(factsd_http_conn *k, struct MHD_Connection *c,
                                   const char *method)
{
    if (k->method == FACTSD_METHOD_GET || k->method == FACTSD_METHOD_HEAD) {
        switch (factsd_route_feed(factsd_http_route(k))) {
        case FACTSD_FEED_ROUTE_CHANGES:
            return factsd_http_changes(k, c, method);
        case FACTSD_FEED_ROUTE_STREAM:
            return factsd_http_stream(k, c, method);
        case FACTSD_FEED_ROUTE_NONE:
            break;
        }
    }
    if (k->method == FACTSD_METHOD_OPTIONS)
        return conn_answer_options(k, c, method);
    if (k->method == FACTSD_METHOD_OTHER) {
        if (factsd_http_route(k)->id != FACTSD_ROUTE_NONE)
            return factsd_http_problem(k, c, method, FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                                       "this resource does not answer this method", false);
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_NOT_FOUND,
                                   "no resource lives at this path", false);
    }
    if (k->writing)
        return factsd_http_write_run(k, c, method);
    const char *allow = factsd_route_allow(factsd_http_route(k));
    if (allow != NULL && strncmp(allow, "GET", 3) != 0)
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                                   "this resource does not answer this method", false);
    factsd_answer ans;
    factsd_route_id id = factsd_http_route(k)->id;
    if (id == FACTSD_ROUTE_METRICS)
        factsd_http_metrics_get(k, c, &ans);
    else if (id == FACTSD_ROUTE_READY)
        factsd_http_ready_get(k, &ans);
    else
        factsd_routes_get(k->view, factsd_http_route(k), k->target, k->target_len,
                          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"), &ans);
    k->own = ans.own;
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        .gzip = factsd_negotiate_gzip(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding")),
    };
    /* A representation made for this request alone is compressed for it
     * (shared ones were compressed once, when they were made). */
    if (opts.gzip && ans.own != NULL && ans.repr == ans.own)
        (void)factsd_repr_compress(ans.own);
    unsigned status = ans.status;
    if (status == 200 && ans.repr != NULL &&
        factsd_repr_matches(ans.repr, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                  "If-None-Match"))) {
        opts.not_modified = true;
        status = MHD_HTTP_NOT_MODIFIED;
    }
    return factsd_http_send(k, c, method, status, ans.repr, &opts);
}

/* ----------------------------------------------------------- callbacks */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    factsd_http *h = cls;
    factsd_http_conn *k = *req_cls;
    (void)url;
    if (k == NULL)
        return MHD_NO; /* no context: the connection could not be set up */
    if (!k->started) {
        k->started = true;
        factsd_conn_deadline_clear(&k->link); /* the headers are in */
        clock_gettime(CLOCK_MONOTONIC, &k->t0);
        k->method = method_parse(method);
        conn_view_refresh(h, k);
        enum MHD_Result rc;
        if (conn_check_framing(k, c, method, version, &rc))
            return rc;
        if (method_writes(k->method) && factsd_http_write_begin(k, c, method, &rc))
            return rc;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (k->answered)
            return MHD_YES;
        if (k->body != NULL && !k->refused) {
            if (n > k->body_cap - k->body_len)
                return factsd_http_problem(k, c, method, FACTSD_PROBLEM_MALFORMED_REQUEST,
                                           "more request content than Content-Length announced",
                                           true);
            memcpy(k->body + k->body_len, upload_data, n);
            k->body_len += n;
            k->body[k->body_len] = '\0';
            return MHD_YES;
        }
        /* No response can be queued before the content is in: drop it,
         * and answer a too large one with 413 at the end, unless it grows
         * past DISCARD_MAX. */
        k->discarded += n;
        if (k->discarded > content_cap(k))
            k->too_large = true;
        return k->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (k->answered)
        return MHD_YES;
    if (k->too_large) {
        char detail[96];
        snprintf(detail, sizeof detail, "request content is not accepted beyond %zu bytes",
                 content_cap(k));
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_CONTENT_TOO_LARGE, detail, true);
    }
    return conn_answer(k, c, method);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    factsd_http_conn *k = ci != NULL ? ci->socket_context : NULL;
    if (k == NULL)
        return NULL;
    conn_target_clear(k);
    /* Per connection, not one shared counter: a counter every request
     * touches would bounce between the workers' cores. */
    factsd_conn_busy_set(&k->link, true);
    k->target_seen = true;
    k->target_raw = (uintptr_t)uri;
    size_t len = uri != NULL ? strlen(uri) : 0;
    if (len > FACTSD_TARGET_MAX) {
        /* Answered 414; its start is kept for the access log. */
        k->target_too_long = true;
        k->target = k->inline_target;
        k->target_len = sizeof k->inline_target - 1;
        memcpy(k->inline_target, uri, k->target_len);
        k->inline_target[k->target_len] = '\0';
        return k;
    }
    char *dst = k->inline_target;
    if (len >= sizeof k->inline_target) {
        dst = malloc(len + 1);
        if (dst == NULL) {
            k->target_seen = false;
            return k;
        }
    }
    if (len > 0)
        memcpy(dst, uri, len);
    dst[len] = '\0';
    k->target = dst;
    k->target_len = len;
    return k;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    factsd_http_conn *k = *req_cls;
    if (k != NULL) {
        factsd_http_metrics_record(k, toe);
        conn_request_end(k);
        factsd_conn_deadline_start(k->http->conns, &k->link);
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    factsd_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        factsd_http_conn *k = ci != NULL ? calloc(1, sizeof *k) : NULL;
        if (k != NULL) {
            k->http = h;
            k->held.fd = ci->connect_fd;
            factsd_conn_add(h->conns, &k->link, ci->connect_fd);
        }
        *socket_context = k;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        factsd_http_conn *k = *socket_context;
        /* Closed while still on the waiting list: not expected, since every
         * suspended connection is resumed (factsd_held_close) before the
         * daemon stops and none suspends afterwards; kept so that the list
         * can never point at a freed connection. */
        if (k != NULL)
            factsd_held_forget(h->held, &k->held);
        /* libmicrohttpd closes the socket after this returns: once
         * unlinked, the sweeper cannot touch a reused descriptor. */
        factsd_conn_remove(h->conns, k != NULL ? &k->link : NULL);
        if (k != NULL) {
            conn_request_end(k);
            factsd_view_unref(k->view);
            free(k);
        }
        *socket_context = NULL;
    }
}

/* libmicrohttpd's messages: kept while starting (for the error message),
 * afterwards written to stderr at most once a second. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
    factsd_http *h = cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (!atomic_load(&h->started)) {
        snprintf(h->start_error, sizeof h->start_error, "%s", line);
        return;
    }
    long long now = (long long)time(NULL);
    long long last = atomic_load(&h->log_time);
    if (now != last && atomic_compare_exchange_strong(&h->log_time, &last, now))
        fprintf(stderr, "factsd: %s\n", line);
}

/* -------------------------------------------------------------- public */

/* Stops what runs (acceptor, sweeper, daemon) and frees everything. */
static void http_free(factsd_http *h)
{
    factsd_metrics_listener_stop(h->metrics);
    factsd_conn_threads_stop(h->conns);
    factsd_held_close(h->held);
    if (h->daemon != NULL)
        MHD_stop_daemon(h->daemon);
    factsd_held_free(h->held);
    factsd_conn_free(h->conns);
    if (h->fallback != NULL)
        MHD_destroy_response(h->fallback);
    factsd_view_unref(atomic_load(&h->view));
    facts_journal_close(h->journal);
    if (h->token != NULL) {
        memset(h->token, 0, strlen(h->token));
        free(h->token);
    }
    pthread_mutex_destroy(&h->writer);
    free(h);
}

static struct MHD_Response *fallback_new(void)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof fallback_body - 1, (void *)fallback_body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return NULL;
    if (MHD_add_response_header(r, "Content-Type", "application/problem+json") != MHD_YES ||
        MHD_add_response_header(r, "Cache-Control", "no-cache") != MHD_YES ||
        MHD_add_response_header(r, "Connection", "close") != MHD_YES) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

factsd_http *factsd_http_start(const factsd_config *cfg, facts_store *store, char *msg,
                               size_t size)
{
    return factsd_http_start_writable(cfg, store, NULL, NULL, NULL, msg, size);
}

/* The revision the history starts after: before the entries of history
 * (a JSON array, may be NULL) when they are consecutive and end at
 * revision; otherwise revision itself. */
static uint64_t history_start(const json_t *history, uint64_t revision)
{
    size_t n = json_array_size(history);
    if (n == 0 || n >= revision)
        return revision;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_object_get(json_array_get(history, i), "revision");
        if (!json_is_integer(r) || (uint64_t)json_integer_value(r) != revision - n + i + 1)
            return revision;
    }
    return revision - n;
}

factsd_http *factsd_http_start_writable(const factsd_config *cfg, facts_store *store,
                                        const char *token, facts_journal *journal,
                                        const json_t *history, char *msg, size_t size)
{
    json_object_seed(0);
    factsd_metrics_start();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        snprintf(msg, size, "cannot ignore SIGPIPE: %s", strerror(errno));
        facts_journal_close(journal);
        return NULL;
    }
    factsd_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(msg, size, "out of memory");
        facts_journal_close(journal);
        return NULL;
    }
    if (pthread_mutex_init(&h->writer, NULL) != 0) {
        free(h);
        snprintf(msg, size, "cannot create a mutex");
        facts_journal_close(journal);
        return NULL;
    }
    h->cfg = *cfg;
    h->journal = journal;
    uint64_t after = history_start(history, facts_store_revision(store));
    h->held = factsd_held_new(cfg, after, msg, size);
    if (h->held == NULL) {
        http_free(h);
        return NULL;
    }
    for (size_t i = 0; after < facts_store_revision(store) && i < json_array_size(history); i++)
        factsd_held_record(h->held, after + i + 1, json_incref(json_array_get(history, i)));
    atomic_init(&h->readers, 0);
    atomic_init(&h->writes_disabled, false);
    atomic_init(&h->stopping, false);
    atomic_init(&h->view, NULL);
    if (token != NULL && (h->token = strdup(token)) == NULL) {
        snprintf(msg, size, "out of memory");
        http_free(h);
        return NULL;
    }
    atomic_init(&h->log_time, 0);
    atomic_init(&h->started, false);
    atomic_init(&h->view_generation, 0);
    factsd_view *first = factsd_view_new(store, (const char *)factsd_openapi_json,
                                         factsd_openapi_json_len, &h->cfg, msg, size);
    atomic_store(&h->view, first);
    h->fallback = fallback_new();
    if (first == NULL || h->fallback == NULL) {
        if (first != NULL)
            snprintf(msg, size, "out of memory");
        http_free(h);
        return NULL;
    }
    h->conns = factsd_conn_listen(cfg, msg, size);
    if (h->conns == NULL) {
        http_free(h);
        return NULL;
    }

    /* A pool of poll(2)-based worker threads fed by the acceptor thread:
     * libmicrohttpd 0.9.75's internal epoll loop stalls when one epoll_wait
     * returns exactly its 128-event batch (hundreds of connections per
     * thread), and poll does not. ITC lets the acceptor wake a worker for
     * each new connection; TURBO saves syscalls (no shutdown before close). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem pool[] = {
        {cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)cfg->threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, h,
        MHD_OPTION_ARRAY, pool,
        /* Beyond reach: the acceptor keeps the limit (see conn.c);
         * each worker's share of this is the whole limit. */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections * cfg->threads,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_LIMIT,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(msg, size, "cannot start the HTTP daemon%s%s",
                 h->start_error[0] != '\0' ? ": " : "", h->start_error);
        http_free(h);
        return NULL;
    }
    atomic_store(&h->started, true);
    if (!factsd_conn_threads_start(h->conns, h->daemon, h->held, msg, size)) {
        http_free(h);
        return NULL;
    }
    if (cfg->metrics_listen &&
        (h->metrics = factsd_metrics_listen(&h->cfg, factsd_http_gauges, h, msg, size)) == NULL) {
        http_free(h);
        return NULL;
    }
    return h;
}

uint16_t factsd_http_port(const factsd_http *h)
{
    return factsd_conn_port(h->conns);
}

const char *factsd_http_url(const factsd_http *h)
{
    return factsd_conn_url(h->conns);
}

const char *factsd_http_metrics_url(const factsd_http *h)
{
    return h->metrics != NULL ? factsd_metrics_listener_url(h->metrics) : NULL;
}

void factsd_http_stop(factsd_http *h, unsigned grace_ms)
{
    if (h == NULL)
        return;
    atomic_store(&h->stopping, true);
    factsd_conn_accept_stop(h->conns);
    factsd_held_close(h->held);
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (unsigned waited = 0; factsd_conn_busy_any(h->conns) && waited < grace_ms; waited += 10)
        nanosleep(&tick, NULL);
    http_free(h);
}
