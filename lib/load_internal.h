/*
 * load_internal.h - the loader's state and the member-walking helpers it
 * shares between lib/load*.c: load.c (the steps of a load), load_member.c
 * (problems, JSON pointers, member checks, references, locators, dates)
 * and one file per record kind (load_source.c, load_actor.c,
 * load_estimate.c, load_event.c). Nothing here is part of the public API.
 *
 * The helpers share one convention. ld->ptr is the JSON pointer of the
 * value being checked; a helper that looks at a member pushes its key and
 * pops it again on success, so that on failure ld->ptr names the offending
 * value. A check returns true when the value passes (an absent optional
 * member passes and leaves *out NULL, -1 or untouched, as each says), or
 * false after recording the problem (facts_load_fail): the first one in
 * ld->err, each in ld->list while there is room. Strings handed out are
 * borrowed from the document and live as long as it does.
 */
#ifndef FACTS_LOAD_INTERNAL_H
#define FACTS_LOAD_INTERNAL_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>

enum { FACTS_LOAD_PTR_MAX = 512 /* bytes of a JSON pointer; longer is cut */ };

/* A reference to another record, checked once every record is known. */
typedef struct facts_load_ref {
    char *pointer;      /* owned */
    const char *slug;   /* borrowed from the document */
    facts_kind kind;
    bool need_state;    /* the target must be an actor of kind "state" */
} facts_load_ref;

/* An evidence locator, checked against its source once every record is
 * known. */
typedef struct facts_load_loc {
    char *pointer;      /* owned: the locator object */
    const char *source; /* borrowed */
    json_int_t paragraph, sentence;
} facts_load_loc;

/* One load's state (load.c makes and frees it): all zero but err, name,
 * list and list_max. The loader's lists (references, locators) and
 * each record's involved actors grow with the input; they are bounded by
 * the caps on records per collection and items per array (and the 16 MiB
 * file cap), not separately. */
typedef struct facts_loader {
    facts_error *err;    /* the first problem (may be NULL) */
    const char *name;    /* the source named in problems */
    char ptr[FACTS_LOAD_PTR_MAX]; /* the current JSON pointer */
    size_t len;          /* its length */
    facts_load_ref *refs;
    size_t nrefs, caprefs;
    facts_load_loc *locs;
    size_t nlocs, caplocs;
    facts_status status; /* the status of the first failure */
    facts_error *list;   /* when not NULL: problems are collected here */
    size_t list_max;     /* room in list */
    size_t problems;     /* problems found so far */
} facts_loader;

/* Whether a failed check should let the load go on to find more problems:
 * only when collecting, and while there is room to report them. */
bool facts_load_collecting(const facts_loader *ld);

/* Appends "/" + seg (escaped as RFC 6901 says) to the current pointer,
 * cutting it when it would not fit. Returns the previous length, for
 * facts_load_ptr_pop. Never fails. */
size_t facts_load_ptr_push(facts_loader *ld, const char *seg);

/* As facts_load_ptr_push, with the array index i. */
size_t facts_load_ptr_push_index(facts_loader *ld, size_t i);

/* Cuts the current pointer back to old bytes. Never fails. */
void facts_load_ptr_pop(facts_loader *ld, size_t old);

/* Records a problem at the current pointer: status, the stable rule id
 * (static text) and a printf message. Returns false, for "return
 * facts_load_fail(...)". */
