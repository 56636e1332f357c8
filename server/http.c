/*
 * http.c - the libmicrohttpd daemon, the published snapshot and the
 * request cycle (see http.h). Below it: conn.c accepts connections, keeps
 * their limits and deadlines; request_check.c holds the framing rules;
 * held.c holds long-polls and streams open on the change history;
 * access_log.c writes the log line; metrics.c counts each request at its
 * completion (metrics_listen.c serves /metrics on its own listener when
 * asked to).
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
 * Content-Length, itself capped) and the final call runs the write under
 * the writer mutex: change prepared and validated (write.c), next view
 * rendered, journal appended and synced, view swapped in, answer sent.
 */
#include "http.h"

#include "access_log.h"
#include "auth.h"
#include "conn.h"
#include "feed.h"
#include "held.h"
#include "metrics.h"
#include "metrics_listen.h"
#include "openapi.h"
#include "negotiate.h"
#include "problem.h"
#include "request_check.h"
#include "render.h"
#include "routes.h"
#include "stream.h"
#include "text.h"
#include "view.h"
#include "write.h"

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
    TARGET_INLINE = 160        /* targets up to this size need no allocation */
};

static const char allow_read[] = "GET, HEAD, OPTIONS";

static const char fallback_body[] =
    "{\"type\":\"urn:factsd:problem:internal\",\"title\":\"Internal error\","
    "\"status\":500,\"detail\":\"the server ran out of memory\"}";

enum method {
    METHOD_GET,
    METHOD_HEAD,
    METHOD_OPTIONS,
    METHOD_POST,
    METHOD_PUT,
    METHOD_PATCH,
    METHOD_DELETE,
    METHOD_OTHER
};

/* The metrics' name of each method. */
static const factsd_metrics_method metrics_methods[] = {
    [METHOD_GET] = FACTSD_METRICS_GET,         [METHOD_HEAD] = FACTSD_METRICS_HEAD,
    [METHOD_OPTIONS] = FACTSD_METRICS_OPTIONS, [METHOD_POST] = FACTSD_METRICS_POST,
    [METHOD_PUT] = FACTSD_METRICS_PUT,         [METHOD_PATCH] = FACTSD_METRICS_PATCH,
    [METHOD_DELETE] = FACTSD_METRICS_DELETE,   [METHOD_OTHER] = FACTSD_METRICS_OTHER,
};

static bool method_writes(enum method m)
{
    return m == METHOD_POST || m == METHOD_PUT || m == METHOD_PATCH || m == METHOD_DELETE;
}

struct factsd_http {
    factsd_config cfg;
    struct MHD_Daemon *daemon;
    /* The published snapshot with its representations. Readers never lock:
     * they enter the window (readers + 1), load the pointer, take a
     * reference and leave (readers - 1). The one writer (holding writer)
     * exchanges the pointer, waits until no reader is in the window, then
     * drops the old view's reference. Each connection holds a reference to
     * the view it last read, and a request never changes views. */
    _Atomic(factsd_view *) view;
    atomic_long readers;          /* request threads between load and ref */
    atomic_uint view_generation;  /* bumped when view is replaced */
    pthread_mutex_t writer;       /* serialises writes, compaction, reload */
    char *token;                  /* the write token, or NULL: read-only */
    facts_journal *journal;       /* under writer; NULL: writes not journalled */
    atomic_bool writes_disabled;  /* the journal failed: no writes until restart */
    struct MHD_Response *fallback; /* a bare 500 for out-of-memory */
    atomic_llong log_time;         /* last second libmicrohttpd logged in */
    char start_error[256];         /* libmicrohttpd's last message while starting */
    atomic_bool started;
    factsd_conns *conns;           /* the listening socket, the acceptor and
                                      sweeper threads, the open connections */
    factsd_held *held;             /* the history, and the long-polls and
                                      streams held open on it */
    factsd_metrics_listener *metrics; /* --metrics-listen's, or NULL */
    atomic_bool stopping;          /* factsd_http_stop has begun: not ready */
};

