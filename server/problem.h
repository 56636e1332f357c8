/*
 * problem.h - RFC 9457 problem details (application/problem+json) bodies.
 */
#ifndef FACTSD_PROBLEM_H
#define FACTSD_PROBLEM_H

#include "render.h"
#include "text.h"

#include <jansson.h>

#include <stddef.h>

enum {
    FACTSD_PROBLEM_PARAMS_MAX = 32 /* invalid-params entries in one problem */
};

/* The classes of problem the server reports; each has a stable type URI
 * ("urn:factsd:problem:<name>") and a title. */
typedef enum factsd_problem_kind {
    FACTSD_PROBLEM_INVALID_PARAMETERS = 0, /* 400: query parameters */
    FACTSD_PROBLEM_MALFORMED_REQUEST,      /* 400: framing, target, Host */
    FACTSD_PROBLEM_NOT_FOUND,              /* 404 */
    FACTSD_PROBLEM_METHOD_NOT_ALLOWED,     /* 405 */
    FACTSD_PROBLEM_CONTENT_TOO_LARGE,      /* 413 */
    FACTSD_PROBLEM_URI_TOO_LONG,           /* 414 */
    FACTSD_PROBLEM_HEADERS_TOO_LARGE,      /* 431 */
    FACTSD_PROBLEM_INTERNAL,               /* 500 */
    FACTSD_PROBLEM_MALFORMED_JSON,         /* 400: a write's body is not JSON */
    FACTSD_PROBLEM_UNAUTHORIZED,           /* 401: no or wrong token */
    FACTSD_PROBLEM_READ_ONLY,              /* 403: no token configured */
    FACTSD_PROBLEM_CONFLICT,               /* 409 */
    FACTSD_PROBLEM_LENGTH_REQUIRED,        /* 411 */
    FACTSD_PROBLEM_PRECONDITION_FAILED,    /* 412: stale If-Match */
    FACTSD_PROBLEM_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    FACTSD_PROBLEM_INVALID_RECORD,         /* 422 */
    FACTSD_PROBLEM_WRITES_DISABLED,        /* 503: the journal failed */
    FACTSD_PROBLEM_INSUFFICIENT_STORAGE,   /* 507: the disk is full */
    FACTSD_PROBLEM_GONE,                   /* 410: history no longer holds it */
    FACTSD_PROBLEM_UNAVAILABLE,            /* 503: too many waiting requests */
    FACTSD_PROBLEM_NOT_ACCEPTABLE,         /* 406: no format Accept allows */
    FACTSD_PROBLEM_KIND_COUNT
} factsd_problem_kind;

/* One offending query parameter. */
typedef struct factsd_problem_param {
    char name[32];
    char reason[160];
} factsd_problem_param;

/* Records one offending parameter in bad[n] when n < cap (name and reason
 * are copied, cut to fit). Returns n + 1: the count, kept even beyond cap.
 * Never fails. */
size_t factsd_problem_param_add(factsd_problem_param *bad, size_t cap, size_t n,
                                const char *name, const char *reason);

/* Steps to the next decoded parameter of a raw query (as
 * factsd_text_query_param_next; start *pos and *count at 0), recording in
 * bad (cap entries, count in *nbad) a name that is not valid and the end
 * of a query with too many parameters. Returns true with the parameter in
 * *p, false at the end. Never fails otherwise. */
bool factsd_problem_query_next(const char *query, size_t len, size_t *pos, size_t *count,
                               factsd_query_param *p, factsd_problem_param *bad, size_t cap,
                               size_t *nbad);

/* The HTTP status of a problem kind (400 for an unknown kind). */
unsigned factsd_problem_status(factsd_problem_kind kind);

/* Builds the JSON body {"type","title","status","detail"[,"invalid-params"]}
 * for kind; detail is copied (NULL gives the title). params (count entries,
 * at most FACTSD_PROBLEM_PARAMS_MAX are used) may be NULL when count is 0.
 * Returns a NUL-terminated body owned by the caller (free()) and sets *len,
 * or NULL when memory runs out. Arguments are not kept. */
char *factsd_problem_render(factsd_problem_kind kind, const char *detail,
                            const factsd_problem_param *params, size_t count, size_t *len);

/* As factsd_problem_render, wrapped in a representation (media
 * FACTSD_MEDIA_PROBLEM) owned by the caller (factsd_repr_free). Returns NULL
 * when memory runs out. */
factsd_repr *factsd_problem_new(factsd_problem_kind kind, const char *detail,
                                const factsd_problem_param *params, size_t count);

/* As factsd_problem_new, with the members of extra (a JSON object, may be
 * NULL; its reference is always taken) added after the standard ones (an
 * extension member never replaces "type", "title", "status" or "detail").
 * Returns NULL when memory runs out. */
factsd_repr *factsd_problem_new_ext(factsd_problem_kind kind, const char *detail, json_t *extra);

#endif /* FACTSD_PROBLEM_H */
