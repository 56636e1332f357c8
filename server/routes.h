/*
 * routes.h - the read API: maps a raw request target (path and query, as
 * the client sent them, not decoded) to a representation.
 */
#ifndef FACTSD_ROUTES_H
#define FACTSD_ROUTES_H

#include "render.h"
#include "view.h"

#include <stdbool.h>
#include <stddef.h>

enum {
    FACTSD_TARGET_MAX = 2048 /* bytes of a request target; longer gets 414 */
};

/* What a GET or HEAD is answered with. */
typedef struct factsd_answer {
    unsigned status;         /* 200, or the problem's status */
    const factsd_repr *repr; /* the representation to send: borrowed from the
                                view, or equal to own; NULL when memory ran
                                out (send a bare 500 then) */
    factsd_repr *own;        /* made for this request, or NULL; the caller frees
                                it once the response has been sent */
} factsd_answer;

/* Answers a GET or HEAD of the len-byte raw target (which the caller has
 * checked: at most FACTSD_TARGET_MAX bytes, valid %-escapes, no control
 * bytes) from view v. Fills *out; never fails otherwise (an allocation
 * failure gives status 500). target is not kept. */
void factsd_routes_get(const factsd_view *v, const char *target, size_t len,
                       factsd_answer *out);

/* Whether the path of the raw target names a route (whatever the method,
 * whether or not the record exists). Never fails. */
bool factsd_routes_match(const char *target, size_t len);

/* The change feed's routes, which factsd_routes_get does not answer. */
typedef enum factsd_feed_route {
    FACTSD_FEED_ROUTE_NONE = 0,
    FACTSD_FEED_ROUTE_CHANGES, /* /v1/changes */
    FACTSD_FEED_ROUTE_STREAM   /* /v1/stream */
} factsd_feed_route;

/* Which change-feed route the path of the raw target names, if any. Never
 * fails. */
factsd_feed_route factsd_routes_feed(const char *target, size_t len);

/* What a write method may do at a target. */
typedef enum factsd_write_route {
    FACTSD_WRITE_ROUTE_NONE = 0,   /* no route at this path */
    FACTSD_WRITE_ROUTE_READ_ONLY,  /* a route that takes no writes */
    FACTSD_WRITE_ROUTE_COLLECTION, /* /v1/{actors|events|troop-estimates}: POST */
    FACTSD_WRITE_ROUTE_ITEM,       /* /v1/{...}/{id-or-slug}: PUT, PATCH, DELETE */
    FACTSD_WRITE_ROUTE_COMPACT     /* /v1/admin/compact: POST */
} factsd_write_route;

/* Matches the path of the raw target (the query is ignored) for a write.
 * For a collection or an item sets *kind, and for an item copies the decoded
 * id or slug into key (cap bytes, NUL-terminated; cap must be at least 256).
 * Never fails. */
factsd_write_route factsd_routes_write(const char *target, size_t len, facts_kind *kind,
                                       char *key, size_t cap);

/* The Allow header value of the route at the raw target: "GET, HEAD,
 * OPTIONS" plus the write methods it takes, or NULL when no route matches.
 * Static. Never fails. */
const char *factsd_routes_allow(const char *target, size_t len);

#endif /* FACTSD_ROUTES_H */