/* Per-connection state, reused by each request on the connection. */
struct conn {
    factsd_http *http;
    char *target;               /* raw request target (NUL-terminated) */
    uintptr_t target_raw;       /* where libmicrohttpd holds the target */
    size_t target_len;
    bool target_too_long;
    bool target_seen;
    bool routed;                /* route holds the target's path, matched */
    factsd_route route;         /* see conn_route */
    bool started;               /* the current request reached the handler */
    bool answered;              /* a response is queued */
    bool too_large;             /* the content went past CONTENT_MAX */
    enum method method;
    factsd_view *view;          /* the snapshot this connection reads */
    unsigned view_generation;   /* the generation of view */
    bool writing;               /* the request is an accepted write */
    factsd_write_route wroute;  /* its route */
    facts_kind kind;            /* its collection */
    char *body;                 /* its content (body_cap bytes), or NULL */
    size_t body_len;
    size_t body_cap;
    bool refused;               /* a write refused from its headers, to be
                                   answered once its (empty) content is in */
    factsd_problem_kind refuse_kind;
    const char *refuse_detail;  /* static */
    factsd_repr *own;           /* a representation made for this request */
    size_t discarded;           /* request content bytes read and dropped */
    unsigned status;            /* the status queued, 0 until then */
    uint64_t sent;              /* content bytes of the response queued */
    struct timespec t0;         /* the first handler call */
    factsd_conn link;           /* in the registry: socket, header deadline,
                                   busy (factsd_http_stop waits) */
    factsd_held_slot held;      /* among the held requests (held.h) */
    bool waited;                /* the request was suspended once: answer */
    char inline_target[TARGET_INLINE];
};

/* ------------------------------------------------------------- helpers */

/* Points k at the published view, taking a new reference only when the
 * view changed since the connection's last request. */
static void conn_view_refresh(factsd_http *h, struct conn *k)
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

/* Publishes next (the reference passes to h) in place of the current view;
 * the caller holds h->writer. Returns at once for readers: the old view's
 * reference is dropped once no reader is between loading the pointer and
 * taking its own reference. */
static void http_view_swap(factsd_http *h, factsd_view *next)
{
    factsd_view *old = atomic_exchange(&h->view, next);
    atomic_fetch_add(&h->view_generation, 1);
    while (atomic_load(&h->readers) != 0)
        sched_yield();
    factsd_view_unref(old);
}

static void conn_target_clear(struct conn *k)
{
    if (k->target != NULL && k->target != k->inline_target)
        free(k->target);
    k->target = NULL;
    k->target_len = 0;
    k->target_too_long = false;
    k->target_seen = false;
    k->routed = false;
}

/* The route of the request's target, matched on first use (once the
 * framing checks have brought the target to origin-form). */
static const factsd_route *conn_route(struct conn *k)
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

/* The nanoseconds from a to b (CLOCK_MONOTONIC), 0 if b is not after a. */
static uint64_t elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    long long ns = (long long)(b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec);
    return ns > 0 ? (uint64_t)ns : 0;
}

/* Ends the current request's state (after completion or at close). */
static void conn_request_end(struct conn *k)
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

static enum method method_parse(const char *m)
{
    static const struct {
        const char *name;
        enum method method;
    } methods[] = {
        {MHD_HTTP_METHOD_GET, METHOD_GET},       {MHD_HTTP_METHOD_HEAD, METHOD_HEAD},
        {MHD_HTTP_METHOD_OPTIONS, METHOD_OPTIONS}, {MHD_HTTP_METHOD_POST, METHOD_POST},
        {MHD_HTTP_METHOD_PUT, METHOD_PUT},       {MHD_HTTP_METHOD_PATCH, METHOD_PATCH},
        {MHD_HTTP_METHOD_DELETE, METHOD_DELETE},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].method;
    }
    return METHOD_OTHER;
}

/* Queues resp with status; once libmicrohttpd takes it, marks the request
 * answered and logs it. (libmicrohttpd refuses a response while request
 * content is still arriving.) */
static enum MHD_Result conn_queue(struct conn *k, struct MHD_Connection *c, const char *method,
                                  unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    if (rc != MHD_YES)
        return rc;
    k->answered = true;
    k->status = status;
    if (resp == k->http->fallback)
        k->sent = k->method == METHOD_HEAD ? 0 : sizeof fallback_body - 1;
    if (k->http->cfg.access_log) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        factsd_access_log_write(ci != NULL ? ci->client_addr : NULL, method, k->target,
                                k->target_len, k->target_too_long, status, &k->t0);
    }
    return rc;
}

