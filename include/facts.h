/*
 * facts.h - the factsd data core: an immutable, reference-counted store of
 * the facts of one article (sources, actors, events, troop estimates), its
 * strict loader and its queries.
 *
 * The core knows nothing of HTTP and does no network I/O. Every function
 * documents what it returns on error, who owns its arguments and results, and
 * how long a returned pointer stays valid. A failed call leaves every object it
 * was given unchanged.
 *
 * Thread safety: a loaded facts_store never changes. Any number of threads may
 * query the same store at once without locking; references are counted
 * atomically (facts_store_ref / facts_store_unref).
 */
#ifndef FACTS_H
#define FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FACTS_VERSION "0.1.0"
#define FACTS_DATASET_FORMAT "factsd-dataset/1"

/* ---------------------------------------------------------------- status */

/* The one status type of the core. FACTS_OK is 0; everything else is a
 * failure and leaves state unchanged. */
typedef enum facts_status {
    FACTS_OK = 0,
    FACTS_ENOMEM,    /* an allocation failed */
    FACTS_EIO,       /* a file could not be opened or read */
    FACTS_ESYNTAX,   /* malformed JSON (line:column in the error) */
    FACTS_EINVALID,  /* well-formed JSON that breaks a dataset rule */
    FACTS_ELIMIT,    /* input larger than a hard cap */
    FACTS_ENOTFOUND, /* no record with that id or slug */
    FACTS_EARG,      /* a query argument is invalid (names the argument) */
    FACTS_ECONFLICT, /* a change clashes with other records (slug or id taken,
                        a record still referred to) */
    FACTS_ENOSPC,    /* the disk is full */
    FACTS_ECORRUPT,  /* a journal is damaged before its last record */
    FACTS_EGONE      /* the history no longer holds what was asked for */
} facts_status;

/* Returns a static, lower-case name for status ("ok", "enomem", ...);
 * "unknown" for a value outside the enum. Never fails. */
const char *facts_status_name(facts_status status);

/* A failure's description, filled by any call that takes a facts_error *.
 * Callers own the struct; every call that fails fills all fields (empty
 * strings and 0 where a field does not apply); a call that succeeds leaves it
 * untouched. Strings are NUL-terminated and truncated to fit. */
typedef struct facts_error {
    facts_status status;
    char source[128];  /* file name, "<embedded>" or "query" */
    int line;          /* 1-based line of the problem, 0 when not known */
    int column;        /* 1-based column, 0 when not known */
    char pointer[256]; /* RFC 6901 JSON pointer ("" = the whole document);
                          for a query error, the argument's name */
    char rule[32];     /* stable rule id, e.g. "low-high", "reference" */
    char text[256];    /* a sentence for people */
} facts_error;

/* Writes "source:line:column: pointer: text [rule]" (parts that do not apply
 * are left out) into buf, always NUL-terminating when size > 0. Returns the
 * length the full message needs, like snprintf. Never fails. */
size_t facts_error_format(const facts_error *err, char *buf, size_t size);

/* ----------------------------------------------------------------- kinds */

typedef enum facts_kind {
    FACTS_KIND_SOURCE = 0,
    FACTS_KIND_ACTOR,
    FACTS_KIND_EVENT,
    FACTS_KIND_ESTIMATE,
    FACTS_KIND_COUNT
} facts_kind;

/* Returns the kind's singular name: "source", "actor", "event",
 * "troop-estimate"; NULL for a value outside the enum. */
const char *facts_kind_name(facts_kind kind);

/* Returns the kind's collection name as used in URLs: "sources", "actors",
 * "events", "troop-estimates"; NULL for a value outside the enum. */
const char *facts_kind_collection(facts_kind kind);

/* Looks a collection name up. Returns FACTS_OK and sets *kind, or
 * FACTS_ENOTFOUND and leaves *kind unchanged. */
facts_status facts_kind_from_collection(const char *name, facts_kind *kind);

/* ----------------------------------------------------------------- dates */

