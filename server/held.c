/*
 * held.c - the long-polls and event streams the change feed holds open
 * (see held.h).
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "held.h"

#include "conn.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum {
    HELD_RESERVE = 8,     /* connections long-polls and streams leave free */
    WATCH_MAX = 1 << 20   /* descriptors the client-close watch covers */
};

/* lock guards the waiting list, the counts, the watch map and closed; the
 * history is appended (or restarted) under lock and the caller's writer
 * lock together, so a long-poll or stream that finds nothing newer and
 * suspends under lock is always woken by the next append. */
struct factsd_held {
    factsd_config cfg;
    pthread_mutex_t lock;
    facts_history *history;
    factsd_held_slot *waiters;     /* suspended long-polls and streams */
    size_t nwaiters;               /* long-polls among them */
    size_t nstreams;               /* event streams open */
    size_t nhistory;               /* entries the history holds */
    size_t held_cap;               /* long-polls and streams together: the
                                      connections not kept for other requests */
    bool closed;                   /* stopping: no more waiting */
    /* watch_map maps a descriptor to its suspended connection. */
    int watch_fd;                  /* epoll, or -1 */
    factsd_held_slot **watch_map;
    size_t watch_cap;              /* descriptors watch_map covers */
};

factsd_held *factsd_held_new(const factsd_config *cfg, uint64_t revision, char *msg,
                             size_t size)
{
    factsd_held *hd = calloc(1, sizeof *hd);
    if (hd == NULL) {
        snprintf(msg, size, "out of memory");
        return NULL;
    }
    hd->watch_fd = -1;
    if (pthread_mutex_init(&hd->lock, NULL) != 0) {
        free(hd);
        snprintf(msg, size, "cannot create a mutex");
        return NULL;
    }
    hd->cfg = *cfg;
    hd->history = facts_history_new(cfg->history, revision);
    if (hd->history == NULL) {
        snprintf(msg, size, "cannot keep a history of %zu changes (1 to %d, memory)",
                 cfg->history, FACTS_HISTORY_MAX);
        factsd_held_free(hd);
        return NULL;
    }
    /* Held requests never take the last tenth of the connections (at least
     * HELD_RESERVE), so reads and writes still get in. */
    size_t reserve = cfg->max_connections / 10;
    if (reserve < HELD_RESERVE)
        reserve = HELD_RESERVE;
    hd->held_cap = cfg->max_connections > reserve ? cfg->max_connections - reserve : 1;
    /* Watching suspended clients is best effort: without it a departed
     * client's connection is freed when its wait or heartbeat comes. */
    struct rlimit rl;
    size_t cap = WATCH_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < cap)
        cap = (size_t)rl.rlim_cur;
    hd->watch_map = calloc(cap, sizeof *hd->watch_map);
    if (hd->watch_map != NULL && (hd->watch_fd = epoll_create1(EPOLL_CLOEXEC)) >= 0)
        hd->watch_cap = cap;
    return hd;
}

void factsd_held_free(factsd_held *hd)
{
    if (hd == NULL)
        return;
    facts_history_free(hd->history);
    if (hd->watch_fd >= 0)
        close(hd->watch_fd);
    free(hd->watch_map);
    pthread_mutex_destroy(&hd->lock);
    free(hd);
}

/* Puts s (whose request is being suspended: c) on the waiting list and
 * watches its socket for the client's close. The caller holds hd->lock. */
static void waiter_link(factsd_held *hd, factsd_held_slot *s, struct MHD_Connection *c)
{
    s->waiting = true;
    s->mhd = c;
    s->prev = NULL;
    s->next = hd->waiters;
    if (hd->waiters != NULL)
        hd->waiters->prev = s;
    hd->waiters = s;
    if (!s->is_stream)
        hd->nwaiters++;
    if (hd->watch_fd >= 0 && s->fd >= 0 && (size_t)s->fd < hd->watch_cap) {
        struct epoll_event ev = {.events = EPOLLRDHUP, .data.fd = s->fd};
        if (epoll_ctl(hd->watch_fd, EPOLL_CTL_ADD, s->fd, &ev) == 0)
            hd->watch_map[s->fd] = s;
    }
}

/* Takes s off the waiting list and stops watching its socket; the caller
 * holds hd->lock and resumes the connection (if it still runs). */
static void waiter_unlink(factsd_held *hd, factsd_held_slot *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        hd->waiters = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->waiting = false;
    if (!s->is_stream)
        hd->nwaiters--;
    if (s->fd >= 0 && (size_t)s->fd < hd->watch_cap && hd->watch_map[s->fd] == s) {
        hd->watch_map[s->fd] = NULL;
        epoll_ctl(hd->watch_fd, EPOLL_CTL_DEL, s->fd, NULL);
    }
}