/* Queues a representation owned by the request (k->own) or the view. */
static enum MHD_Result conn_send(struct conn *k, struct MHD_Connection *c, const char *method,
                                 unsigned status, const factsd_repr *r,
                                 const factsd_reply_opts *opts)
{
    bool owned = false;
    struct MHD_Response *resp =
        r != NULL ? factsd_repr_response(r, &k->http->cfg, opts, &owned) : NULL;
    if (resp == NULL)
        return conn_queue(k, c, method, 500, k->http->fallback);
    size_t len = 0;
    if (k->method == METHOD_HEAD || opts->not_modified)
        len = 0;
    else if (opts->gzip && factsd_repr_has_gzip(r))
        (void)factsd_repr_gzip_body(r, &len);
    else
        (void)factsd_repr_body(r, &len);
    k->sent = len;
    enum MHD_Result rc = conn_queue(k, c, method, status, resp);
    if (owned)
        MHD_destroy_response(resp);
    return rc;
}

/* Answers with a problem of kind; close adds Connection: close. A 405
 * names the route's methods in Allow; a 401 asks for a Bearer token. */
static enum MHD_Result conn_problem(struct conn *k, struct MHD_Connection *c,
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
        allow = factsd_route_allow(conn_route(k));
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
    return conn_send(k, c, method, factsd_problem_status(kind), k->own, &opts);
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
static size_t content_cap(const struct conn *k)
{
    return method_writes(k->method) ? k->http->cfg.max_body : (size_t)CONTENT_MAX;
}

/* Checks what must be refused before routing (request_check.h); answers
 * and returns true when the request is refused (*rc set). */
static bool conn_check_framing(struct conn *k, struct MHD_Connection *c, const char *method,
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
        .options = k->method == METHOD_OPTIONS,
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
    *rc = conn_problem(k, c, method, kind, detail, true);
    return true;
}

/* ------------------------------------------------------------- answers */

static enum MHD_Result conn_answer_options(struct conn *k, struct MHD_Connection *c,
                                           const char *method)
{
    bool asterisk = k->target_len == 1 && k->target[0] == '*';
    if (!asterisk && conn_route(k)->id == FACTSD_ROUTE_NONE)
        return conn_problem(k, c, method, FACTSD_PROBLEM_NOT_FOUND,
                            "no resource lives at this path", false);
    const factsd_config *cfg = &k->http->cfg;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *req_method =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
                                                                MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return conn_queue(k, c, method, 500, k->http->fallback);
    /* "*" speaks for the server as a whole: what every resource allows. */
    const char *allow = asterisk ? NULL : factsd_route_allow(conn_route(k));
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
    enum MHD_Result rc = ok ? conn_queue(k, c, method, MHD_HTTP_NO_CONTENT, resp)
                            : conn_queue(k, c, method, 500, k->http->fallback);
    MHD_destroy_response(resp);
    return rc;
}

/* --------------------------------------------------------------- writes */

static const char read_only_detail[] =
    "this server has no write token configured: it is read-only";
static const char disabled_detail[] =
    "writes are disabled until the server is restarted: the journal could not be written";

/* Whether the Content-Type value v (may be NULL) names media, ignoring
 * letter case, white space and parameters such as charset. */
static bool content_type_is(const char *v, const char *media)
{
    if (v == NULL)
        return false;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(media);
    if (strncasecmp(v, media, n) != 0)
        return false;
    v += n;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\0' || *v == ';';
}

/* Sends an empty response (204) naming the snapshot revision, with the
 * CORS headers. */
static enum MHD_Result conn_empty(struct conn *k, struct MHD_Connection *c, const char *method,
                                  unsigned status, uint64_t revision)
{
    char rev[24];
    snprintf(rev, sizeof rev, "%llu", (unsigned long long)revision);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return conn_queue(k, c, method, 500, k->http->fallback);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    bool ok = MHD_add_response_header(resp, "Cache-Control", "no-cache") == MHD_YES &&
              MHD_add_response_header(resp, "X-Revision", rev) == MHD_YES &&
              factsd_cors_add_headers(resp, &k->http->cfg, origin);
    enum MHD_Result rc = ok ? conn_queue(k, c, method, status, resp)
                            : conn_queue(k, c, method, 500, k->http->fallback);
    MHD_destroy_response(resp);
    return rc;
}

/* Refuses a write: at once with Connection: close when content is on its
 * way (it is never read), otherwise once the request is complete so the
 * connection stays open. Returns true (*rc set when answered now). */
static bool conn_write_refuse(struct conn *k, struct MHD_Connection *c, const char *method,
                              bool has_content, factsd_problem_kind kind, const char *detail,
                              enum MHD_Result *rc)
{
    if (has_content) {
        *rc = conn_problem(k, c, method, kind, detail, true);
        return true;
    }
    k->writing = true;
    k->refused = true;
    k->refuse_kind = kind;
    k->refuse_detail = detail;
    *rc = MHD_YES;
    return true;
}

/* Decides a write from its request line and headers alone, before any
 * content is read: route and method (404, 405), token (403, 401), state
 * (503), media type (415), length (411). Returns true when refused (*rc
 * set); otherwise prepares the content buffer and returns false. */
static bool conn_write_begin(struct conn *k, struct MHD_Connection *c, const char *method,
                             enum MHD_Result *rc)
{
    factsd_http *h = k->http;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    long long length = 0;
    if (cl != NULL && !factsd_text_parse_int(cl, 0, (long long)h->cfg.max_body, &length))
        length = 0; /* checked by the framing rules already */
    bool has_content = te != NULL || length > 0;
    facts_kind kind = FACTS_KIND_EVENT;
    factsd_write_route wr = factsd_route_write(conn_route(k), &kind);
    k->wroute = wr;
    k->kind = kind;
    if (wr == FACTSD_WRITE_ROUTE_NONE)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_NOT_FOUND,
                                 "no resource lives at this path", rc);
    bool fits = k->method == METHOD_POST
                    ? (wr == FACTSD_WRITE_ROUTE_COLLECTION || wr == FACTSD_WRITE_ROUTE_COMPACT)
                    : wr == FACTSD_WRITE_ROUTE_ITEM;
    if (!fits)
        return conn_write_refuse(k, c, method, has_content,
                                 FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                                 "this resource does not answer this method", rc);
    if (h->token == NULL)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_READ_ONLY,
                                 read_only_detail, rc);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!factsd_token_check(h->token, auth))
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_UNAUTHORIZED,
                                 auth == NULL ? "writes need Authorization: Bearer <token>"
                                              : "the bearer token is not valid",
                                 rc);
    if (atomic_load(&h->writes_disabled))
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_WRITES_DISABLED,
                                 disabled_detail, rc);
    k->writing = true;
    bool needs_body = k->method == METHOD_PUT || k->method == METHOD_PATCH ||
                      (k->method == METHOD_POST && wr == FACTSD_WRITE_ROUTE_COLLECTION);
    if (!needs_body)
        return false;
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    bool media_ok = k->method == METHOD_PATCH
                        ? content_type_is(ct, "application/merge-patch+json")
                        : content_type_is(ct, "application/json");
    if (!media_ok)
        return conn_write_refuse(k, c, method, has_content,
                                 FACTSD_PROBLEM_UNSUPPORTED_MEDIA_TYPE,
                                 k->method == METHOD_PATCH
                                     ? "PATCH takes application/merge-patch+json"
                                     : "POST and PUT take application/json",
                                 rc);
    if (cl == NULL || te != NULL)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_LENGTH_REQUIRED,
                                 "a write needs a Content-Length (chunked content is not "
                                 "taken)",
                                 rc);
    k->body = malloc((size_t)length + 1);
    if (k->body == NULL) {
        *rc = conn_problem(k, c, method, FACTSD_PROBLEM_INTERNAL,
                           "the server ran out of memory", true);
        return true;
    }
    k->body_cap = (size_t)length;
    k->body_len = 0;
    return false;
}

