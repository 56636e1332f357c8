/*
 * internal.h - the data core's private structures and helpers, shared by the
 * files of lib/ only. Nothing here is part of the public API.
 */
#ifndef FACTS_INTERNAL_H
#define FACTS_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>

#include "facts.h"

/* Hard caps on input (see docs/dataset-format.md). */
enum {
    FACTS_FILE_MAX = 16 * 1024 * 1024,
    FACTS_DEPTH_MAX = 32,
    FACTS_STRING_MAX = 64 * 1024,
    FACTS_PHRASE_MAX = 80,
    FACTS_SLUG_MAX = 64,
    FACTS_RECORDS_MAX = 10000,
    FACTS_ITEMS_MAX = 64,
    FACTS_PARAGRAPHS_MAX = 10000,
    FACTS_SORT_NAME_MAX = 128,
    FACTS_SORT_COUNT = 5
};

/* The largest revision a dataset may state (exact in a JSON double). */
#define FACTS_REVISION_MAX ((json_int_t)1 << 53)

/* A table of names for an enum-valued member; NULL-terminated. */
extern const char *const facts_actor_kinds[];
extern const char *const facts_estimate_kinds[];
extern const char *const facts_event_types[];
extern const char *const facts_event_statuses[];

/* The dataset's member holding each kind's records, in facts_kind order. */
extern const char *const facts_dataset_members[FACTS_KIND_COUNT];

/* Returns the index of name in the NULL-terminated table, or -1. */
int facts_table_find(const char *const *table, const char *name);

struct facts_record {
    facts_kind kind;
    char id[37];
    const char *slug;   /* borrowed from json */
    const char *name;   /* borrowed from json */
    json_t *json;       /* owned: the canonical representation */
    char *search;       /* owned: lower-cased text for text search */
    char *sort_name;    /* owned: lower-cased, truncated display name */
    bool has_date;
    facts_date_range date;
    int type;           /* event type index, else -1 */
    int status;         /* event status index, else -1 */
    int subkind;        /* actor or estimate kind index, else -1 */
    int64_t low, high;  /* estimates only */
    const facts_record **actors; /* owned array: actors the record involves */
    size_t n_actors;
};

typedef struct facts_index_entry {
    const char *key;
    const facts_record *rec;
} facts_index_entry;

struct facts_store {
    atomic_size_t refs;
    uint64_t revision;
    json_t *json;                                   /* owned: whole dataset */
    facts_record *records[FACTS_KIND_COUNT];        /* owned arrays */
    size_t count[FACTS_KIND_COUNT];
    facts_index_entry *index[FACTS_KIND_COUNT];     /* ids and slugs, sorted */
    size_t index_len[FACTS_KIND_COUNT];
    size_t *order[FACTS_KIND_COUNT][FACTS_SORT_COUNT]; /* sorted positions */
};

/* Fills err (if not NULL) completely. fmt is a printf format for the text. */
void facts_error_set(facts_error *err, facts_status status, const char *source,
                     int line, int column, const char *pointer, const char *rule,
                     const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;

/* Like facts_error_set with a va_list. */
void facts_error_setv(facts_error *err, facts_status status, const char *source,
                      int line, int column, const char *pointer, const char *rule,
                      const char *fmt, va_list ap);

/* Parses a partial date string strictly. On success returns true and sets
 * *granularity (FACTS_PRECISION_YEAR, _MONTH or _DAY) and the first and last
 * day covered. *calendar_ok tells whether the syntax was right but the day
 * did not exist (false) - in that case the function returns false too. */
bool facts_date_parse_partial(const char *s, facts_precision *granularity,
                              int32_t *first, int32_t *last, bool *calendar_ok);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
int32_t facts_days_from_civil(int y, int m, int d);

/* Compares two records in sort order (total: ties broken by slug). */
int facts_record_compare(const facts_record *a, const facts_record *b, facts_sort sort);

/* (Re)builds the store's id/slug lookup index from its records' ids and
 * slugs. Returns FACTS_OK or FACTS_ENOMEM (the store keeps what it had; all is
 * freed by facts_store_unref). */
facts_status facts_store_build_lookup(facts_store *store);

/* Builds the store's sorted orders; needs every record's sort_name. Returns
 * FACTS_OK or FACTS_ENOMEM (partial arrays are freed by facts_store_unref). */
facts_status facts_store_build_orders(facts_store *store);

/* Validates a parsed dataset document and builds a store from it, exactly as
 * facts_store_load_buffer does after parsing. Takes the caller's reference to
 * root in every case. name is used in error messages. */
facts_status facts_store_load_root(json_t *root, const char *name, facts_store **out,
                                   facts_error *err);

/* As facts_store_load_root, also collecting up to max problems into
 * list[0..*n) (list may be NULL: then only err is filled). A problem in one
 * member of a record does not stop the others from being checked; the
 * references are checked only when every record is well-formed. */
facts_status facts_store_load_root_all(json_t *root, const char *name, facts_store **out,
                                       facts_error *err, facts_error *list, size_t max,
                                       size_t *n);

/* CRC-32 (IEEE 802.3) of len bytes. Thread-safe; never fails. */
uint32_t facts_crc32(const void *data, size_t len);

/* Replaces the file at path with len bytes of data atomically and durably:
 * a temporary file in the same folder, fsync, rename, fsync of the folder.
 * Returns FACTS_OK, FACTS_ENOSPC or FACTS_EIO (err filled); on failure the
 * old file is untouched. */
facts_status facts_file_replace(const char *path, const char *data, size_t len,
                                facts_error *err);

/* Replaces every byte of s that is not part of a valid UTF-8 sequence with
 * '?', in place. Never fails. */
void facts_utf8_sanitize(char *s);

/* The number of characters in bytes bytes of valid UTF-8. */
size_t facts_utf8_length(const char *s, size_t bytes);

/* The dataset embedded at build time (generated by lib/tools/embed.c). */
extern const unsigned char facts_embedded_data[];
extern const size_t facts_embedded_data_len;

/* ASCII lower-case copy of s (at most max bytes of it). NULL on ENOMEM. */
char *facts_strdup_lower(const char *s, size_t max);

#endif /* FACTS_INTERNAL_H */