/* Resumes s, a waiting connection; the caller holds hd->lock. Once
 * resumed, a worker may finish the connection and free s at once: s is not
 * touched after the resume. */
static void waiter_wake(factsd_held *hd, factsd_held_slot *s)
{
    struct MHD_Connection *c = s->mhd;
    waiter_unlink(hd, s);
    s->mhd = NULL;
    MHD_resume_connection(c);
}

/* Resumes every waiting long-poll and stream (all) or those whose wait or
 * heartbeat is due by now; a long-poll is answered when libmicrohttpd calls
 * the handler again, a stream writes what is new. The caller holds
 * hd->lock. */
static void wake_locked(factsd_held *hd, bool all, long long now)
{
    factsd_held_slot *s = hd->waiters;
    while (s != NULL) {
        factsd_held_slot *next = s->next;
        if (all || s->deadline <= now)
            waiter_wake(hd, s);
        s = next;
    }
}

/* Wakes the waiting connections whose clients closed (fds from the watch
 * epoll). The caller holds hd->lock. */
static void wake_gone_locked(factsd_held *hd, const struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        if (fd < 0 || (size_t)fd >= hd->watch_cap)
            continue;
        factsd_held_slot *s = hd->watch_map[fd];
        if (s == NULL || !s->waiting)
            continue;
        /* The event may predate a reuse of the descriptor: ask again. */
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            atomic_store(&s->peer_gone, true);
            waiter_wake(hd, s);
        }
    }
}

void factsd_held_record(factsd_held *hd, uint64_t revision, json_t *entry)
{
    pthread_mutex_lock(&hd->lock);
    facts_error err;
    facts_status st = FACTS_ENOMEM;
    if (entry != NULL && facts_history_latest(hd->history) < revision)
        st = facts_history_append(hd->history, revision, json_incref(entry), &err);
    if (st == FACTS_OK && hd->nhistory < hd->cfg.history)
        hd->nhistory++; /* beyond its capacity the history drops the oldest */
    if (st != FACTS_OK) {
        facts_history_reset(hd->history, revision);
        hd->nhistory = 0;
        fprintf(stderr,
                "factsd: the change feed could not record revision %llu; clients behind it "
                "will reload\n",
                (unsigned long long)revision);
    }
    json_decref(entry);
    wake_locked(hd, true, 0);
    pthread_mutex_unlock(&hd->lock);
}

void factsd_held_close(factsd_held *hd)
{
    if (hd == NULL)
        return;
    pthread_mutex_lock(&hd->lock);
    hd->closed = true;
    wake_locked(hd, true, 0);
    pthread_mutex_unlock(&hd->lock);
}

void factsd_held_watch(factsd_held *hd, int timeout_ms)
{
    struct epoll_event ev[64];
    int n = 0;
    if (hd->watch_fd >= 0) {
        n = epoll_wait(hd->watch_fd, ev, (int)(sizeof ev / sizeof ev[0]), timeout_ms);
    } else {
        struct timespec tick = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    if (n > 0) {
        pthread_mutex_lock(&hd->lock);
        wake_gone_locked(hd, ev, n);
        pthread_mutex_unlock(&hd->lock);
    }
}

void factsd_held_wake_due(factsd_held *hd, long long now)
{
    pthread_mutex_lock(&hd->lock);
    wake_locked(hd, false, now);
    pthread_mutex_unlock(&hd->lock);
}

void factsd_held_forget(factsd_held *hd, factsd_held_slot *s)
{
    if (!s->waiting)
        return;
    pthread_mutex_lock(&hd->lock);
    if (s->waiting)
        waiter_unlink(hd, s);
    pthread_mutex_unlock(&hd->lock);
}

void factsd_held_counts(factsd_held *hd, size_t *long_polls, size_t *streams,
                        size_t *history)
{
    pthread_mutex_lock(&hd->lock);
    *long_polls = hd->nwaiters;
    *streams = hd->nstreams;
    *history = hd->nhistory;
    pthread_mutex_unlock(&hd->lock);
}

void factsd_held_slot_reset(factsd_held_slot *s)
{
    s->is_stream = false;
    s->sent = 0;
    atomic_store(&s->peer_gone, false);
}

factsd_held_result factsd_held_changes(factsd_held *hd, factsd_held_slot *s,
                                       struct MHD_Connection *c, const factsd_feed_query *q,
                                       bool wait, facts_history_entry **ents, size_t *n,
                                       uint64_t *latest, uint64_t *oldest, facts_status *st)
{
    pthread_mutex_lock(&hd->lock);
    *st = facts_history_since(hd->history, q->since, q->limit, ents, n, latest, oldest);
    if (*st == FACTS_OK && *n == 0 && q->wait > 0 && wait && !hd->closed) {
        if (hd->nwaiters >= hd->cfg.max_waiters || hd->nwaiters + hd->nstreams >= hd->held_cap) {
            pthread_mutex_unlock(&hd->lock);
            return FACTSD_HELD_FULL;
        }
        s->deadline = factsd_conn_now_ms() + (long long)q->wait * 1000;
        waiter_link(hd, s, c);
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&hd->lock);
        return FACTSD_HELD_SUSPENDED;
    }
    pthread_mutex_unlock(&hd->lock);
    return FACTSD_HELD_READ;
}