/* Logs a journal failure (never the token: it is not in the message). */
static void journal_log(const char *what, const facts_error *err)
{
    char line[512];
    facts_error_format(err, line, sizeof line);
    fprintf(stderr, "factsd: %s: %s\n", what, line);
}

/* Answers a failed journal operation: 507 for a full disk (the journal is
 * back at a record boundary), otherwise 500, and writes stay disabled when
 * the journal refuses further appends. The caller holds the writer lock. */
static enum MHD_Result conn_journal_failed(struct conn *k, struct MHD_Connection *c,
                                           const char *method, facts_status st,
                                           const facts_error *err)
{
    factsd_http *h = k->http;
    journal_log("journal", err);
    bool usable = h->journal == NULL || !facts_journal_failed(h->journal);
    if (st == FACTS_ENOSPC && usable)
        return conn_problem(k, c, method, FACTSD_PROBLEM_INSUFFICIENT_STORAGE,
                            "no room to store the change (a full disk, or a journal at its "
                            "size cap: compact it); it was not stored",
                            false);
    /* A refusal that wrote nothing leaves the journal sound: only this
     * change fails. */
    if (usable && st == FACTS_ELIMIT)
        return conn_problem(k, c, method, FACTSD_PROBLEM_CONTENT_TOO_LARGE,
                            "the change is larger than a journal record may be; it was not "
                            "stored",
                            true);
    if (usable && st != FACTS_EIO)
        return conn_problem(k, c, method, FACTSD_PROBLEM_INTERNAL,
                            "the change could not be stored", false);
    atomic_store(&h->writes_disabled, true);
    fprintf(stderr, "factsd: writes are disabled until restart; reads go on\n");
    return conn_problem(k, c, method, FACTSD_PROBLEM_INTERNAL,
                        "the change could not be made durable and was not stored; writes are "
                        "disabled until the server is restarted",
                        false);
}