typedef enum facts_precision {
    FACTS_PRECISION_UNKNOWN = 0,
    FACTS_PRECISION_YEAR,
    FACTS_PRECISION_SEASON,
    FACTS_PRECISION_MONTH,
    FACTS_PRECISION_DAY
} facts_precision;

/* A date range resolved to whole days. first_day and last_day count days
 * since 1970-01-01 (proleptic Gregorian) and are meaningful only when
 * precision is not FACTS_PRECISION_UNKNOWN. */
typedef struct facts_date_range {
    facts_precision precision;
    int32_t first_day;
    int32_t last_day;
} facts_date_range;

/* Parses a partial date "YYYY", "YYYY-MM" or "YYYY-MM-DD" (year 1000-9999,
 * a real calendar date) into the first day it covers (last == false) or the
 * last day (last == true). Returns FACTS_OK, or FACTS_EARG and leaves *day
 * unchanged. s must be NUL-terminated; it is not kept. */
facts_status facts_date_parse(const char *s, bool last, int32_t *day);

/* ----------------------------------------------------------------- store */

/* An immutable snapshot of a whole dataset. Opaque. */
typedef struct facts_store facts_store;

/* One record of any kind inside a store. Opaque; every pointer to a record is
 * valid for as long as the store that returned it is referenced. */
typedef struct facts_record facts_record;

/* Note: the first load wraps Jansson's allocator (json_set_alloc_funcs) so
 * that an allocation failure while parsing - which Jansson 2.14 would pass
 * over, dropping a character - is reported as FACTS_ENOMEM. A program that
 * sets its own Jansson allocator should do so before its first load.
 *
 * Parses and validates a dataset held in memory (len bytes at data, not
 * NUL-terminated necessarily) and builds a store with a reference count of 1
 * and the dataset's revision (its "revision" member, 1 when absent). name is used in error messages only (copied).
 * Returns FACTS_OK and sets *out; on failure returns the status, fills err
 * (if not NULL) with the position and rule, and leaves *out unchanged.
 * Rejected: malformed JSON, duplicate keys, unknown members, any rule of
 * docs/dataset-format.md, input over the caps (16 MiB, depth 32, ...). */
facts_status facts_store_load_buffer(const char *data, size_t len, const char *name,
                                     facts_store **out, facts_error *err);

/* As facts_store_load_buffer, reading the file at path (its name appears in
 * errors). FACTS_EIO when the file cannot be read. */
facts_status facts_store_load_file(const char *path, facts_store **out, facts_error *err);

/* As facts_store_load_buffer, on the dataset embedded in the library at
 * build time (the article's facts). */
facts_status facts_store_load_embedded(facts_store **out, facts_error *err);

/* The embedded dataset's bytes (static, never freed) and their length. */
const char *facts_embedded_dataset(size_t *len);

/* Adds a reference and returns store. NULL gives NULL. Never fails. */
facts_store *facts_store_ref(facts_store *store);

/* Drops a reference; the last one frees the store and all its records.
 * NULL is a no-op. */
void facts_store_unref(facts_store *store);

/* The store's revision: the dataset's (1 unless it states one), plus one for
 * each change applied since. */
uint64_t facts_store_revision(const facts_store *store);

/* Whether a and b hold the same records (same kinds, order and content),
 * whatever their revisions. Never fails. */
bool facts_store_same_records(const facts_store *a, const facts_store *b);

/* Gives store a later revision (revision >= its own, at most 2^53), for a
 * store that nothing else references yet (its creator's only reference).
 * FACTS_EARG (shared, backwards, too large) or FACTS_ENOMEM leave the
 * store unchanged. */
facts_status facts_store_renumber(facts_store *store, uint64_t revision, facts_error *err);

/* The number of records of kind in the store; 0 for an invalid kind. */
size_t facts_store_count(const facts_store *store, facts_kind kind);

/* The i-th record of kind in dataset order, or NULL when i is out of range. */
const facts_record *facts_store_at(const facts_store *store, facts_kind kind, size_t i);