bool facts_load_fail(facts_loader *ld, facts_status status, const char *rule, const char *fmt,
                     ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* As facts_load_fail with FACTS_EINVALID, at pointer (copied) instead of
 * the current one. */
bool facts_load_fail_at(facts_loader *ld, const char *pointer, const char *rule,
                        const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Records running out of memory, which ends the load: nothing more is
 * collected. Returns false. */
bool facts_load_fail_oom(facts_loader *ld);

/* One independent check of a record's member: on failure the record stops
 * (the default: the enclosing function returns false), or - when the
 * loader collects problems - ok becomes false, the pointer is restored to
 * base and the next member is checked. */
#define FACTS_LOAD_STEP(ld, ok, base, expr)                                              \
    do {                                                                                 \
        if (!(expr)) {                                                                   \
            (ok) = false;                                                                \
            facts_load_ptr_pop((ld), (base));                                            \
            if (!facts_load_collecting(ld))                                              \
                return false;                                                            \
        }                                                                                \
    } while (0)

/* Checks that v (at the current pointer) is an object. */
bool facts_load_expect_object(facts_loader *ld, const json_t *v);

/* Checks that the object obj has only members named in allowed and every
 * member named in required (both NULL-terminated); when collecting, every
 * offending member is reported. */
bool facts_load_check_members(facts_loader *ld, const json_t *obj, const char *const *allowed,
                              const char *const *required);

/* Checks that v (at the current pointer) is a non-empty string of at most
 * max characters. */
bool facts_load_check_string(facts_loader *ld, const json_t *v, size_t max);

/* Gets obj[key] as a string as facts_load_check_string checks it; *out is
 * NULL when absent (required members are checked by
 * facts_load_check_members). */
bool facts_load_get_string(facts_loader *ld, const json_t *obj, const char *key, size_t max,
                           const char **out);

/* Checks that v (at the current pointer) is a slug: lower-case letters and
 * digits in hyphen-separated words, at most FACTS_SLUG_MAX characters, not
 * shaped like a UUID. */
bool facts_load_check_slug(facts_loader *ld, const json_t *v);

/* Gets obj[key] as a slug (facts_load_check_slug); *out is NULL when
 * absent. */
bool facts_load_get_slug(facts_loader *ld, const json_t *obj, const char *key, const char **out);

/* Gets obj[key] as one of the names in table (NULL-terminated); *out is
 * its index, or -1 when absent. */
bool facts_load_get_enum(facts_loader *ld, const json_t *obj, const char *key,
                         const char *const *table, int *out);

/* Gets obj[key] as an integer in min..max; *out is untouched when absent. */
bool facts_load_get_int(facts_loader *ld, const json_t *obj, const char *key, json_int_t min,
                        json_int_t max, json_int_t *out);

/* Gets obj[key] as an array of min..max items; *out is NULL when absent. */
bool facts_load_get_array(facts_loader *ld, const json_t *obj, const char *key, size_t min,
                          size_t max, const json_t **out);

/* Gets the reference obj[key], a slug of a record of kind (of an actor of
 * kind "state" when need_state), and records it for the reference check;
 * *out (out may be NULL) is the slug, or NULL when absent. */
bool facts_load_get_ref(facts_loader *ld, const json_t *obj, const char *key, facts_kind kind,
                        bool need_state, const char **out);

/* Gets the optional array obj[key] of unique slugs of records of kind and
 * records each for the reference check; self (may be NULL) must not
 * appear. */
bool facts_load_get_ref_list(facts_loader *ld, const json_t *obj, const char *key,
                             facts_kind kind, const char *self);

/* Checks the required member "evidence" of rec, a non-empty array of
 * locators (source, paragraph, sentence, phrase), and records each for the
 * locator check. */
bool facts_load_evidence(facts_loader *ld, const json_t *rec);

/* Loads the date range obj[key] (precision, from, to, phrase, basis,
 * note) into *out; *present tells whether the member was there (*out is
 * untouched when not). */
bool facts_load_date(facts_loader *ld, const json_t *obj, const char *key,
                     facts_date_range *out, bool *present);

/* Loads rec's optional "id" (a lower-case UUID) into r->id; r->id stays
 * as it is when absent. */
bool facts_load_id(facts_loader *ld, const json_t *rec, facts_record *r);

/* The record loaders, one per kind: each checks rec (an object, at the
 * current pointer) member by member as docs/dataset-format.md says and
 * fills r's fields from it (slug, name, date, kind indexes, range), with
 * FACTS_LOAD_STEP. References and locators are recorded for pass 2. */
bool facts_load_source(facts_loader *ld, const json_t *rec, facts_record *r);
bool facts_load_actor(facts_loader *ld, const json_t *rec, facts_record *r);
bool facts_load_estimate(facts_loader *ld, const json_t *rec, facts_record *r);
bool facts_load_event(facts_loader *ld, const json_t *rec, facts_record *r);

#endif /* FACTS_LOAD_INTERNAL_H */
