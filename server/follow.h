/*
 * follow.h - a read-only replica's link to its primary (factsd --follow
 * URL): the primary's snapshot first (GET URL/v1/snapshot), then its
 * changes (GET URL/v1/changes, long-polled) applied in order by a thread of
 * its own with libcurl, each published through the HTTP service under the
 * primary's revision number with the primary's change entry, so that
 * since=, ETags and cursors mean the same on every node. A position that
 * has left the primary's history (410), a "reload" entry, a gap or a
 * change that does not reproduce the primary's record bring a fresh
 * snapshot; a snapshot behind the replica is never published (revisions
 * only move forward). While the primary cannot be reached the replica
 * serves what it has and retries with backoff (100 ms doubling to 5 s).
 * The replica's lag, connection and readiness go to metrics.h.
 */
#ifndef FACTSD_FOLLOW_H
#define FACTSD_FOLLOW_H

#include "config.h"
#include "http.h"

#include <facts.h>
#include <stdbool.h>
#include <stddef.h>

enum {
    FACTSD_FOLLOW_WAIT = 10,                     /* seconds a long-poll asks
                                                    the primary to hold */
    FACTSD_FOLLOW_BODY_MAX = 32 * 1024 * 1024    /* bytes of one answer */
};

/* A replica's link to its primary. Opaque. */
typedef struct factsd_follow factsd_follow;

/* Prepares to follow cfg->follow_url (the configuration is copied):
 * initialises libcurl, so call it before the process starts any other
 * thread, and turns on the replica mode of metrics.h (not ready: /readyz
 * answers 503 until a snapshot is loaded). Returns the link, or NULL with a
 * one-line reason in msg (size bytes) when libcurl cannot start or memory
 * runs out. */
factsd_follow *factsd_follow_new(const factsd_config *cfg, char *msg, size_t size);

/* Fetches and loads the primary's snapshot, retrying with backoff until one
 * loads; prints on stderr the first failure and each new reason. Blocks the
 * calling thread meanwhile (the process has no listener yet: a load
 * balancer sees the replica down). Returns the store (the caller's
 * reference), or NULL when memory runs out. */
facts_store *factsd_follow_bootstrap(factsd_follow *f);

/* Starts the thread that applies the primary's changes onto store (f takes
 * its own reference; the store h serves) and publishes each through h with
 * factsd_http_advance. Returns true, or false with a reason in msg when the
 * thread cannot start. */
bool factsd_follow_start(factsd_follow *f, factsd_http *h, facts_store *store, char *msg,
                         size_t size);

/* Stops the thread (a transfer in progress is abandoned within about a
 * second), releases libcurl and frees f. Call it before factsd_http_stop.
 * NULL is a no-op. */
void factsd_follow_free(factsd_follow *f);

#endif /* FACTSD_FOLLOW_H */