/* Finds a record of kind by id (a UUID, any letter case) or by slug.
 * Returns NULL when there is none (or key is NULL). */
const facts_record *facts_store_find(const facts_store *store, facts_kind kind,
                                     const char *key);

/* The dataset as a whole, with every record in its canonical representation
 * (ids included), borrowed: valid while the store is referenced; do not
 * modify. */
const json_t *facts_store_json(const facts_store *store);

/* ---------------------------------------------------------------- record */

/* The record's kind. Never fails. */
facts_kind facts_record_kind(const facts_record *rec);

/* The record's id: a lower-case 36-character UUID string. Valid while the
 * store is referenced. */
const char *facts_record_id(const facts_record *rec);

/* The record's slug. Valid while the store is referenced. */
const char *facts_record_slug(const facts_record *rec);

/* A display name: an actor's name, an event's or a source's title, an
 * estimate's slug. Valid while the store is referenced. */
const char *facts_record_name(const facts_record *rec);

/* The record's canonical JSON representation: the dataset object with "id"
 * added, references left as slugs. Borrowed: valid while the store is
 * referenced; do not modify or decref it. */
const json_t *facts_record_json(const facts_record *rec);

/* The record's date range (an event's date, an estimate's period, a source's
 * publication date). Returns false, leaving *range unchanged, for an actor. */
bool facts_record_date(const facts_record *rec, facts_date_range *range);

/* An estimate's bounds. Returns false (outputs unchanged) for other kinds. */
bool facts_estimate_bounds(const facts_record *rec, int64_t *low, int64_t *high);

/* Whether the record involves the actor: an event's participant, an
 * estimate's sender, receiver or reporter, an actor itself. */
bool facts_record_involves(const facts_record *rec, const facts_record *actor);

/* --------------------------------------------------------------- queries */

typedef enum facts_sort {
    FACTS_SORT_DEFAULT = 0, /* events and estimates: date; others: name */
    FACTS_SORT_DATE_ASC,    /* undated records last */
    FACTS_SORT_DATE_DESC,   /* undated records last */
    FACTS_SORT_NAME_ASC,    /* the first 128 bytes of the name, ASCII
                               case-insensitive; ties by slug */
    FACTS_SORT_NAME_DESC
} facts_sort;

/* Parses "date", "-date", "name", "-name". Returns FACTS_OK and sets *sort,
 * or FACTS_EARG leaving *sort unchanged. */
facts_status facts_sort_parse(const char *s, facts_sort *sort);

enum {
    FACTS_QUERY_LIMIT_DEFAULT = 50,
    FACTS_QUERY_LIMIT_MAX = 500,
    FACTS_QUERY_TEXT_MAX = 256,   /* bytes of a text search */
    FACTS_QUERY_VALUES_MAX = 16,  /* comma-separated values in one filter */
    FACTS_CURSOR_MAX = 512        /* bytes of a cursor string */
};

/* A query over one collection. All strings are borrowed for the duration of
 * the call only; NULL means "no filter". Filters that do not apply to the
 * collection are refused with FACTS_EARG naming them. */
typedef struct facts_query {
    facts_kind kind;    /* the collection */
    const char *actor;  /* id or slug: events it takes part in, estimates it
                           sends, receives or reports */
    const char *type;   /* events: type, or a comma-separated list */
    const char *status; /* events: status, or a list */
    const char *subkind; /* actors: kind; estimates: kind (initial, ...) */
    const char *from;   /* events, estimates: partial date; matches by overlap */
    const char *to;     /* events, estimates: partial date, inclusive */
    const char *text;   /* ASCII-case-insensitive substring of one of the
                           slug, name, aliases, title, summary, description,
                           publisher or location name; no control characters */
    facts_sort sort;
    size_t limit;       /* 1..FACTS_QUERY_LIMIT_MAX; 0 means the default */
    const char *cursor; /* from a previous page's facts_page_next, or NULL */
} facts_query;