/* POST /v1/admin/compact: saves the current dataset over --data and starts
 * an empty journal. */
static enum MHD_Result conn_compact(struct conn *k, struct MHD_Connection *c, const char *method)
{
    factsd_http *h = k->http;
    if (h->cfg.data_path[0] == '\0')
        return conn_problem(k, c, method, FACTSD_PROBLEM_CONFLICT,
                            "compaction needs --data FILE: the embedded dataset cannot be "
                            "rewritten",
                            false);
    pthread_mutex_lock(&h->writer);
    if (atomic_load(&h->writes_disabled)) {
        pthread_mutex_unlock(&h->writer);
        return conn_problem(k, c, method, FACTSD_PROBLEM_WRITES_DISABLED, disabled_detail,
                            false);
    }
    factsd_view *cur = atomic_load(&h->view);
    const facts_store *store = factsd_view_store(cur);
    facts_error err;
    facts_status st = facts_store_save(store, h->cfg.data_path, &err);
    if (st != FACTS_OK) {
        journal_log("compaction: cannot save the dataset", &err);
        pthread_mutex_unlock(&h->writer);
        return conn_problem(k, c, method,
                            st == FACTS_ENOSPC ? FACTSD_PROBLEM_INSUFFICIENT_STORAGE
                                               : FACTSD_PROBLEM_INTERNAL,
                            "the dataset could not be saved; nothing changed", false);
    }
    if (h->journal != NULL) {
        st = facts_journal_reset(h->journal, &err);
        if (st != FACTS_OK) {
            enum MHD_Result rc = conn_journal_failed(k, c, method, st, &err);
            pthread_mutex_unlock(&h->writer);
            return rc;
        }
    }
    uint64_t rev = facts_store_revision(store);
    pthread_mutex_unlock(&h->writer);
    factsd_metrics_compaction();
    char *body = malloc(64);
    if (body != NULL)
        snprintf(body, 64, "{\"revision\":%llu}", (unsigned long long)rev);
    factsd_repr_free(k->own);
    k->own = body != NULL ? factsd_repr_new(body, strlen(body), FACTSD_MEDIA_JSON, NULL) : NULL;
    factsd_repr_set_revision(k->own, rev);
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
    };
    return conn_send(k, c, method, 200, k->own, &opts);
}

/* ----------------------------------------------------------------- feed */

/* Answers GET or HEAD /v1/changes: the changes after since, or, with wait
 * and nothing newer, suspends the request until a change or the wait's end
 * (the handler is called again after the resume and answers then). */
static enum MHD_Result conn_changes(struct conn *k, struct MHD_Connection *c,
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
        return conn_send(k, c, method, 400, k->own, &opts);
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
        return conn_send(k, c, method, 503, k->own, &opts);
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
        return conn_send(k, c, method, 410, k->own, &opts);
    }
    if (st == FACTS_OK) {
        uint64_t next = n > 0 ? facts_history_entry_revision(ents[n - 1]) : fq.since;
        k->own = factsd_feed_render(ents, n, latest, next);
        for (size_t i = 0; i < n; i++)
            facts_history_entry_unref(ents[i]);
    }
    return conn_send(k, c, method, 200, k->own, &opts);
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

/* Answers GET or HEAD /v1/stream: a text/event-stream of the changes,
 * from the client's Last-Event-ID or from now, ended by the server's stop,
 * the client's close, or a reset when the client fell too far behind. */
