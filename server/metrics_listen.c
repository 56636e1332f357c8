/*
 * metrics_listen.c - the representation of a scrape and the listener of
 * --metrics-listen (see metrics_listen.h).
 *
 * The listener is a plain libmicrohttpd daemon with its own listening
 * socket and one internal thread: scrapes are few, and none of the main
 * listener's machinery (acceptor, sweeper, held requests) is needed. Its
 * requests are counted in the metrics like the main listener's.
 */
#include "metrics_listen.h"

#include "negotiate.h"
#include "problem.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef FACTSD_VERSION
#define FACTSD_VERSION FACTS_VERSION
#endif

enum {
    LISTEN_CONNECTIONS = 64,     /* open connections at once */
    LISTEN_MEMORY = 16 * 1024,   /* libmicrohttpd's memory per connection */
    LISTEN_CONTENT_MAX = 16 * 1024, /* request content read and dropped */
    URL_LEN = 96
};

static const char allow[] = "GET, HEAD, OPTIONS";

static const char fallback_body[] =
    "{\"type\":\"urn:factsd:problem:internal\",\"title\":\"Internal error\","
    "\"status\":500,\"detail\":\"the server ran out of memory\"}";

struct factsd_metrics_listener {
    factsd_config cfg; /* the CORS policy of the responses */
    struct MHD_Daemon *daemon;
    factsd_metrics_gauges_fn gauges;
    void *cls;
    char url[URL_LEN];
    char start_error[256];
    atomic_bool started;
};

/* One request on the listener. */
struct request {
    struct timespec t0;
    factsd_repr *own;  /* the body being sent; freed at completion */
    unsigned status;   /* 0 until a response is queued */
    uint64_t sent;     /* content bytes of the response */
    size_t discarded;  /* request content read and dropped */
    factsd_route_id route;
    factsd_metrics_method method;
};

factsd_repr *factsd_metrics_repr_new(const factsd_metrics_gauges *g, const char *accept)
{
    factsd_metrics_format format = factsd_metrics_negotiate(accept);
    size_t len = 0;
    char *body = factsd_metrics_render(format, g, FACTSD_VERSION, &len);
    factsd_repr *r = factsd_repr_new(body, len,
                                     format == FACTSD_METRICS_OPENMETRICS
                                         ? FACTSD_MEDIA_OPENMETRICS
                                         : FACTSD_MEDIA_PROMETHEUS,
                                     NULL);
    if (r != NULL)
        factsd_repr_set_negotiated(r);
    return r;
}

static factsd_metrics_method method_parse(const char *m)
{
    static const char *const names[] = {
        [FACTSD_METRICS_GET] = MHD_HTTP_METHOD_GET,
        [FACTSD_METRICS_HEAD] = MHD_HTTP_METHOD_HEAD,
        [FACTSD_METRICS_OPTIONS] = MHD_HTTP_METHOD_OPTIONS,
        [FACTSD_METRICS_POST] = MHD_HTTP_METHOD_POST,
        [FACTSD_METRICS_PUT] = MHD_HTTP_METHOD_PUT,
        [FACTSD_METRICS_PATCH] = MHD_HTTP_METHOD_PATCH,
        [FACTSD_METRICS_DELETE] = MHD_HTTP_METHOD_DELETE,
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(m, names[i]) == 0)
            return (factsd_metrics_method)i;
    return FACTSD_METRICS_OTHER;
}

/* Queues resp with status and notes what it sends. */
static enum MHD_Result request_queue(struct request *rq, struct MHD_Connection *c,
                                     unsigned status, struct MHD_Response *resp,
                                     uint64_t bytes)
{
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    if (rc == MHD_YES) {
        rq->status = status;
        rq->sent = rq->method == FACTSD_METRICS_HEAD ? 0 : bytes;
    }
    return rc;
}

/* Answers a bare 500 (memory ran out). */
static enum MHD_Result request_fallback(struct request *rq, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof fallback_body - 1, (void *)fallback_body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result rc = MHD_NO;
    if (MHD_add_response_header(r, "Content-Type", "application/problem+json") == MHD_YES &&
        MHD_add_response_header(r, "Cache-Control", "no-cache") == MHD_YES)
        rc = request_queue(rq, c, 500, r, sizeof fallback_body - 1);
    MHD_destroy_response(r);
    return rc;
}

/* Sends rq->own (made for this request) with status and opts. */
static enum MHD_Result request_send(factsd_metrics_listener *l, struct request *rq,
                                    struct MHD_Connection *c, unsigned status,
                                    factsd_reply_opts *opts)
{
    if (rq->own == NULL)
        return request_fallback(rq, c);
    bool owned = false;
    struct MHD_Response *resp = factsd_repr_response(rq->own, &l->cfg, opts, &owned);
    if (resp == NULL)
        return request_fallback(rq, c);
    size_t len = 0;
    if (opts->not_modified)
        len = 0;
    else if (opts->gzip && factsd_repr_has_gzip(rq->own))
        (void)factsd_repr_gzip_body(rq->own, &len);
    else
        (void)factsd_repr_body(rq->own, &len);
    enum MHD_Result rc = request_queue(rq, c, status, resp, len);
    if (owned)
        MHD_destroy_response(resp);
    return rc;
}