/* Sets *q to "all records of kind, default sort and limit". Never fails. */
void facts_query_init(facts_query *q, facts_kind kind);

/* One page of a query's result. Opaque. */
typedef struct facts_page facts_page;

/* Runs q against store. Returns FACTS_OK and sets *out to a new page owned by
 * the caller (free with facts_page_free). Failures, with err filled (pointer
 * = the argument's name): FACTS_EARG for a filter that does not apply, an
 * unknown enum value, a bad date, a from after to, a limit out of range, a
 * text over FACTS_QUERY_TEXT_MAX, or a cursor that is malformed or belongs to
 * another query; FACTS_ENOTFOUND when actor names no actor; FACTS_ENOMEM.
 * A cursor stays valid for the same query on the same store and on later
 * revisions (it marks a position in the sort order, not an offset). */
facts_status facts_store_query(const facts_store *store, const facts_query *q,
                               facts_page **out, facts_error *err);

/* The number of records on the page (≤ the query's limit). */
size_t facts_page_count(const facts_page *page);

/* The i-th record on the page, or NULL when i is out of range. The pointer is
 * valid while the store that answered the query is referenced. */
const facts_record *facts_page_get(const facts_page *page, size_t i);

/* How many records match the query's filters in all (across all pages). */
size_t facts_page_total(const facts_page *page);

/* The cursor of the next page, or NULL on the last page. Valid until the page
 * is freed. */
const char *facts_page_next(const facts_page *page);

/* Frees a page. NULL is a no-op. */
void facts_page_free(facts_page *page);

/* Cumulative bounds of a set of troop estimates. */
typedef struct facts_summary {
    int64_t low;  /* sum of the estimates' lows */
    int64_t high; /* sum of the estimates' highs */
    size_t count; /* how many estimates were summed */
} facts_summary;

/* Sums the troop estimates that q selects (q->kind must be
 * FACTS_KIND_ESTIMATE; q->limit and q->cursor are ignored: every match
 * counts). Sets *sum and, if page is not NULL, *page to a page holding every
 * estimate behind the sum (caller frees). Fails as facts_store_query, with
 * FACTS_EARG for another kind; outputs are unchanged on failure. */
facts_status facts_store_summarize(const facts_store *store, const facts_query *q,
                                   facts_summary *sum, facts_page **page,
                                   facts_error *err);

/* --------------------------------------------------------------- changes */

typedef enum facts_op {
    FACTS_OP_CREATE = 0, /* add a record */
    FACTS_OP_REPLACE,    /* replace the record named by key, keeping its id */
    FACTS_OP_DELETE      /* remove the record named by key */
} facts_op;

/* Builds a new store from base with one change applied. The whole resulting
 * dataset goes through the loader's validation, so a change can never leave
 * a dangling reference or a duplicate slug behind. base is not modified and
 * stays valid; the new store has revision facts_store_revision(base) + 1 and
 * a reference count of 1.
 *
 * record (borrowed; CREATE and REPLACE only) is the record in dataset form
 * (slug references, no derived members). Created records get the id
 * UUIDv5(namespace, "<kind>/<slug>") unless they carry one; a replaced record
 * keeps its id (a different "id" member is an error). key (REPLACE, DELETE)
 * is an id or a slug.
 *
 * On success sets *out and, if rec is not NULL, *rec to the created or
 * replaced record inside *out (NULL for DELETE); pointers into *out live as
 * long as *out. On failure outputs are unchanged and err says why:
 *   FACTS_ENOTFOUND  key names no record of kind
 *   FACTS_EINVALID   the record breaks a rule; err->source is "record" and
 *                    err->pointer points into the record ("/title")
 *   FACTS_ECONFLICT  the slug or id is taken (pointer into the record), or
 *                    another record would be left broken, e.g. still refer
 *                    to a deleted actor (err->source "dataset", pointer into
 *                    the whole dataset, e.g. "/events/3/participants/0/actor")
 *   FACTS_ELIMIT     the collection is full, or the dataset would grow past
 *                    what a load accepts (16 MiB as facts_store_save writes it)
 *   FACTS_ENOMEM, FACTS_EARG (op or kind out of range, record missing or not
 *                    an object). */
