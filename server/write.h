/*
 * write.h - one write request turned into a change: the body parsed (depth
 * checked first, duplicate keys refused), merged for PATCH (RFC 7396), the
 * If-Match precondition checked, and the change run through the data core's
 * validation, giving the next store and the journal payload that replays it.
 * Nothing here touches the journal or the published view.
 */
#ifndef FACTSD_WRITE_H
#define FACTSD_WRITE_H

#include "feed.h"
#include "render.h"
#include "view.h"

#include <facts.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FACTSD_WRITE_DEPTH_MAX = 30,  /* nesting of arrays and objects in a body:
                                     a record sits 2 levels deep in a dataset,
                                     whose cap is 32 */
    FACTSD_WRITE_ERRORS_MAX = 32, /* problems listed in one 422 */
    FACTSD_WRITE_ETAG_LEN = 32    /* bytes of an ETag, quotes and NUL included */
};

/* The write methods. */
typedef enum factsd_write_op {
    FACTSD_WRITE_CREATE = 0, /* POST on a collection */
    FACTSD_WRITE_REPLACE,    /* PUT on an item */
    FACTSD_WRITE_MERGE,      /* PATCH on an item (JSON Merge Patch) */
    FACTSD_WRITE_DELETE      /* DELETE on an item */
} factsd_write_op;

/* A prepared change, or why there is none. Fill with factsd_change_prepare,
 * release with factsd_change_clear. */
typedef struct factsd_change {
    unsigned status;       /* 0: ready; otherwise the HTTP status to answer */
    factsd_repr *problem;  /* status != 0: the problem body (owned; NULL when
                              memory ran out: answer a bare 500) */
    char etag[FACTSD_WRITE_ETAG_LEN]; /* 412: the record's current ETag */
    facts_store *next;     /* ready: the next store (owned, one reference) */
    const facts_record *rec; /* ready: the created or replaced record inside
                                next; NULL for a delete */
    char id[40];           /* ready: the record's id (also for a delete) */
    bool unchanged;        /* ready: a PUT or PATCH that leaves the record as
                              it is: there is nothing to write */
    char time[FACTSD_FEED_TIME_LEN]; /* ready: when the change was made, as
                              its payload and its change entry give it */
    char *payload;         /* ready: the journal payload (owned, NUL-terminated) */
    size_t payload_len;
} factsd_change;

/* Prepares op on the record of kind named by key (an id or slug; NULL for
 * CREATE) against the view v, from len bytes of request content at body
 * (NULL and 0 for DELETE) and the request's If-Match header (NULL when
 * absent). Fills *out: status 0 with the next store and payload, or an error
 * status with its problem: 400 malformed JSON (line and column) or nesting
 * over FACTSD_WRITE_DEPTH_MAX, 404 no such record, 409 a conflict, 412 a
 * failed If-Match, 422 the record breaks dataset rules (every problem listed
 * with a JSON pointer), 500 out of memory. Arguments are borrowed for the
 * call only. Never fails otherwise. */
void factsd_change_prepare(const factsd_view *v, factsd_write_op op, facts_kind kind,
                           const char *key, const char *body, size_t len,
                           const char *if_match, factsd_change *out);

/* Releases what *c owns and zeroes it. NULL is a no-op. */
void factsd_change_clear(factsd_change *c);

/* Opens the journal at path (creating it when absent) and replays it onto
 * *store, so *store becomes the dataset with every journalled change applied.
 * Records whose revision is not above the dataset's are taken as already in
 * it - and checked: the last of them to touch each record must match the
 * store, else FACTS_ECORRUPT (rule "journal-mismatch"), because skipping
 * them would drop acknowledged writes. A record that is not the store's next
 * revision is a gap (FACTS_ECORRUPT, rule "revision-gap"). Afterwards the journal's last revision must be
 * the store's (or the journal empty), so the next append follows it. Sets
 * *out; report (may be NULL) as facts_journal_open. On failure *out is
 * untouched, the journal closed, *store may already hold some replayed
 * changes (the caller drops it), and err says why: the statuses of
 * facts_journal_open and factsd_change_replay, or FACTS_ECORRUPT when the
 * journal ends before the dataset's revision.
 *
 * history (may be NULL) is a JSON array that receives the change entry
 * (factsd_feed_entry_at, with the time the payload kept) of each record
 * replayed after the dataset's revision, so that a restarted server still
 * answers /v1/changes from before its restart. A record without a time (a
 * journal written before records carried one) or memory running out
 * empties it: what it holds always ends at *store's revision, consecutive. */
facts_status factsd_journal_open_replay(const char *path, facts_store **store,
                                        facts_journal **out, facts_journal_report *report,
                                        json_t *history, facts_error *err);

/* Whether If-Match value if_match (may be NULL) matches etag under the strong
 * comparison (RFC 9110: weak tags never match; "*" matches any). NULL
 * if_match gives true. Never fails. */
bool factsd_write_if_match(const char *if_match, const char *etag);

/* Checks that len bytes at body nest arrays and objects at most max deep,
 * counting outside strings only. Never fails. */
bool factsd_write_depth_ok(const char *body, size_t len, unsigned max);

#endif /* FACTSD_WRITE_H */
