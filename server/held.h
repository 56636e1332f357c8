/*
 * held.h - the requests the change feed holds open: long-polls of
 * /v1/changes waiting for a change, and /v1/stream event streams. It owns
 * the history of changes they read, the waiting list of suspended
 * connections, the limits on how many may be held, and the watch on their
 * sockets (libmicrohttpd does not poll a suspended connection, so a client
 * that leaves would otherwise keep its connection until the wait ends).
 *
 * One lock guards all of it. The check "nothing newer" and the suspend
 * happen under it, and so do the append of a change and the wake-up of
 * every waiting connection: no change can slip between them. What a
 * request answers (status, headers, problem documents) is the caller's.
 */
#ifndef FACTSD_HELD_H
#define FACTSD_HELD_H

#include "config.h"
#include "feed.h"
#include "stream.h"

#include <facts.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FACTSD_HELD_STREAM_BLOCK = 512 /* libmicrohttpd's buffer of a stream response
                                      (used for HTTP/1.0 only; chunked streams
                                      write into the connection's buffer) */
};

/* The held requests of one service. Opaque. */
typedef struct factsd_held factsd_held;

/* One connection's place among the held requests, embedded in the
 * connection's own state (zeroed when it opens). The owner sets fd and
 * reads peer_gone; the other fields belong to factsd_held (under its lock). */
typedef struct factsd_held_slot {
    int fd;                       /* the connection's socket */
    atomic_bool peer_gone;        /* the client closed while the request was held */
    bool is_stream;               /* the request is an open event stream */
    uint64_t sent;                /* content bytes the stream has written */
    bool waiting;                 /* on the waiting list, suspended */
    long long deadline;           /* ms (CLOCK_MONOTONIC) its wait or heartbeat ends */
    struct MHD_Connection *mhd;   /* while suspended */
    struct factsd_held_slot *prev, *next; /* on the waiting list */
} factsd_held_slot;

/* Creates the held requests of a service whose dataset is at revision,
 * with cfg's limits (history, max_waiters, max_streams, and for long-polls
 * and streams together nine tenths of max_connections, leaving at least 8)
 * and heartbeat (the configuration is copied). The watch
 * on suspended sockets is best effort (without it a departed client is
 * noticed when its wait or heartbeat comes). Returns the object, or NULL
 * with a one-line reason in msg (size bytes) when the history cannot be
 * kept (its size, memory) or a mutex cannot be created. */
factsd_held *factsd_held_new(const factsd_config *cfg, uint64_t revision, char *msg,
                             size_t size);

/* Frees hd and its history. NULL is a no-op. Call it once no connection
 * can use hd any more (after the daemon has stopped). */
void factsd_held_free(factsd_held *hd);

/* Records the change that made revision (entry: a new reference, consumed;
 * NULL when memory ran out building it) and wakes every held request. When
 * the entry cannot be appended (no memory, or revision is not after the
 * latest) the history restarts at revision, so that clients behind it are
 * sent to reload rather than miss the change (a line on stderr says so).
 * The caller serialises changes (the service's writer lock). Never fails
 * otherwise. */
void factsd_held_record(factsd_held *hd, uint64_t revision, json_t *entry);

/* Ends every held request and lets none wait from now on: each suspended
 * connection is resumed (a long-poll is answered with what is there, a
 * stream ends). NULL is a no-op. Never fails. */
void factsd_held_close(factsd_held *hd);

/* Waits at most timeout_ms for clients of suspended connections to leave
 * and resumes theirs with peer_gone set (a long-poll's connection is then
 * closed unanswered, a stream ends). Without a watch it just sleeps. For
 * the sweeper thread. Never fails. */
void factsd_held_watch(factsd_held *hd, int timeout_ms);

/* Resumes the suspended connections whose wait or heartbeat is due by now
 * (ms, CLOCK_MONOTONIC). For the sweeper thread. Never fails. */
void factsd_held_wake_due(factsd_held *hd, long long now);

/* Takes s off the waiting list if it is still on it: for a connection that
 * closes (which is not expected while suspended). Never fails. */
void factsd_held_forget(factsd_held *hd, factsd_held_slot *s);

/* Readies s for the connection's next request: not a stream, nothing
 * sent, peer not gone. Never fails. */
void factsd_held_slot_reset(factsd_held_slot *s);

/* The long-polls held waiting, the event streams open and the change
 * entries the history keeps, at this moment (for the metrics). Takes the
 * lock briefly. Never fails. */
void factsd_held_counts(factsd_held *hd, size_t *long_polls, size_t *streams,
                        size_t *history);

/* What factsd_held_changes did. */
typedef enum factsd_held_result {
    FACTSD_HELD_READ = 0,  /* the history was read: answer now */
    FACTSD_HELD_FULL,      /* nothing newer, and too many requests are held
                              to wait: nothing was filled */
    FACTSD_HELD_SUSPENDED  /* nothing newer: c is suspended until the next
                              change, the wait's end, the client's leaving or
                              the close; the handler is called again then */
} factsd_held_result;

/* Reads the changes of q (since, limit) for the long-poll of connection c
 * (slot s) into ents (room for q->limit, at most FACTSD_FEED_LIMIT_MAX;
 * each a new reference the caller drops), *n, *latest and *oldest, as
 * facts_history_since, whose result goes into *st. When there is nothing
 * newer, wait is set, q->wait > 0 and hd is not closed, it waits instead:
 * the request is suspended for q->wait seconds (FACTSD_HELD_SUSPENDED), or
 * refused when max_waiters long-polls, or the held share of the
 * connections, are held already (FACTSD_HELD_FULL). Never fails
 * otherwise. */
factsd_held_result factsd_held_changes(factsd_held *hd, factsd_held_slot *s,
                                       struct MHD_Connection *c, const factsd_feed_query *q,
                                       bool wait, facts_history_entry **ents, size_t *n,
                                       uint64_t *latest, uint64_t *oldest, facts_status *st);

/* What factsd_held_stream_open did. */
typedef enum factsd_held_stream_result {
    FACTSD_HELD_STREAM_OK = 0,
    FACTSD_HELD_STREAM_CLOSED, /* hd is closed: the service is stopping */
    FACTSD_HELD_STREAM_FULL,   /* max_streams, or the held share of the
                                  connections, are held already */
    FACTSD_HELD_STREAM_NOMEM
} factsd_held_stream_result;

/* Opens the event stream of q for connection c (slot s): from q's
 * Last-Event-ID when it resumes, else from the latest revision. On
 * FACTSD_HELD_STREAM_OK sets *resp to a new response of unknown size
 * (FACTSD_HELD_STREAM_BLOCK) and no header fields, which the caller
 * completes, queues and destroys; its content reader writes what is due
 * (factsd_stream_produce) and, caught up, suspends c until the next change
 * or heartbeat; the stream's state is freed with the response. Otherwise
 * *resp is untouched and nothing is held. */
factsd_held_stream_result factsd_held_stream_open(factsd_held *hd, factsd_held_slot *s,
                                                  struct MHD_Connection *c,
                                                  const factsd_stream_query *q,
                                                  struct MHD_Response **resp);

#endif /* FACTSD_HELD_H */