static enum MHD_Result conn_stream(struct conn *k, struct MHD_Connection *c, const char *method)
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
        return conn_send(k, c, method, 400, k->own, &opts);
    }
    if (k->method == METHOD_HEAD) {
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
            rc = conn_queue(k, c, method, 200, head);
        else
            rc = conn_queue(k, c, method, 500, h->fallback);
        if (head != NULL)
            MHD_destroy_response(head);
        return rc;
    }
    struct MHD_Response *resp = NULL;
    factsd_held_stream_result st = factsd_held_stream_open(h->held, &k->held, c, &sq, &resp);
    if (st == FACTSD_HELD_STREAM_NOMEM)
        return conn_queue(k, c, method, 500, h->fallback);
    if (st != FACTSD_HELD_STREAM_OK) {
        k->own = factsd_problem_new(FACTSD_PROBLEM_UNAVAILABLE,
                                    st == FACTSD_HELD_STREAM_CLOSED
                                        ? "the server is stopping: retry shortly"
                                        : "too many event streams are open: retry shortly",
                                    NULL, 0);
        opts.retry_after = "1";
        return conn_send(k, c, method, 503, k->own, &opts);
    }
    if (!stream_headers_add(resp, h, opts.origin)) {
        MHD_destroy_response(resp);
        return conn_queue(k, c, method, 500, h->fallback);
    }
    enum MHD_Result rc = conn_queue(k, c, method, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Runs an accepted write with its complete content: prepare the change,
 * render the next view, append to the journal (durable), publish, answer. */
static enum MHD_Result conn_write_run(struct conn *k, struct MHD_Connection *c,
                                      const char *method)
{
    factsd_http *h = k->http;
    if (k->refused)
        return conn_problem(k, c, method, k->refuse_kind, k->refuse_detail, false);
    if (k->wroute == FACTSD_WRITE_ROUTE_COMPACT)
        return conn_compact(k, c, method);
    factsd_write_op op = k->method == METHOD_POST    ? FACTSD_WRITE_CREATE
                         : k->method == METHOD_PUT   ? FACTSD_WRITE_REPLACE
                         : k->method == METHOD_PATCH ? FACTSD_WRITE_MERGE
                                                     : FACTSD_WRITE_DELETE;
    const char *if_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
    pthread_mutex_lock(&h->writer);
    if (atomic_load(&h->writes_disabled)) {
        pthread_mutex_unlock(&h->writer);
        return conn_problem(k, c, method, FACTSD_PROBLEM_WRITES_DISABLED, disabled_detail,
                            false);
    }
    factsd_view *cur = atomic_load(&h->view);
    factsd_change ch;
    factsd_change_prepare(cur, op, k->kind, op == FACTSD_WRITE_CREATE ? NULL : k->route.key,
                          k->body != NULL ? k->body : "", k->body_len, if_match, &ch);
    if (ch.status != 0) {
        pthread_mutex_unlock(&h->writer);
        factsd_repr_free(k->own);
        k->own = ch.problem;
        ch.problem = NULL;
        char etag[FACTSD_WRITE_ETAG_LEN];
        snprintf(etag, sizeof etag, "%s", ch.etag);
        unsigned status = ch.status;
        factsd_change_clear(&ch);
        factsd_reply_opts opts = {
            .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
            .etag = etag[0] != '\0' ? etag : NULL,
        };
        return conn_send(k, c, method, status, k->own, &opts);
    }
    if (ch.unchanged) {
        /* Nothing to write: no revision, no journal record, no change
         * entry. The answer is the record as it stands, read from the
         * current view, which the connection now holds. */
        factsd_view_unref(k->view);
        k->view = factsd_view_ref(cur);
        k->view_generation = atomic_load(&h->view_generation);
        pthread_mutex_unlock(&h->writer);
        const facts_record *rec = facts_store_find(factsd_view_store(cur), k->kind, ch.id);
        const factsd_repr *item = rec != NULL ? factsd_view_item(cur, rec) : NULL;
        factsd_change_clear(&ch);
        factsd_reply_opts opts = {
            .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        };
        return conn_send(k, c, method, 200, item, &opts);
    }
    char msg[256];
    factsd_view *next = factsd_view_new(ch.next, (const char *)factsd_openapi_json,
                                        factsd_openapi_json_len, &h->cfg, msg, sizeof msg);
    if (next == NULL) {
        pthread_mutex_unlock(&h->writer);
        factsd_change_clear(&ch);
        return conn_problem(k, c, method, FACTSD_PROBLEM_INTERNAL, "the server ran out of memory",
                            false);
    }
    if (h->journal != NULL) {
        facts_error err;
        struct timespec j0, j1;
        clock_gettime(CLOCK_MONOTONIC, &j0);
        facts_status st = facts_journal_append(h->journal, facts_store_revision(ch.next),
                                               ch.payload, ch.payload_len, &err);
        clock_gettime(CLOCK_MONOTONIC, &j1);
        factsd_metrics_journal_append(st == FACTS_OK, elapsed_ns(&j0, &j1));
        if (st != FACTS_OK) {
            factsd_view_unref(next);
            factsd_change_clear(&ch);
            enum MHD_Result rc = conn_journal_failed(k, c, method, st, &err);
            pthread_mutex_unlock(&h->writer);
            return rc;
        }
    }
    factsd_view *prev = factsd_view_ref(cur); /* the deleted record's slug */
    http_view_swap(h, factsd_view_ref(next));
    factsd_view_unref(k->view);
    k->view = next; /* the connection's reference */
    k->view_generation = atomic_load(&h->view_generation);
    const factsd_repr *item = ch.rec != NULL ? factsd_view_item(next, ch.rec) : NULL;
    uint64_t revision = facts_store_revision(ch.next);
    const char *collection = facts_kind_collection(k->kind);
    json_t *entry;
    if (op == FACTSD_WRITE_DELETE) {
        const facts_record *gone = facts_store_find(factsd_view_store(prev), k->kind, ch.id);
        entry = factsd_feed_entry_at(ch.time, revision, "delete", collection, ch.id,
                                     gone != NULL ? facts_record_slug(gone) : NULL, NULL, 0);
    } else {
        size_t blen = 0;
        const char *body = item != NULL ? factsd_repr_body(item, &blen) : NULL;
        entry = body != NULL ? factsd_feed_entry_at(ch.time, revision,
                                                    op == FACTSD_WRITE_CREATE ? "create"
                                                                              : "update",
                                                    collection, ch.id,
                                                    facts_record_slug(ch.rec), body, blen)
                             : NULL;
    }
    factsd_held_record(h->held, revision, entry);
    pthread_mutex_unlock(&h->writer);
    factsd_view_unref(prev);

    char location[FACTSD_TARGET_MAX];
    snprintf(location, sizeof location, "/v1/%s/%s", facts_kind_collection(k->kind), ch.id);
    factsd_change_clear(&ch);
    if (op == FACTSD_WRITE_DELETE)
        return conn_empty(k, c, method, MHD_HTTP_NO_CONTENT,
                          facts_store_revision(factsd_view_store(next)));
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        .location = op == FACTSD_WRITE_CREATE ? location : NULL,
    };
    return conn_send(k, c, method, op == FACTSD_WRITE_CREATE ? 201 : 200, item, &opts);
}