/* OPTIONS /metrics: the methods it answers. */
static enum MHD_Result request_options(struct request *rq, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"",
                                                             MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return request_fallback(rq, c);
    enum MHD_Result rc;
    if (MHD_add_response_header(r, "Allow", allow) == MHD_YES &&
        MHD_add_response_header(r, "Cache-Control", "no-cache") == MHD_YES)
        rc = request_queue(rq, c, MHD_HTTP_NO_CONTENT, r, 0);
    else
        rc = request_fallback(rq, c);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result request_answer(factsd_metrics_listener *l, struct request *rq,
                                      struct MHD_Connection *c, const char *url)
{
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
    };
    if (strcmp(url, "/metrics") != 0) {
        rq->route = FACTSD_ROUTE_NONE;
        rq->own = factsd_problem_new(FACTSD_PROBLEM_NOT_FOUND,
                                     "no resource lives at this path: this listener serves "
                                     "/metrics only",
                                     NULL, 0);
        return request_send(l, rq, c, 404, &opts);
    }
    rq->route = FACTSD_ROUTE_METRICS;
    if (rq->method == FACTSD_METRICS_OPTIONS)
        return request_options(rq, c);
    if (rq->method != FACTSD_METRICS_GET && rq->method != FACTSD_METRICS_HEAD) {
        rq->own = factsd_problem_new(FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                                     "this resource does not answer this method", NULL, 0);
        opts.allow = allow;
        return request_send(l, rq, c, 405, &opts);
    }
    factsd_metrics_gauges g;
    l->gauges(l->cls, &g);
    rq->own = factsd_metrics_repr_new(&g, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                       "Accept"));
    opts.gzip = factsd_negotiate_gzip(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding"));
    if (opts.gzip && rq->own != NULL)
        (void)factsd_repr_compress(rq->own);
    unsigned status = 200;
    if (rq->own != NULL &&
        factsd_repr_matches(rq->own,
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match"))) {
        opts.not_modified = true;
        status = MHD_HTTP_NOT_MODIFIED;
    }
    return request_send(l, rq, c, status, &opts);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    factsd_metrics_listener *l = cls;
    struct request *rq = *req_cls;
    (void)version;
    (void)upload_data;
    if (rq == NULL) {
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->t0);
        rq->method = method_parse(method);
        *req_cls = rq;
        return MHD_YES; /* answered once the request is complete */
    }
    if (*upload_data_size > 0) {
        rq->discarded += *upload_data_size;
        *upload_data_size = 0;
        return rq->discarded > LISTEN_CONTENT_MAX ? MHD_NO : MHD_YES;
    }
    if (rq->status != 0)
        return MHD_YES;
    return request_answer(l, rq, c, url != NULL ? url : "");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    struct request *rq = *req_cls;
    if (rq == NULL)
        return;
    if (rq->status != 0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ns = (long long)(t1.tv_sec - rq->t0.tv_sec) * 1000000000LL +
                       (t1.tv_nsec - rq->t0.tv_nsec);
        factsd_metrics_request(rq->route, rq->method, rq->status,
                               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->sent : 0, true,
                               ns > 0 ? (uint64_t)ns : 0);
    }
    factsd_repr_free(rq->own);
    free(rq);
    *req_cls = NULL;
}

/* libmicrohttpd's messages: kept while starting (for the error message),
 * then written to stderr. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
    factsd_metrics_listener *l = cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (!atomic_load(&l->started))
        snprintf(l->start_error, sizeof l->start_error, "%s", line);
    else
        fprintf(stderr, "factsd: metrics listener: %s\n", line);
}

factsd_metrics_listener *factsd_metrics_listen(const factsd_config *cfg,
                                               factsd_metrics_gauges_fn gauges, void *cls,
                                               char *msg, size_t size)
{
    factsd_metrics_listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(msg, size, "out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    l->gauges = gauges;
    l->cls = cls;
    atomic_init(&l->started, false);
    bool v6 = strchr(cfg->metrics_host, ':') != NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->metrics_port);
        inet_pton(AF_INET6, cfg->metrics_host, &sin6->sin6_addr);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->metrics_port);
        inet_pton(AF_INET, cfg->metrics_host, &sin->sin_addr);
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    l->daemon = MHD_start_daemon(
        flags, cfg->metrics_port, NULL, NULL, on_request, l,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, l,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)LISTEN_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LISTEN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
        MHD_OPTION_END);
    if (l->daemon == NULL) {
        snprintf(msg, size, "cannot listen for metrics on %s%s%s:%u%s%s", v6 ? "[" : "",
                 cfg->metrics_host, v6 ? "]" : "", (unsigned)cfg->metrics_port,
                 l->start_error[0] != '\0' ? ": " : "", l->start_error);
        free(l);
        return NULL;
    }
    atomic_store(&l->started, true);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di != NULL && di->port != 0 ? di->port : cfg->metrics_port;
    snprintf(l->url, sizeof l->url, "http://%s%s%s:%u", v6 ? "[" : "", cfg->metrics_host,
             v6 ? "]" : "", port);
    return l;
}

const char *factsd_metrics_listener_url(const factsd_metrics_listener *l)
{
    return l->url;
}

void factsd_metrics_listener_stop(factsd_metrics_listener *l)
{
    if (l == NULL)
        return;
    MHD_stop_daemon(l->daemon);
    free(l);
}