/* One open event stream: what its content reader needs. slot is valid
 * while the request runs (the reader is only called then); the rest lives
 * until libmicrohttpd drops the response (stream_free). */
struct stream_ctx {
    factsd_held *held;
    factsd_held_slot *slot;
    struct MHD_Connection *mhd;
    long long heartbeat_at; /* ms (CLOCK_MONOTONIC) of the next heartbeat */
    factsd_stream s;
};

/* The stream's content reader: writes what is due (preamble, changes, a
 * reset, a heartbeat); when nothing is, suspends the connection until the
 * next change or heartbeat and returns 0 (libmicrohttpd calls it again
 * after the resume). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_ctx *sc = cls;
    factsd_held *hd = sc->held;
    factsd_held_slot *slot = sc->slot;
    (void)pos;
    if (atomic_load(&slot->peer_gone))
        return MHD_CONTENT_READER_END_OF_STREAM; /* the write fails: closed */
    long long now = factsd_conn_now_ms();
    if (now >= sc->heartbeat_at)
        sc->s.heartbeat_due = true;
    pthread_mutex_lock(&hd->lock);
    if (hd->closed) {
        pthread_mutex_unlock(&hd->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = 0;
    factsd_stream_state st = factsd_stream_produce(&sc->s, hd->history, buf, max, &n);
    if (n > 0) {
        slot->sent += n;
        sc->heartbeat_at = now + (long long)factsd_config_heartbeat(&hd->cfg) * 1000;
        sc->s.heartbeat_due = false;
        pthread_mutex_unlock(&hd->lock);
        return (ssize_t)n;
    }
    if (st == FACTSD_STREAM_END) {
        pthread_mutex_unlock(&hd->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Caught up: wait under the lock, so the next append wakes it. */
    slot->deadline = sc->heartbeat_at;
    waiter_link(hd, slot, sc->mhd);
    MHD_suspend_connection(sc->mhd);
    pthread_mutex_unlock(&hd->lock);
    return 0;
}

/* Frees a stream once libmicrohttpd is done with its response. */
static void stream_free(void *cls)
{
    struct stream_ctx *sc = cls;
    factsd_held *hd = sc->held;
    pthread_mutex_lock(&hd->lock);
    hd->nstreams--;
    pthread_mutex_unlock(&hd->lock);
    factsd_stream_release(&sc->s);
    free(sc);
}

factsd_held_stream_result factsd_held_stream_open(factsd_held *hd, factsd_held_slot *s,
                                                  struct MHD_Connection *c,
                                                  const factsd_stream_query *q,
                                                  struct MHD_Response **resp)
{
    struct stream_ctx *sc = calloc(1, sizeof *sc);
    if (sc == NULL)
        return FACTSD_HELD_STREAM_NOMEM;
    pthread_mutex_lock(&hd->lock);
    if (hd->closed || hd->nstreams >= hd->cfg.max_streams ||
        hd->nwaiters + hd->nstreams >= hd->held_cap) {
        bool closed = hd->closed;
        pthread_mutex_unlock(&hd->lock);
        free(sc);
        return closed ? FACTSD_HELD_STREAM_CLOSED : FACTSD_HELD_STREAM_FULL;
    }
    hd->nstreams++;
    factsd_stream_init(&sc->s, q->resume ? q->last : facts_history_latest(hd->history),
                       q->kinds);
    pthread_mutex_unlock(&hd->lock);
    sc->held = hd;
    sc->slot = s;
    sc->mhd = c;
    sc->heartbeat_at =
        factsd_conn_now_ms() + (long long)factsd_config_heartbeat(&hd->cfg) * 1000;
    s->is_stream = true;
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, FACTSD_HELD_STREAM_BLOCK, stream_read, sc, stream_free);
    if (r == NULL) {
        stream_free(sc);
        return FACTSD_HELD_STREAM_NOMEM;
    }
    *resp = r;
    return FACTSD_HELD_STREAM_OK;
}
