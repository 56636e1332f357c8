/*
 * conn.c - the listening socket, the acceptor, the registry of open
 * connections and the sweeper (see conn.h).
 */
#define _GNU_SOURCE /* accept4 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

enum {
    SWEEP_MS = 250,   /* how often header deadlines are checked */
    URL_LEN = 96,
    TRIM_CONNS = 128  /* connections gone since the high mark before the
                         free memory is handed back (memory_trim) */
};

struct factsd_conns {
    unsigned max_connections;
    unsigned timeout;          /* seconds for a request line and headers */
    int listen_fd;             /* -1 once closed */
    uint16_t port;
    char url[URL_LEN];
    struct MHD_Daemon *daemon;
    factsd_held *held;
    atomic_long nconns;        /* connections handed to libmicrohttpd and
                                  not yet closed (see acceptor_main) */
    atomic_bool stopping;      /* the acceptor and the sweeper must exit */
    pthread_t acceptor;
    bool acceptor_running;
    pthread_t sweeper;
    bool sweeper_running;
    pthread_mutex_t lock;      /* guards list and each connection's links */
    factsd_conn *list;         /* open connections, for the sweeper */
    long trim_high;            /* the most connections open since the last
                                  memory_trim (the sweeper's own) */
    long trim_last;            /* the count at the sweeper's last look */
};

long long factsd_conn_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Opens the listening socket of cfg (SO_REUSEADDR, the configured backlog)
 * and records the port it got; returns the socket or -1 with msg set. */
static int listen_open(factsd_conns *cs, const factsd_config *cfg, char *msg, size_t size)
{
    bool v6 = strchr(cfg->host, ':') != NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->port);
        inet_pton(AF_INET6, cfg->host, &sin6->sin6_addr);
        len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->port);
        inet_pton(AF_INET, cfg->host, &sin->sin_addr);
        len = sizeof *sin;
    }
    int one = 1;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, (int)cfg->backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(msg, size, "cannot listen on %s%s%s:%u: %s", v6 ? "[" : "", cfg->host,
                 v6 ? "]" : "", (unsigned)cfg->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    cs->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                        : ((struct sockaddr_in *)&ss)->sin_port);
    snprintf(cs->url, sizeof cs->url, "http://%s%s%s:%u", v6 ? "[" : "", cfg->host,
             v6 ? "]" : "", (unsigned)cs->port);
    return fd;
}

factsd_conns *factsd_conn_listen(const factsd_config *cfg, char *msg, size_t size)
{
    factsd_conns *cs = calloc(1, sizeof *cs);
    if (cs == NULL) {
        snprintf(msg, size, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&cs->lock, NULL) != 0) {
        free(cs);
        snprintf(msg, size, "cannot create a mutex");
        return NULL;
    }
    cs->max_connections = cfg->max_connections;
    cs->timeout = cfg->timeout;
    atomic_init(&cs->nconns, 0);
    atomic_init(&cs->stopping, false);
    cs->listen_fd = listen_open(cs, cfg, msg, size);
    if (cs->listen_fd < 0) {
        factsd_conn_free(cs);
        return NULL;
    }
    return cs;
}

uint16_t factsd_conn_port(const factsd_conns *cs)
{
    return cs->port;
}

size_t factsd_conn_count(const factsd_conns *cs)
{
    long n = atomic_load(&((factsd_conns *)cs)->nconns);
    return n > 0 ? (size_t)n : 0;
}

const char *factsd_conn_url(const factsd_conns *cs)
{
    return cs->url;
}

/* The acceptor thread: accepts connections as fast as they come and hands
 * them to the daemon's workers. (libmicrohttpd's own poll loop accepts one
 * connection per round over all connections, which leaves a burst of new
 * connections waiting for seconds under load.)
 *
 * The connection limit is kept here: a connection over it is closed at
 * once. libmicrohttpd's own limit is set beyond reach, because 0.9.75
 * refuses a connection added from another thread only in the worker, after
 * queuing it, and on that path a burst past the limit left its workers
 * stuck on a lock: nothing was served any more and the daemon never
 * stopped. Only this thread raises nconns, so the check cannot race; the
 * count falls when a connection closes (factsd_conn_remove) or the daemon
 * refuses one at once (the per-address limit). A connection the worker
 * drops for want of memory before it starts is never notified and keeps
 * its place in the count. */
static void *acceptor_main(void *arg)
{
    factsd_conns *cs = arg;
    struct timespec pause = {0, 5 * 1000 * 1000};
    while (!atomic_load(&cs->stopping)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd =
            accept4(cs->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (atomic_load(&cs->stopping) || errno == EINVAL || errno == EBADF)
                break;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nanosleep(&pause, NULL); /* out of descriptors: let some close */
            continue;
        }
        if (atomic_load(&cs->nconns) >= (long)cs->max_connections) {
            close(fd);
            continue;
        }
        atomic_fetch_add(&cs->nconns, 1);
        /* On failure (the per-address limit, memory) libmicrohttpd closes
         * the socket. */
        if (MHD_add_connection(cs->daemon, fd, (const struct sockaddr *)&ss, len) != MHD_YES)
            atomic_fetch_sub(&cs->nconns, 1);
    }
    return NULL;
}

