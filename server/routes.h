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

/* Which route a path names. */
typedef enum factsd_route_id {
    FACTSD_ROUTE_NONE = 0,   /* no route: 404 */
    FACTSD_ROUTE_INDEX,      /* /v1 */
    FACTSD_ROUTE_HEALTH,     /* /healthz */
    FACTSD_ROUTE_OPENAPI,    /* /openapi.json */
    FACTSD_ROUTE_COLLECTION, /* /v1/{collection} */
    FACTSD_ROUTE_ITEM,       /* /v1/{collection}/{id-or-slug} */
    FACTSD_ROUTE_ACTOR_SUB,  /* /v1/actors/{id-or-slug}/{events|troop-estimates} */
    FACTSD_ROUTE_SUMMARY,    /* /v1/troop-estimates/summary */
    FACTSD_ROUTE_COMPACT,    /* /v1/admin/compact */
    FACTSD_ROUTE_CHANGES,    /* /v1/changes */
    FACTSD_ROUTE_STREAM,     /* /v1/stream */
    FACTSD_ROUTE_ASSET,      /* /, /dashboard, /dashboard/app.{js,css} */
    FACTSD_ROUTE_METRICS,    /* /metrics */
    FACTSD_ROUTE_READY,      /* /readyz */
    FACTSD_ROUTE_SNAPSHOT    /* /v1/snapshot */
} factsd_route_id;

enum {
    FACTSD_ROUTE_KEY_MAX = 256 /* bytes of a decoded id or slug, with its NUL */
};

/* A request target's path, matched once by factsd_route_parse; the other
 * factsd_route_* functions and factsd_routes_get read it. */
typedef struct factsd_route {
    factsd_route_id id;
    facts_kind kind;                /* the collection (of a sub-collection) */
    factsd_asset asset;             /* the dashboard file (FACTSD_ROUTE_ASSET) */
    char key[FACTSD_ROUTE_KEY_MAX]; /* the item's or the actor's id or slug,
                                       decoded, NUL-terminated */
} factsd_route;

/* Matches the path of the len-byte raw target (the query is ignored; the
 * caller has checked the target: at most FACTSD_TARGET_MAX bytes, valid
 * %-escapes, no byte and no escaped byte below 0x21 or above 0x7e, as
 * factsd_text_pct_valid does) and fills *r; a path that names no route
 * gives FACTSD_ROUTE_NONE. Never fails; target is not kept. */
void factsd_route_parse(const char *target, size_t len, factsd_route *r);

/* What a GET or HEAD is answered with. */
typedef struct factsd_answer {
    unsigned status;         /* 200, or the problem's status */
    const factsd_repr *repr; /* the representation to send: borrowed from the
                                view, or equal to own; NULL when memory ran
                                out (send a bare 500 then) */
    factsd_repr *own;        /* made for this request, or NULL; the caller frees
                                it once the response has been sent */
} factsd_answer;

/* Answers a GET or HEAD of the len-byte raw target, whose path
 * factsd_route_parse matched into *r, from view v (its query supplies the
 * parameters). A collection's format is its format= parameter, or else the
 * one the Accept header value accept (may be NULL) prefers among JSON, CSV
 * and NDJSON (406 when it allows none); other routes have one format and
 * disregard Accept. Fills *out; never fails otherwise (an allocation failure
 * gives status 500). Neither target, accept nor r is kept. */
void factsd_routes_get(const factsd_view *v, const factsd_route *r, const char *target,
                       size_t len, const char *accept, factsd_answer *out);

/* The change feed's routes, which factsd_routes_get does not answer. */
typedef enum factsd_feed_route {
    FACTSD_FEED_ROUTE_NONE = 0,
    FACTSD_FEED_ROUTE_CHANGES, /* /v1/changes */
    FACTSD_FEED_ROUTE_STREAM   /* /v1/stream */
} factsd_feed_route;

/* Which change-feed route r is, if any. Never fails. */
factsd_feed_route factsd_route_feed(const factsd_route *r);

/* What a write method may do at a target. */
typedef enum factsd_write_route {
    FACTSD_WRITE_ROUTE_NONE = 0,   /* no route at this path */
    FACTSD_WRITE_ROUTE_READ_ONLY,  /* a route that takes no writes */
    FACTSD_WRITE_ROUTE_COLLECTION, /* /v1/{actors|events|troop-estimates}: POST */
    FACTSD_WRITE_ROUTE_ITEM,       /* /v1/{...}/{id-or-slug}: PUT, PATCH, DELETE */
    FACTSD_WRITE_ROUTE_COMPACT     /* /v1/admin/compact: POST */
} factsd_write_route;

/* What a write may do at route r; for a collection or an item sets *kind
 * (the item's id or slug is r->key). Never fails. */
factsd_write_route factsd_route_write(const factsd_route *r, facts_kind *kind);

/* The Allow header value of route r: "GET, HEAD, OPTIONS" plus the write
 * methods it takes, or NULL when r is FACTSD_ROUTE_NONE. Static. Never
 * fails. */
const char *factsd_route_allow(const factsd_route *r);

#endif /* FACTSD_ROUTES_H */