/* ------------------------------------------------- metrics, readiness */

/* The gauges of a scrape (a factsd_metrics_gauges_fn; cls is the service). */
static void http_gauges(void *cls, factsd_metrics_gauges *g)
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

/* GET or HEAD /metrics on the main listener: the scrape in the format
 * Accept prefers. */
static void conn_metrics_get(struct conn *k, struct MHD_Connection *c, factsd_answer *out)
{
    factsd_metrics_gauges g;
    http_gauges(k->http, &g);
    out->own = factsd_metrics_repr_new(&g, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                        "Accept"));
    out->repr = out->own;
    out->status = out->own != NULL ? 200 : 500;
}

/* GET or HEAD /readyz: 200 {"status":"ready","revision":N} while the
 * server answers with current data; 503 while it stops, or while it is a
 * replica that has not loaded a snapshot or caught up (metrics.h), with the
 * replica's lag_seconds and revision. */
static void conn_ready_get(struct conn *k, factsd_answer *out)
{
    uint64_t revision = facts_store_revision(factsd_view_store(k->view));
    factsd_metrics_replica rep;
    factsd_metrics_replica_get(&rep);
    const char *detail = NULL;
    if (atomic_load(&k->http->stopping))
        detail = "the server is stopping";
    else if (rep.enabled && !rep.ready)
        detail = rep.revision == 0 ? "the replica has not loaded a snapshot yet"
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

static enum MHD_Result conn_answer(struct conn *k, struct MHD_Connection *c, const char *method)
{
    if (k->method == METHOD_GET || k->method == METHOD_HEAD) {
        switch (factsd_route_feed(conn_route(k))) {
        case FACTSD_FEED_ROUTE_CHANGES:
            return conn_changes(k, c, method);
        case FACTSD_FEED_ROUTE_STREAM:
            return conn_stream(k, c, method);
        case FACTSD_FEED_ROUTE_NONE:
            break;
        }
    }
    if (k->method == METHOD_OPTIONS)
        return conn_answer_options(k, c, method);
    if (k->method == METHOD_OTHER) {
        if (conn_route(k)->id != FACTSD_ROUTE_NONE)
            return conn_problem(k, c, method, FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                                "this resource does not answer this method", false);
        return conn_problem(k, c, method, FACTSD_PROBLEM_NOT_FOUND,
                            "no resource lives at this path", false);
    }
    if (k->writing)
        return conn_write_run(k, c, method);
    const char *allow = factsd_route_allow(conn_route(k));
    if (allow != NULL && strncmp(allow, "GET", 3) != 0)
        return conn_problem(k, c, method, FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                            "this resource does not answer this method", false);
    factsd_answer ans;
    factsd_route_id id = conn_route(k)->id;
    if (id == FACTSD_ROUTE_METRICS)
        conn_metrics_get(k, c, &ans);
    else if (id == FACTSD_ROUTE_READY)
        conn_ready_get(k, &ans);
    else
        factsd_routes_get(k->view, conn_route(k), k->target, k->target_len,
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
    return conn_send(k, c, method, status, ans.repr, &opts);
}

/* ----------------------------------------------------------- callbacks */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    factsd_http *h = cls;
    struct conn *k = *req_cls;
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
        if (method_writes(k->method) && conn_write_begin(k, c, method, &rc))
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
                return conn_problem(k, c, method, FACTSD_PROBLEM_MALFORMED_REQUEST,
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
        return conn_problem(k, c, method, FACTSD_PROBLEM_CONTENT_TOO_LARGE, detail, true);
    }
    return conn_answer(k, c, method);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *k = ci != NULL ? ci->socket_context : NULL;
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

/* Counts the request that completes (one answered: a status was queued).
 * Long-polls that waited and event streams are counted but not timed; a
 * stream's bytes are those it wrote, another response's its content when
 * it was sent whole. */
static void conn_metrics_record(struct conn *k, enum MHD_RequestTerminationCode toe)
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
        ns = elapsed_ns(&k->t0, &t1);
    }
    factsd_metrics_request(k->routed ? k->route.id : FACTSD_ROUTE_NONE,
                           metrics_methods[k->method], k->status, bytes, !held, ns);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    struct conn *k = *req_cls;
    if (k != NULL) {
        conn_metrics_record(k, toe);
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
        struct conn *k = ci != NULL ? calloc(1, sizeof *k) : NULL;
        if (k != NULL) {
            k->http = h;
            k->held.fd = ci->connect_fd;
            factsd_conn_add(h->conns, &k->link, ci->connect_fd);
        }
        *socket_context = k;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct conn *k = *socket_context;
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
        (h->metrics = factsd_metrics_listen(&h->cfg, http_gauges, h, msg, size)) == NULL) {
        http_free(h);
        return NULL;
    }
    return h;
}