/* Hands the free memory the allocator keeps back to the system once a
 * surge of connections has gone: when the count has fallen by TRIM_CONNS
 * or more since its high mark, to half of it or less, and has stopped
 * falling (trimming in the middle of the close-down would leave what the
 * rest of the surge frees untrimmed: the high mark starts again from
 * there). Each connection's
 * buffers are allocated and freed in the workers' malloc arenas, and glibc
 * returns little of that by itself, so without this a thousand slow
 * clients, once gone, would leave the process larger by most of what they
 * took. Called by the sweeper only, so trim_high needs no lock. */
static void memory_trim(factsd_conns *cs)
{
    long n = atomic_load(&cs->nconns);
    if (n > cs->trim_high)
        cs->trim_high = n;
    bool falling = n < cs->trim_last;
    cs->trim_last = n;
    if (falling || cs->trim_high - n < TRIM_CONNS || n > cs->trim_high / 2)
        return;
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
    cs->trim_high = n;
}

/* The sweeper thread: a connection whose request line and headers are not
 * all in by its deadline (timeout seconds after it opened or its last
 * response went out) is shut down, however steadily its bytes trickle in
 * (libmicrohttpd's timeout only measures idleness). Its worker then sees
 * the end of the stream and closes it. */
static void *sweeper_main(void *arg)
{
    factsd_conns *cs = arg;
    long long last = factsd_conn_now_ms();
    while (!atomic_load(&cs->stopping)) {
        /* Between sweeps, wait for the close of a suspended client. */
        factsd_held_watch(cs->held, SWEEP_MS);
        long long now = factsd_conn_now_ms();
        if (now - last < SWEEP_MS)
            continue;
        last = now;
        pthread_mutex_lock(&cs->lock);
        for (factsd_conn *c = cs->list; c != NULL; c = c->next) {
            long long d = atomic_load(&c->deadline);
            if (d != 0 && now > d) {
                shutdown(c->fd, SHUT_RDWR);
                atomic_store(&c->deadline, 0);
            }
        }
        pthread_mutex_unlock(&cs->lock);
        /* Suspended connections never time out by themselves: end the
         * long-polls whose wait is over, and let the streams whose
         * heartbeat is due write it. */
        factsd_held_wake_due(cs->held, now);
        memory_trim(cs);
    }
    return NULL;
}

bool factsd_conn_threads_start(factsd_conns *cs, struct MHD_Daemon *daemon, factsd_held *held,
                               char *msg, size_t size)
{
    cs->daemon = daemon;
    cs->held = held;
    int err = pthread_create(&cs->acceptor, NULL, acceptor_main, cs);
    if (err != 0) {
        snprintf(msg, size, "cannot start the acceptor thread: %s", strerror(err));
        return false;
    }
    cs->acceptor_running = true;
    err = pthread_create(&cs->sweeper, NULL, sweeper_main, cs);
    if (err != 0) {
        snprintf(msg, size, "cannot start the sweeper thread: %s", strerror(err));
        return false;
    }
    cs->sweeper_running = true;
    return true;
}

void factsd_conn_accept_stop(factsd_conns *cs)
{
    /* Wake the acceptor out of accept(2), then close the listening
     * socket, so new connections are refused. */
    atomic_store(&cs->stopping, true);
    if (cs->listen_fd >= 0)
        shutdown(cs->listen_fd, SHUT_RDWR);
    if (cs->acceptor_running)
        pthread_join(cs->acceptor, NULL);
    cs->acceptor_running = false;
    if (cs->listen_fd >= 0)
        close(cs->listen_fd);
    cs->listen_fd = -1;
}

void factsd_conn_threads_stop(factsd_conns *cs)
{
    if (cs == NULL)
        return;
    factsd_conn_accept_stop(cs);
    if (cs->sweeper_running)
        pthread_join(cs->sweeper, NULL);
    cs->sweeper_running = false;
}

void factsd_conn_free(factsd_conns *cs)
{
    if (cs == NULL)
        return;
    factsd_conn_threads_stop(cs);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

void factsd_conn_add(factsd_conns *cs, factsd_conn *c, int fd)
{
    c->fd = fd;
    factsd_conn_deadline_start(cs, c);
    pthread_mutex_lock(&cs->lock);
    c->prev = NULL;
    c->next = cs->list;
    if (cs->list != NULL)
        cs->list->prev = c;
    cs->list = c;
    pthread_mutex_unlock(&cs->lock);
}

void factsd_conn_remove(factsd_conns *cs, factsd_conn *c)
{
    atomic_fetch_sub(&cs->nconns, 1);
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        cs->list = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&cs->lock);
}

void factsd_conn_deadline_start(const factsd_conns *cs, factsd_conn *c)
{
    atomic_store(&c->deadline, factsd_conn_now_ms() + (long long)cs->timeout * 1000);
}

void factsd_conn_deadline_clear(factsd_conn *c)
{
    atomic_store(&c->deadline, 0);
}

void factsd_conn_busy_set(factsd_conn *c, bool busy)
{
    atomic_store_explicit(&c->busy, busy, memory_order_release);
}

bool factsd_conn_busy_any(factsd_conns *cs)
{
    bool busy = false;
    pthread_mutex_lock(&cs->lock);
    for (const factsd_conn *c = cs->list; c != NULL && !busy; c = c->next)
        busy = atomic_load_explicit(&c->busy, memory_order_acquire);
    pthread_mutex_unlock(&cs->lock);
    return busy;
}