facts_status facts_store_apply(const facts_store *base, facts_op op, facts_kind kind,
                               const char *key, const json_t *record, facts_store **out,
                               const facts_record **rec, facts_error *err);

/* As facts_store_apply, but on FACTS_EINVALID fills errs[0..*n) with up to
 * max problems of the record (max >= 1), each with its pointer relative to
 * the record, in document order; errs[0] is what facts_store_apply reports.
 * Any other failure fills errs[0] alone (*n = 1). *n is 0 on success. */
facts_status facts_store_apply_all(const facts_store *base, facts_op op, facts_kind kind,
                                   const char *key, const json_t *record, facts_store **out,
                                   const facts_record **rec, facts_error *errs, size_t max,
                                   size_t *n);

/* -------------------------------------------------------------- journal */

/* An append-only file of changes, each durable before it is acknowledged.
 * Opaque; not thread-safe: callers serialise appends. */
typedef struct facts_journal facts_journal;

#define FACTS_JOURNAL_RECORD_MAX (1024 * 1024)              /* payload bytes */
#define FACTS_JOURNAL_MAX ((uint64_t)1024 * 1024 * 1024)   /* file bytes */

/* Called once per record while a journal is opened, in order, after every
 * frame has been verified. Returning anything but FACTS_OK (with err filled)
 * stops the open with that status. */
typedef facts_status (*facts_journal_fn)(void *ctx, uint64_t revision, const char *payload,
                                         size_t len, facts_error *err);

/* What an open found. */
typedef struct facts_journal_report {
    size_t records;          /* records replayed */
    uint64_t last_revision;  /* the last one's revision, 0 when none */
    uint64_t torn_offset;    /* where a torn tail was cut off, 0 when none */
    uint64_t torn_bytes;     /* how many bytes were cut */
    char torn_saved[4096];   /* the file they were saved to, "" when none */
} facts_journal_report;

/* Opens the journal at path, creating it (durably, with its folder entry)
 * when absent, and locks it against other processes. Every frame is checked
 * (length, CRC-32, consecutive revisions) before fn (may be NULL) sees any.
 * A damaged last part with no good record after it - a crash mid-append -
 * is saved to "<path>.torn-<offset>" and cut off (*report says so). Sets
 * *out on success; report (may be NULL) is always reset first. Failures:
 * FACTS_ECORRUPT (not a journal, or damage with good records after it: the
 * byte offset is in err->text), FACTS_EIO (cannot open, read or lock),
 * FACTS_ELIMIT (over FACTS_JOURNAL_MAX), FACTS_ENOMEM, or fn's status. The
 * journal file is left as it was except for a cut torn tail. */
facts_status facts_journal_open(const char *path, facts_journal_fn fn, void *ctx,
                                facts_journal **out, facts_journal_report *report,
                                facts_error *err);

/* Appends one record (payload borrowed, at most FACTS_JOURNAL_RECORD_MAX
 * bytes) and makes it durable with fdatasync before returning FACTS_OK.
 * revision must follow the last record's. On FACTS_ENOSPC (disk full, or the
 * file would grow past FACTS_JOURNAL_MAX: rule "journal-full", nothing is
 * written) the file is back at the last record and later appends may
 * succeed. On
 * FACTS_EIO (a write or sync failed) the journal refuses every later append
 * (facts_journal_failed) until reopened. FACTS_ELIMIT, FACTS_EARG, FACTS_ENOMEM
 * leave the file untouched. */
facts_status facts_journal_append(facts_journal *j, uint64_t revision, const char *payload,
                                  size_t len, facts_error *err);

/* Whether an append failed in a way that forbids further appends. */
bool facts_journal_failed(const facts_journal *j);