bool factsd_http_publish(factsd_http *h, facts_store *store, char *msg, size_t size)
{
    factsd_view *next = factsd_view_new(store, (const char *)factsd_openapi_json,
                                        factsd_openapi_json_len, &h->cfg, msg, size);
    if (next == NULL)
        return false;
    pthread_mutex_lock(&h->writer);
    http_view_swap(h, next);
    pthread_mutex_unlock(&h->writer);
    return true;
}

bool factsd_http_advance(factsd_http *h, facts_store *store, json_t *entry, char *msg,
                         size_t size)
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
    http_view_swap(h, next);
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
        snprintf(msg, size, "the journal is not open after an earlier failure, the running "
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
            snprintf(msg, size, "the journal does not apply to the dataset, the running one "
                                "stays: %s", why);
            facts_store_unref(store);
            if (facts_journal_open(h->cfg.journal_path, NULL, NULL, &h->journal, NULL, &err) !=
                FACTS_OK) {
                atomic_store(&h->writes_disabled, true);
                journal_log("cannot reopen the journal; writes are disabled", &err);
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
    http_view_swap(h, next);
    factsd_held_record(h->held, revision,
                       factsd_feed_entry_new(revision, "reload", NULL, NULL, NULL, NULL, 0));
    pthread_mutex_unlock(&h->writer);
    snprintf(msg, size, "revision %llu", (unsigned long long)revision);
    return true;
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
