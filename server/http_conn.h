/*
 * http_conn.h - what the parts of the request cycle share: the service's
 * state, a connection's state, and the answers every handler uses. Internal
 * to server/http.c (the daemon and the request cycle), http_write.c (the
 * write API), http_feed.c (/v1/changes and /v1/stream), http_metrics.c
 * (/metrics, /readyz and the per-request count) and http_publish.c (publish,
 * reload and a replica's advance); everything else sees http.h, where the
 * service is opaque.
 *
 * Every function here runs in the worker thread serving k's connection,
 * except where its comment says otherwise. The answering functions return
 * libmicrohttpd's verdict for the access handler: MHD_YES, or MHD_NO when
 * the connection is to be closed (a response that could not be queued).
 */
#ifndef FACTSD_HTTP_CONN_H
#define FACTSD_HTTP_CONN_H

#include "config.h"
#include "conn.h"
#include "http.h"
#include "held.h"
#include "metrics.h"
#include "metrics_listen.h"
#include "problem.h"
#include "render.h"
#include "routes.h"
#include "view.h"
#include "write.h"

#include <facts.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum {
    FACTSD_HTTP_TARGET_INLINE = 160 /* targets up to this size need no allocation */
};

typedef struct factsd_http_conn factsd_http_conn;

/* The request methods the service tells apart. */
typedef enum factsd_http_method {
    FACTSD_METHOD_GET,
    FACTSD_METHOD_HEAD,
    FACTSD_METHOD_OPTIONS,
    FACTSD_METHOD_POST,
    FACTSD_METHOD_PUT,
    FACTSD_METHOD_PATCH,
    FACTSD_METHOD_DELETE,
    FACTSD_METHOD_OTHER
} factsd_http_method;

/* The running service (opaque outside server/http*.c: see http.h). */
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

/* Per-connection state, reused by each request on the connection. Made
 * when libmicrohttpd reports the connection, freed when it closes; only the
 * worker thread serving the connection touches it (held.h and conn.h say
 * what their parts share with other threads). */
struct factsd_http_conn {
    factsd_http *http;
    char *target;               /* raw request target (NUL-terminated) */
    uintptr_t target_raw;       /* where libmicrohttpd holds the target */
    size_t target_len;
    bool target_too_long;
    bool target_seen;
    bool routed;                /* route holds the target's path, matched */
    factsd_route route;         /* see factsd_http_route */
    bool started;               /* the current request reached the handler */
    bool answered;              /* a response is queued */
    bool too_large;             /* the content went past CONTENT_MAX */
    factsd_http_method method;
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
    char inline_target[FACTSD_HTTP_TARGET_INLINE];
};

/* ------------------------------------------------ answers (http.c) */

/* Queues resp with status (the caller keeps its reference to resp); once
 * libmicrohttpd takes it, marks the request answered and writes the access
 * log line. Returns libmicrohttpd's verdict: MHD_NO while request content
 * is still arriving, or when the response cannot be queued. */
enum MHD_Result factsd_http_queue(factsd_http_conn *k, struct MHD_Connection *c,
                                  const char *method, unsigned status,
                                  struct MHD_Response *resp);

/* Queues the representation r with status and opts (both borrowed: r is
 * k->own or belongs to k->view, and must live until the request
 * completes); r NULL or no memory for the response answers the bare 500. */
enum MHD_Result factsd_http_send(factsd_http_conn *k, struct MHD_Connection *c,
                                 const char *method, unsigned status, const factsd_repr *r,
                                 const factsd_reply_opts *opts);

/* Answers with a problem of kind and detail (borrowed; NULL: the kind's
 * own), made into k->own (the previous one is freed); close adds
 * Connection: close. A 405 names the route's methods in Allow, a 401 asks
 * for a Bearer token, and a replica's 403 names its primary. */
