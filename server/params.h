/*
 * params.h - the query parameters of the read API: the raw query string of
 * a GET split, decoded and checked into one plain value, every offending
 * parameter listed, and written back in canonical form (the cache key, the
 * next page's link). No allocation but factsd_params_canonical's, no
 * global state: routes.c answers from it, a fuzzer calls it alone.
 */
#ifndef FACTSD_PARAMS_H
#define FACTSD_PARAMS_H

#include "problem.h"
#include "routes.h"
#include "text.h"

#include <facts.h>
#include <stdbool.h>
#include <stddef.h>

/* The parameters the read API knows, in canonical order. */
typedef enum factsd_param_id {
    FACTSD_PARAM_LIMIT = 0,
    FACTSD_PARAM_CURSOR,
    FACTSD_PARAM_SORT,
    FACTSD_PARAM_PRETTY,
    FACTSD_PARAM_ACTOR,
    FACTSD_PARAM_TYPE,
    FACTSD_PARAM_STATUS,
    FACTSD_PARAM_KIND,
    FACTSD_PARAM_FROM,
    FACTSD_PARAM_TO,
    FACTSD_PARAM_Q,
    FACTSD_PARAM_FORMAT,
    FACTSD_PARAM_COUNT
} factsd_param_id;

/* A set of parameters: bit FACTSD_PARAM_BIT(id) for each. */
#define FACTSD_PARAM_BIT(id) (1u << (id))

/* The formats of a collection (format= values), in the server's order of
 * preference. */
typedef enum factsd_params_format {
    FACTSD_PARAMS_FORMAT_JSON = 0,
    FACTSD_PARAMS_FORMAT_CSV,
    FACTSD_PARAMS_FORMAT_NDJSON,
    FACTSD_PARAMS_FORMAT_COUNT
} factsd_params_format;

enum {
    FACTSD_PARAMS_PIECES_MAX = 64 /* '&'-separated pieces in one query */
};

/* One query, parsed: filled by factsd_params_parse. The values point into
 * the struct's own store (or to static text), so a copy of the struct still
 * points into the original's store: keep one where it was filled. */
typedef struct factsd_params {
    const char *value[FACTSD_PARAM_COUNT]; /* decoded, NUL-terminated, UTF-8;
                                              NULL: not given */
    char store[FACTSD_TARGET_MAX + FACTSD_PARAM_COUNT + 1]; /* decoded values */
    size_t used;
    factsd_problem_param errors[FACTSD_PROBLEM_PARAMS_MAX]; /* names unique */
    size_t nerrors;
    size_t limit;      /* limit=, else FACTS_QUERY_LIMIT_DEFAULT */
    facts_sort sort;   /* sort=, else FACTS_SORT_DEFAULT */
    bool pretty;       /* pretty= */
    bool dated;        /* the collection sorts by date too (set before parsing) */
    factsd_params_format format; /* format=, else JSON */
} factsd_params;

/* The name of parameter id ("limit", ...). Static; NULL when id is out of
 * range. Never fails. */
const char *factsd_params_name(factsd_param_id id);

/* The format= value of format ("json", "csv", "ndjson"). Static; NULL when
 * format is out of range. Never fails. */
const char *factsd_params_format_name(factsd_params_format format);

/* The parameters a GET of route r takes: pretty (but on the dashboard's
 * files), and for a collection, a sub-collection or the summary its paging
 * and filters. Never fails. */
unsigned factsd_params_allowed(const factsd_route *r);

/* Splits and decodes the raw query (len bytes after '?', not decoded; any
 * bytes: a value that does not decode or fit is refused, so every value fits
 * when len is at most FACTSD_TARGET_MAX) into *p, keeping only the
 * parameters in allowed, and checks each value the server can judge alone
 * (limit, sort against p->dated, pretty, from, to, q, format, cursor, empty
 * filters). Every problem is recorded in p->errors, the first reason per
 * name, at most FACTSD_PROBLEM_PARAMS_MAX; more than
 * FACTSD_PARAMS_PIECES_MAX pieces stop the parse with an error named
 * "(query)". Set p->dated before the call; every other field is
 * overwritten. query is not kept. Never fails. */
void factsd_params_parse(factsd_params *p, const char *query, size_t len, unsigned allowed);

/* Records in p an offending parameter name with reason (both copied, cut
 * at a UTF-8 boundary; text that is not UTF-8 becomes "?") unless name is
 * recorded already or the list is full. Never fails. */
void factsd_params_error(factsd_params *p, const char *name, const char *reason);

/* Whether p holds any parameter. Never fails. */
bool factsd_params_any(const factsd_params *p);

/* Appends the canonical query string of p to b: the given parameters in
 * factsd_param_id order as name=value, values %-encoded, joined by '&', the
 * cursor only when with_cursor. Parsing it again gives the same values.
 * Returns false when b fails (factsd_buf_append). */
bool factsd_params_put_canonical(factsd_buf *b, const factsd_params *p, bool with_cursor);

/* The canonical query string of p without the cursor (the next page's
 * link). Returns a string owned by the caller (free()), or NULL when memory
 * runs out. */
char *factsd_params_canonical(const factsd_params *p);

#endif /* FACTSD_PARAMS_H */
