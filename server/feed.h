/*
 * feed.h - the change feed's pieces that need no connection: the history
 * entry of one change, the /v1/changes query and its JSON answer.
 */
#ifndef FACTSD_FEED_H
#define FACTSD_FEED_H

#include "problem.h"
#include "render.h"

#include <facts.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FACTSD_FEED_TIME_LEN = 32,       /* bytes of an entry's time, with NUL */
    FACTSD_FEED_LIMIT_DEFAULT = 100, /* changes in one answer */
    FACTSD_FEED_LIMIT_MAX = 500,
    FACTSD_FEED_WAIT_MAX = 60        /* seconds a long-poll may ask to wait */
};

/* The parameters of one GET /v1/changes. */
typedef struct factsd_feed_query {
    uint64_t since;   /* the revision the client has */
    size_t limit;     /* changes at most in the answer */
    unsigned wait;    /* seconds to wait for a change when none is newer */
} factsd_feed_query;

/* Builds a history entry {"revision","time","op","collection","id","slug"
 * [,"record"]}: op is "create", "update", "delete" or "reload"; collection,
 * id and slug are left out when NULL (a reload); record (may be NULL) is the
 * new representation's JSON text, parsed and embedded. time is now, in RFC
 * 3339 UTC with milliseconds. Returns a new reference, or NULL when memory
 * runs out or record is not JSON. */
json_t *factsd_feed_entry_new(uint64_t revision, const char *op, const char *collection,
                              const char *id, const char *slug, const char *record,
                              size_t record_len);

/* As factsd_feed_entry_new, with time (such a string, e.g. kept in the
 * journal with the change; NULL: now) instead of now. */
json_t *factsd_feed_entry_at(const char *time, uint64_t revision, const char *op,
                             const char *collection, const char *id, const char *slug,
                             const char *record, size_t record_len);

/* Writes now, in RFC 3339 UTC with milliseconds ("2024-11-01T12:00:00.000Z"),
 * into out (size bytes, at least FACTSD_FEED_TIME_LEN). Never fails. */
void factsd_feed_time_now(char *out, size_t size);

/* Parses the len-byte query (after '?'; may be empty) of GET /v1/changes
 * into *q: since (required), limit (1..FACTSD_FEED_LIMIT_MAX, default
 * FACTSD_FEED_LIMIT_DEFAULT), wait (0..FACTSD_FEED_WAIT_MAX, default 0);
 * pretty is accepted and ignored. Returns the number of offending parameters
 * (0: *q is valid), of which the first cap are written to bad (the count may
 * go beyond cap; nothing past bad[cap - 1] is touched). Never fails
 * otherwise. */
size_t factsd_feed_query_parse(const char *query, size_t len, factsd_feed_query *q,
                               factsd_problem_param *bad, size_t cap);

/* Renders {"changes":[...],"revision":latest,"next":next} from the n entries
 * (oldest first) as a JSON representation marked with revision latest.
 * Returns a representation owned by the caller (factsd_repr_free), or NULL
 * when memory runs out. The entries are borrowed. */
factsd_repr *factsd_feed_render(facts_history_entry *const *entries, size_t n, uint64_t latest,
                                uint64_t next);

#endif /* FACTSD_FEED_H */