/* The last record's revision (0 for none since the file was started). */
uint64_t facts_journal_revision(const facts_journal *j);

/* Replaces the journal's file with an empty one (new file, fsync, rename,
 * fsync of the folder), keeping the revision count; used after the dataset
 * has been saved by facts_store_save. FACTS_EIO or FACTS_ENOSPC on failure:
 * before the rename the old file stays the journal; after it, the journal
 * is marked failed. */
facts_status facts_journal_reset(facts_journal *j, facts_error *err);

/* Closes the journal. NULL is a no-op. */
void facts_journal_close(facts_journal *j);

/* Writes the store's dataset (with its revision) to path atomically and
 * durably (temporary file, fsync, rename, fsync of the folder). Returns
 * FACTS_OK, or FACTS_ENOSPC / FACTS_EIO / FACTS_ENOMEM, or FACTS_ELIMIT for a
 * dataset too large to be loaded again, with the old file untouched. */
facts_status facts_store_save(const facts_store *store, const char *path, facts_error *err);

/* -------------------------------------------------------------- history */

/* A bounded, thread-safe record of the latest changes, oldest dropped
 * first: what a change feed serves. Opaque. */
typedef struct facts_history facts_history;

/* One change: an immutable, reference-counted entry. Opaque. */
typedef struct facts_history_entry facts_history_entry;

#define FACTS_HISTORY_MAX 1000000 /* entries a history may hold */

/* A new, empty history holding at most capacity (1..FACTS_HISTORY_MAX)
 * entries, whose first entry will be revision + 1. Returns NULL for a bad
 * capacity or when memory runs out. Free with facts_history_free. */
facts_history *facts_history_new(size_t capacity, uint64_t revision);

/* Frees h and drops its references to its entries (entries still held by
 * callers stay valid). NULL is a no-op. */
void facts_history_free(facts_history *h);

/* Appends the change that made revision (which must be after the latest;
 * revisions skipped were never published, as when a reload jumps ahead);
 * entry is a JSON object whose reference is taken in every case, rendered
 * compactly once here. Beyond the capacity the oldest entry is dropped.
 * FACTS_EARG (not an object, or out of sequence) or FACTS_ENOMEM leave h
 * unchanged. */
facts_status facts_history_append(facts_history *h, uint64_t revision, json_t *entry,
                                  facts_error *err);

/* Empties h and restarts it at revision (its next entry must come after
 * it): a client behind revision then gets FACTS_EGONE instead of missing
 * a change that could not be recorded. Never fails, allocates nothing. */
void facts_history_reset(facts_history *h, uint64_t revision);

/* The latest revision recorded (the starting revision when empty). */
uint64_t facts_history_latest(facts_history *h);

/* Copies into out[0..*n) new references to at most max entries with
 * revisions above since, oldest first; the caller drops each with
 * facts_history_entry_unref. Sets *latest to the latest revision and *oldest
 * to the revision just before the oldest entry held (a client at revision
 * *oldest or later misses nothing). Returns FACTS_OK (*n may be 0: nothing
 * newer), or FACTS_EGONE when since is older than *oldest (entries were
 * dropped) or newer than *latest (a revision this history never had); out
 * and *n are untouched then. Never blocks for long: one short lock. */
facts_status facts_history_since(facts_history *h, uint64_t since, size_t max,
                                 facts_history_entry **out, size_t *n, uint64_t *latest,
                                 uint64_t *oldest);

/* An entry's revision. */
uint64_t facts_history_entry_revision(const facts_history_entry *e);

/* An entry's JSON, borrowed: valid while the caller holds the entry. */
const json_t *facts_history_entry_json(const facts_history_entry *e);

/* An entry's compact JSON text and its length, borrowed likewise. */
const char *facts_history_entry_text(const facts_history_entry *e, size_t *len);

/* Drops a reference to an entry. NULL is a no-op. */
void facts_history_entry_unref(facts_history_entry *e);

#ifdef __cplusplus
}
#endif

#endif /* FACTS_H */