enum MHD_Result factsd_http_problem(factsd_http_conn *k, struct MHD_Connection *c,
                                    const char *method, factsd_problem_kind kind,
                                    const char *detail, bool close);

/* The route of the request's target, matched on first use (after the
 * framing checks have brought the target to origin-form). The pointer is
 * into k and valid until the request ends. */
const factsd_route *factsd_http_route(factsd_http_conn *k);

/* Publishes next (its reference passes to h) in place of the current
 * view. The caller holds h->writer; any thread. Readers are never blocked:
 * the old view's reference is dropped once no reader is between loading
 * the pointer and taking its own reference. */
void factsd_http_view_swap(factsd_http *h, factsd_view *next);

/* The nanoseconds from a to b (CLOCK_MONOTONIC), 0 if b is not after a. */
uint64_t factsd_http_elapsed_ns(const struct timespec *a, const struct timespec *b);

/* ------------------------------------------- writes (http_write.c) */

/* Decides a write from its request line and headers alone, before any
 * content is read: route and method (404, 405), token (403, 401), state
 * (503), media type (415), length (411). Returns true when the request is
 * refused (*rc set, or the refusal recorded in k to be answered once the
 * request is complete); otherwise allocates k->body for the content and
 * returns false. */
bool factsd_http_write_begin(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                             enum MHD_Result *rc);

/* Runs an accepted write (or answers its recorded refusal) once its content
 * is complete: prepares the change, renders the next view, appends to the
 * journal and syncs it, publishes, answers. Takes h->writer. A write that
 * fails leaves the published view, the history and the journal as they
 * were. */
enum MHD_Result factsd_http_write_run(factsd_http_conn *k, struct MHD_Connection *c,
                                      const char *method);

/* Writes a journal or dataset failure to stderr as "factsd: what: error"
 * (the token never appears: it is in no error). Any thread. */
void factsd_http_log_error(const char *what, const facts_error *err);

/* --------------------------------------------- feed (http_feed.c) */

/* Answers GET or HEAD /v1/changes: the changes after since, or, with wait
 * and nothing newer, suspends the request until a change or the wait's end
 * and returns MHD_YES unanswered (the handler is called again after the
 * resume and answers then). */
enum MHD_Result factsd_http_changes(factsd_http_conn *k, struct MHD_Connection *c,
                                    const char *method);

/* Answers GET or HEAD /v1/stream: a text/event-stream of the changes from
 * the client's Last-Event-ID or from now, ended by the server's stop, the
 * client's close, or a reset when the client fell too far behind; 503 when
 * too many streams are open. */
enum MHD_Result factsd_http_stream(factsd_http_conn *k, struct MHD_Connection *c,
                                   const char *method);

/* ---------------------------- metrics, readiness (http_metrics.c) */

/* The gauges of a scrape: a factsd_metrics_gauges_fn, cls is the service.
 * Any thread. */
void factsd_http_gauges(void *cls, factsd_metrics_gauges *g);

/* GET or HEAD /metrics on the main listener: the scrape in the format
 * Accept prefers, made into out->own (the caller frees it); status 500
 * when memory runs out. */
void factsd_http_metrics_get(factsd_http_conn *k, struct MHD_Connection *c, factsd_answer *out);

/* GET or HEAD /readyz: 200 {"status":"ready","revision":N} while the
 * server answers with current data; 503 while it stops, or while it is a
 * replica that has not loaded a snapshot or caught up (metrics.h), with
 * the replica's lag_seconds and revision. The representation is out->own
 * (the caller frees it); status 500 when memory runs out. */
void factsd_http_ready_get(factsd_http_conn *k, factsd_answer *out);

/* Counts the request that completes, if one was answered (a status was
 * queued). Long-polls that waited and event streams are counted but not
 * timed; a stream's bytes are those it wrote, another response's its
 * content when it was sent whole. */
void factsd_http_metrics_record(factsd_http_conn *k, enum MHD_RequestTerminationCode toe);

#endif
