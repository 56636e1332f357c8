/*
 * load.c - the strict dataset loader.
 *
 * A load parses the whole document with Jansson (duplicate keys rejected),
 * checks every record against docs/dataset-format.md, resolves every
 * reference and locator, and only then builds a store. Any failure frees all
 * it made and reports the first problem with its position: line:column for
 * JSON syntax, a JSON pointer for everything else, and a stable rule id.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "internal.h"

/* The project namespace for record ids: id = UUIDv5(ns, "<kind>/<slug>"). */
static const uuid_t facts_namespace = {0x5f, 0xff, 0x88, 0x46, 0x3e, 0xb2, 0x49, 0x20,
                                       0x97, 0x03, 0x01, 0x5a, 0x44, 0xa3, 0x49, 0x55};

enum { PTR_MAX = 512 };

typedef struct ref_entry {
    char *pointer;      /* owned */
    const char *slug;   /* borrowed from the document */
    facts_kind kind;
    bool need_state;    /* the target must be an actor of kind "state" */
} ref_entry;

typedef struct loc_entry {
    char *pointer;      /* owned: the locator object */
    const char *source; /* borrowed */
    json_int_t paragraph, sentence;
} loc_entry;

/* The loader's lists (references, locators) and each record's involved
 * actors grow with the input; they are bounded by the caps on records per
 * collection and items per array (and the 16 MiB file cap), not separately. */
typedef struct loader {
    facts_error *err;
    const char *name;
    char ptr[PTR_MAX];
    size_t len;
    ref_entry *refs;
    size_t nrefs, caprefs;
    loc_entry *locs;
    size_t nlocs, caplocs;
    facts_status status; /* the status of the first failure */
    facts_error *list;   /* when not NULL: problems are collected here */
    size_t list_max;     /* room in list */
    size_t problems;     /* problems found so far */
} loader;

/* Whether a failed check should let the load go on to find more problems:
 * only when collecting, and while there is room to report them. */
static bool collecting(const loader *ld)
{
    return ld->list != NULL && ld->problems < ld->list_max;
}

/* Records one problem: the first goes to ld->err; each goes to the list while
 * there is room. */
static void record_problem(loader *ld, facts_status status, const char *pointer,
                           const char *rule, const char *fmt, va_list ap)
{
    va_list copy;
    if (ld->problems == 0) {
        va_copy(copy, ap);
        facts_error_setv(ld->err, status, ld->name, 0, 0, pointer, rule, fmt, copy);
        va_end(copy);
        ld->status = status;
    }
    if (ld->list && ld->problems < ld->list_max) {
        va_copy(copy, ap);
        facts_error_setv(&ld->list[ld->problems], status, ld->name, 0, 0, pointer, rule, fmt,
                         copy);
        va_end(copy);
    }
    ld->problems++;
}

/* ------------------------------------------------------------- pointers */

/* Appends "/" + escaped segment to the current pointer, truncating when it
 * would not fit. Returns the previous length, for ptr_pop. */
static size_t ptr_push(loader *ld, const char *seg)
{
    size_t old = ld->len;
    if (ld->len + 1 < PTR_MAX)
        ld->ptr[ld->len++] = '/';
    for (const char *s = seg; *s && ld->len + 2 < PTR_MAX; s++) {
        if (*s == '~' || *s == '/') {
            ld->ptr[ld->len++] = '~';
            ld->ptr[ld->len++] = *s == '~' ? '0' : '1';
        } else {
            ld->ptr[ld->len++] = *s;
        }
    }
    ld->ptr[ld->len] = '\0';
    return old;
}

static size_t ptr_push_index(loader *ld, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return ptr_push(ld, buf);
}

static void ptr_pop(loader *ld, size_t old)
{
    ld->len = old;
    ld->ptr[old] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static bool fail(loader *ld, facts_status status, const char *rule, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_problem(ld, status, ld->ptr, rule, fmt, ap);
    va_end(ap);
    return false;
}

/* Like fail, for a problem found at another pointer than the current one. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static bool fail_at(loader *ld, const char *pointer, const char *rule, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_problem(ld, FACTS_EINVALID, pointer, rule, fmt, ap);
    va_end(ap);
    return false;
}

static bool fail_oom(loader *ld)
{
    /* Running out of memory ends the load: nothing more is collected. */
    ld->list_max = 0;
    return fail(ld, FACTS_ENOMEM, "memory", "out of memory");
}

/* One independent check of a record's member: on failure the record stops
 * (the default), or - when the loader collects problems - the pointer is
 * restored and the next member is checked. */
#define STEP(ld, ok, base, expr)                                                         \
    do {                                                                                 \
        if (!(expr)) {                                                                   \
            (ok) = false;                                                                \
            ptr_pop((ld), (base));                                                       \
            if (!collecting(ld))                                                         \
                return false;                                                            \
        }                                                                                \
    } while (0)

/* ------------------------------------------------------- member checks */

static bool expect_object(loader *ld, const json_t *v)
{
    if (!json_is_object(v))
        return fail(ld, FACTS_EINVALID, "type", "expected an object");
    return true;
}

static bool check_members(loader *ld, const json_t *obj, const char *const *allowed,
                          const char *const *required)
{
    const char *key;
    json_t *val;
    bool ok = true;
    json_object_foreach((json_t *)obj, key, val) {
        if (facts_table_find(allowed, key) < 0) {
            size_t m = ptr_push(ld, key);
            ok = fail(ld, FACTS_EINVALID, "unknown-member", "unknown member \"%.64s\"", key);
            if (!collecting(ld))
                return false;
            ptr_pop(ld, m);
        }
    }
    for (size_t i = 0; required[i]; i++) {
        if (!json_object_get(obj, required[i])) {
            ok = fail(ld, FACTS_EINVALID, "required", "missing required member \"%s\"",
                      required[i]);
            if (!collecting(ld))
                return false;
        }
    }
    return ok;
}

/* Checks a string value at the current pointer. */
static bool check_string(loader *ld, const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return fail(ld, FACTS_EINVALID, "type", "expected a string");
    size_t bytes = json_string_length(v);
    if (bytes == 0)
        return fail(ld, FACTS_EINVALID, "empty", "must not be empty");
    if (bytes > max && facts_utf8_length(json_string_value(v), bytes) > max)
        return fail(ld, FACTS_EINVALID, "too-long", "longer than %zu characters", max);
    return true;
}

/* Gets obj[key] as a string (NULL when absent; presence of required members
 * is checked by check_members). */
static bool get_string(loader *ld, const json_t *obj, const char *key, size_t max,
                       const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    size_t m = ptr_push(ld, key);
    if (!check_string(ld, v, max))
        return false;
    ptr_pop(ld, m);
    *out = json_string_value(v);
    return true;
}

static bool is_uuid_text(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool is_slug_text(const char *s)
{
    bool need_alnum = true;
    for (; *s; s++) {
        bool alnum = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9');
        if (alnum) {
            need_alnum = false;
        } else if (*s == '-' && !need_alnum) {
            need_alnum = true;
        } else {
            return false;
        }
    }
    return !need_alnum;
}

static bool check_slug_value(loader *ld, const json_t *v)
{
    if (!check_string(ld, v, FACTS_SLUG_MAX))
        return false;
    const char *s = json_string_value(v);
    if (!is_slug_text(s))
        return fail(ld, FACTS_EINVALID, "format",
                    "\"%.64s\" is not a slug (lower-case letters and digits in "
                    "hyphen-separated words)", s);
    if (is_uuid_text(s))
        return fail(ld, FACTS_EINVALID, "format", "a slug must not have the form of a UUID");
    return true;
}

static bool get_slug(loader *ld, const json_t *obj, const char *key, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    size_t m = ptr_push(ld, key);
    if (!check_slug_value(ld, v))
        return false;
    ptr_pop(ld, m);
    *out = json_string_value(v);
    return true;
}

static bool get_enum(loader *ld, const json_t *obj, const char *key,
                     const char *const *table, int *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = -1;
    if (!v)
        return true;
    size_t m = ptr_push(ld, key);
    if (!check_string(ld, v, FACTS_STRING_MAX))
        return false;
    int i = facts_table_find(table, json_string_value(v));
    if (i < 0)
        return fail(ld, FACTS_EINVALID, "enum", "\"%.64s\" is not an allowed value",
                    json_string_value(v));
    ptr_pop(ld, m);
    *out = i;
    return true;
}

static bool get_int(loader *ld, const json_t *obj, const char *key, json_int_t min,
                    json_int_t max, json_int_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    size_t m = ptr_push(ld, key);
    if (!json_is_integer(v))
        return fail(ld, FACTS_EINVALID, "type", "expected an integer");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return fail(ld, FACTS_EINVALID, "range",
                    "%" JSON_INTEGER_FORMAT " is outside %" JSON_INTEGER_FORMAT
                    "..%" JSON_INTEGER_FORMAT, n, min, max);
    ptr_pop(ld, m);
    *out = n;
    return true;
}

/* Gets obj[key] as an array of min..max items (NULL when absent). */
static bool get_array(loader *ld, const json_t *obj, const char *key, size_t min,
                      size_t max, const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    size_t m = ptr_push(ld, key);
    if (!json_is_array(v))
        return fail(ld, FACTS_EINVALID, "type", "expected an array");
    size_t n = json_array_size(v);
    if (n < min)
        return fail(ld, FACTS_EINVALID, "empty", "needs at least %zu item%s", min,
                    min == 1 ? "" : "s");
    if (n > max)
        return fail(ld, FACTS_EINVALID, "too-long", "more than %zu items", max);
    ptr_pop(ld, m);
    *out = v;
    return true;
}

/* ----------------------------------------------- references and locators */

/* Records a reference found at the current pointer, checked once every
 * record is known. */
static bool add_ref(loader *ld, facts_kind kind, const char *slug, bool need_state)
{
    if (ld->nrefs == ld->caprefs) {
        size_t cap = ld->caprefs ? ld->caprefs * 2 : 64;
        ref_entry *n = realloc(ld->refs, cap * sizeof *n);
        if (!n)
            return fail_oom(ld);
        ld->refs = n;
        ld->caprefs = cap;
    }
    char *p = strdup(ld->ptr);
    if (!p)
        return fail_oom(ld);
    ld->refs[ld->nrefs++] = (ref_entry){p, slug, kind, need_state};
    return true;
}

/* A reference member obj[key] (slug) of kind. */
static bool get_ref(loader *ld, const json_t *obj, const char *key, facts_kind kind,
                    bool need_state, const char **out)
{
    const char *slug;
    if (!get_slug(ld, obj, key, &slug))
        return false;
    if (out)
        *out = slug;
    if (!slug)
        return true;
    size_t m = ptr_push(ld, key);
    bool ok = add_ref(ld, kind, slug, need_state);
    ptr_pop(ld, m);
    return ok;
}

/* An optional array of unique slugs referring to records of kind; self (may
 * be NULL) must not appear. */
static bool get_ref_list(loader *ld, const json_t *obj, const char *key, facts_kind kind,
                         const char *self)
{
    const json_t *arr;
    if (!get_array(ld, obj, key, 0, FACTS_ITEMS_MAX, &arr))
        return false;
    if (!arr)
        return true;
    size_t m = ptr_push(ld, key);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        size_t mi = ptr_push_index(ld, i);
        if (!check_slug_value(ld, v))
            return false;
        const char *s = json_string_value(v);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(arr, j)), s) == 0)
                return fail(ld, FACTS_EINVALID, "duplicate", "\"%.64s\" is listed twice", s);
        }
        if (self && strcmp(self, s) == 0)
            return fail(ld, FACTS_EINVALID, "self-reference", "a record cannot refer to itself");
        if (!add_ref(ld, kind, s, false))
            return false;
        ptr_pop(ld, mi);
    }
    ptr_pop(ld, m);
    return true;
}

static const char *const evidence_members[] = {"source", "paragraph", "sentence", "phrase", NULL};
static const char *const evidence_required[] = {"source", "paragraph", "sentence", NULL};

/* The required member "evidence" of rec: a non-empty array of locators. */
static bool load_evidence(loader *ld, const json_t *rec)
{
    const json_t *arr;
    if (!get_array(ld, rec, "evidence", 1, FACTS_ITEMS_MAX, &arr))
        return false;
    if (!arr)
        return true;
    size_t m = ptr_push(ld, "evidence");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *loc = json_array_get(arr, i);
        size_t mi = ptr_push_index(ld, i);
        const char *source, *phrase;
        json_int_t par = 0, sent = 0;
        if (!expect_object(ld, loc) || !check_members(ld, loc, evidence_members, evidence_required) ||
            !get_ref(ld, loc, "source", FACTS_KIND_SOURCE, false, &source) ||
            !get_int(ld, loc, "paragraph", 1, 100000, &par) ||
            !get_int(ld, loc, "sentence", 1, 100000, &sent) ||
            !get_string(ld, loc, "phrase", FACTS_PHRASE_MAX, &phrase))
            return false;
        if (ld->nlocs == ld->caplocs) {
            size_t cap = ld->caplocs ? ld->caplocs * 2 : 64;
            loc_entry *n = realloc(ld->locs, cap * sizeof *n);
            if (!n)
                return fail_oom(ld);
            ld->locs = n;
            ld->caplocs = cap;
        }
        char *p = strdup(ld->ptr);
        if (!p)
            return fail_oom(ld);
        ld->locs[ld->nlocs++] = (loc_entry){p, source, par, sent};
        ptr_pop(ld, mi);
    }
    ptr_pop(ld, m);
    return true;
}

/* ---------------------------------------------------------------- dates */

static const char *const date_members[] = {"precision", "from", "to", "phrase", "basis", "note", NULL};
static const char *const date_required[] = {"precision", "basis", NULL};
/* Index order matches facts_precision. */
static const char *const precisions[] = {"unknown", "year", "season", "month", "day", NULL};
static const char *const bases[] = {"stated", "context", "unknown", NULL};
enum { BASIS_STATED, BASIS_CONTEXT, BASIS_UNKNOWN };

/* Parses one end of a range at obj[key] for precision prec. */
static bool load_date_end(loader *ld, const json_t *obj, const char *key, facts_precision prec,
                          int32_t *first, int32_t *last, int *month_index)
{
    const char *s;
    if (!get_string(ld, obj, key, 16, &s))
        return false;
    size_t m = ptr_push(ld, key);
    facts_precision g;
    bool cal;
    if (!facts_date_parse_partial(s, &g, first, last, &cal)) {
        if (cal)
            return fail(ld, FACTS_EINVALID, "format",
                        "\"%s\" is not a partial date (YYYY, YYYY-MM or YYYY-MM-DD)", s);
        return fail(ld, FACTS_EINVALID, "date", "\"%s\" is not a real calendar date", s);
    }
    facts_precision want = prec == FACTS_PRECISION_SEASON ? FACTS_PRECISION_MONTH : prec;
    if (g != want)
        return fail(ld, FACTS_EINVALID, "date", "\"%s\" does not match precision \"%s\"", s,
                    precisions[prec]);
    int y = 0, mo = 0;
    for (int i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    if (g != FACTS_PRECISION_YEAR)
        mo = (s[5] - '0') * 10 + (s[6] - '0');
    *month_index = y * 12 + mo;
    ptr_pop(ld, m);
    return true;
}

/* Loads the date range obj[key] (absent: *present = false). */
static bool load_date(loader *ld, const json_t *obj, const char *key, facts_date_range *out,
                      bool *present)
{
    const json_t *d = json_object_get(obj, key);
    *present = d != NULL;
    if (!d)
        return true;
    size_t m = ptr_push(ld, key);
    int prec, basis;
    const char *phrase, *note;
    if (!expect_object(ld, d) || !check_members(ld, d, date_members, date_required) ||
        !get_enum(ld, d, "precision", precisions, &prec) ||
        !get_enum(ld, d, "basis", bases, &basis) ||
        !get_string(ld, d, "phrase", FACTS_PHRASE_MAX, &phrase) ||
        !get_string(ld, d, "note", FACTS_STRING_MAX, &note))
        return false;
    facts_date_range r = {(facts_precision)prec, 0, 0};
    if (prec == FACTS_PRECISION_UNKNOWN) {
        const char *const ends[] = {"from", "to"};
        for (int i = 0; i < 2; i++) {
            if (json_object_get(d, ends[i])) {
                ptr_push(ld, ends[i]);
                return fail(ld, FACTS_EINVALID, "date",
                            "an unknown date has no \"%s\"", ends[i]);
            }
        }
        if (basis != BASIS_UNKNOWN) {
            ptr_push(ld, "basis");
            return fail(ld, FACTS_EINVALID, "date", "an unknown date has basis \"unknown\"");
        }
    } else {
        if (basis == BASIS_UNKNOWN) {
            ptr_push(ld, "basis");
            return fail(ld, FACTS_EINVALID, "date",
                        "basis \"unknown\" goes with precision \"unknown\" only");
        }
        if (!json_object_get(d, "from") || !json_object_get(d, "to"))
            return fail(ld, FACTS_EINVALID, "required",
                        "a date of precision \"%s\" needs \"from\" and \"to\"", precisions[prec]);
        int32_t f1, f2, t1, t2;
        int fm, tm;
        if (!load_date_end(ld, d, "from", r.precision, &f1, &f2, &fm) ||
            !load_date_end(ld, d, "to", r.precision, &t1, &t2, &tm))
            return false;
        if (f1 > t1)
            return fail(ld, FACTS_EINVALID, "date-order", "\"from\" is after \"to\"");
        if (prec == FACTS_PRECISION_SEASON && tm - fm > 2)
            return fail(ld, FACTS_EINVALID, "date-order", "a season spans at most three months");
        r.first_day = f1;
        r.last_day = t2;
    }
    if (basis == BASIS_CONTEXT && !note)
        return fail(ld, FACTS_EINVALID, "context-note",
                    "a date resolved from context needs a \"note\" saying how");
    ptr_pop(ld, m);
    *out = r;
    return true;
}

/* -------------------------------------------------------------- records */

static bool load_id(loader *ld, const json_t *rec, facts_record *r)
{
    const json_t *v = json_object_get(rec, "id");
    if (!v)
        return true;
    size_t m = ptr_push(ld, "id");
    if (!check_string(ld, v, 36))
        return false;
    if (!is_uuid_text(json_string_value(v)))
        return fail(ld, FACTS_EINVALID, "format", "an id is a lower-case UUID");
    memcpy(r->id, json_string_value(v), 37);
    ptr_pop(ld, m);
    return true;
}

static const char *const source_members[] = {"id", "slug", "title", "publisher", "language",
                                             "published", "paragraphs", NULL};
static const char *const source_required[] = {"slug", "title", "publisher", "language",
                                              "published", "paragraphs", NULL};

static bool is_language_tag(const char *s)
{
    size_t n = 0;
    while (s[n] >= 'a' && s[n] <= 'z')
        n++;
    if (n < 2 || n > 3)
        return false;
    s += n;
    while (*s == '-') {
        s++;
        n = 0;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
               (s[n] >= '0' && s[n] <= '9'))
            n++;
        if (n < 2 || n > 8)
            return false;
        s += n;
    }
    return *s == '\0';
}

static bool load_source(loader *ld, const json_t *rec, facts_record *r)
{
    const char *lang = NULL, *publisher = NULL;
    const json_t *pars = NULL;
    bool present, ok = true;
    const size_t base = ld->len;
    STEP(ld, ok, base, check_members(ld, rec, source_members, source_required));
    STEP(ld, ok, base, load_id(ld, rec, r));
    STEP(ld, ok, base, get_slug(ld, rec, "slug", &r->slug));
    STEP(ld, ok, base, get_string(ld, rec, "title", FACTS_STRING_MAX, &r->name));
    STEP(ld, ok, base, get_string(ld, rec, "publisher", FACTS_STRING_MAX, &publisher));
    STEP(ld, ok, base, get_string(ld, rec, "language", FACTS_STRING_MAX, &lang));
    if (lang && !is_language_tag(lang)) {
        ptr_push(ld, "language");
        STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "format", "\"%s\" is not a language tag", lang));
    }
    STEP(ld, ok, base, load_date(ld, rec, "published", &r->date, &present));
    r->has_date = true;
    STEP(ld, ok, base, get_array(ld, rec, "paragraphs", 1, FACTS_PARAGRAPHS_MAX, &pars));
    ptr_push(ld, "paragraphs");
    for (size_t i = 0; pars && i < json_array_size(pars); i++) {
        ptr_push_index(ld, i);
        const json_t *v = json_array_get(pars, i);
        if (!json_is_integer(v))
            STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "type", "expected an integer"));
        else if (json_integer_value(v) < 1 || json_integer_value(v) > 100000)
            STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "range", "a sentence count is 1..100000"));
        ptr_pop(ld, base);
        ptr_push(ld, "paragraphs");
    }
    ptr_pop(ld, base);
    return ok;
}

static const char *const actor_members[] = {"id", "slug", "name", "kind", "country", "aliases",
                                            "description", "roles", "evidence", NULL};
static const char *const actor_required[] = {"slug", "name", "kind", "description",
                                             "evidence", NULL};
static const char *const role_members[] = {"title", "organization", "date", "evidence", NULL};
static const char *const role_required[] = {"title", "evidence", NULL};

/* One role of an actor (the pointer is at the role). */
static bool load_role(loader *ld, const json_t *role)
{
    const char *title;
    facts_date_range dr;
    bool present;
    return expect_object(ld, role) && check_members(ld, role, role_members, role_required) &&
           get_string(ld, role, "title", FACTS_STRING_MAX, &title) &&
           get_ref(ld, role, "organization", FACTS_KIND_ACTOR, false, NULL) &&
           load_date(ld, role, "date", &dr, &present) && load_evidence(ld, role);
}

/* The unique alias list of an actor. */
static bool load_aliases(loader *ld, const json_t *aliases)
{
    size_t m = ptr_push(ld, "aliases");
    for (size_t i = 0; i < json_array_size(aliases); i++) {
        size_t mi = ptr_push_index(ld, i);
        const json_t *v = json_array_get(aliases, i);
        if (!check_string(ld, v, FACTS_STRING_MAX))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (json_equal(json_array_get(aliases, j), (json_t *)v))
                return fail(ld, FACTS_EINVALID, "duplicate", "alias listed twice");
        }
        ptr_pop(ld, mi);
    }
    ptr_pop(ld, m);
    return true;
}

static bool load_actor(loader *ld, const json_t *rec, facts_record *r)
{
    const char *desc, *country;
    const json_t *aliases = NULL, *roles = NULL;
    bool ok = true;
    const size_t base = ld->len;
    STEP(ld, ok, base, check_members(ld, rec, actor_members, actor_required));
    STEP(ld, ok, base, load_id(ld, rec, r));
    STEP(ld, ok, base, get_slug(ld, rec, "slug", &r->slug));
    STEP(ld, ok, base, get_string(ld, rec, "name", FACTS_STRING_MAX, &r->name));
    STEP(ld, ok, base, get_enum(ld, rec, "kind", facts_actor_kinds, &r->subkind));
    if (json_object_get(rec, "country") &&
        r->subkind == facts_table_find(facts_actor_kinds, "state")) {
        ptr_push(ld, "country");
        STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "not-allowed", "a state has no \"country\""));
    } else {
        STEP(ld, ok, base, get_ref(ld, rec, "country", FACTS_KIND_ACTOR, true, &country));
    }
    STEP(ld, ok, base, get_array(ld, rec, "aliases", 0, FACTS_ITEMS_MAX, &aliases));
    if (aliases)
        STEP(ld, ok, base, load_aliases(ld, aliases));
    STEP(ld, ok, base, get_string(ld, rec, "description", FACTS_STRING_MAX, &desc));
    STEP(ld, ok, base, get_array(ld, rec, "roles", 0, FACTS_ITEMS_MAX, &roles));
    for (size_t i = 0; roles && i < json_array_size(roles); i++) {
        ptr_push(ld, "roles");
        ptr_push_index(ld, i);
        STEP(ld, ok, base, load_role(ld, json_array_get(roles, i)));
        ptr_pop(ld, base);
    }
    STEP(ld, ok, base, load_evidence(ld, rec));
    return ok;
}

static const char *const estimate_members[] = {
    "id", "slug", "sender", "receiver", "low", "high", "unit", "kind", "period",
    "reported_by", "certainty", "hedge", "description", "evidence", NULL};
static const char *const estimate_required[] = {
    "slug", "sender", "receiver", "low", "high", "unit", "kind", "period", "certainty",
    "description", "evidence", NULL};
static const char *const units[] = {"troops", NULL};
static const char *const certainties[] = {"confirmed", "reported", "estimated", "possible", NULL};

static bool load_estimate(loader *ld, const json_t *rec, facts_record *r)
{
    const char *sender = NULL, *receiver = NULL, *hedge, *desc;
    json_int_t low = -1, high = -1;
    int unit, certainty;
    bool present, ok = true;
    const size_t base = ld->len;
    STEP(ld, ok, base, check_members(ld, rec, estimate_members, estimate_required));
    STEP(ld, ok, base, load_id(ld, rec, r));
    STEP(ld, ok, base, get_slug(ld, rec, "slug", &r->slug));
    STEP(ld, ok, base, get_ref(ld, rec, "sender", FACTS_KIND_ACTOR, false, &sender));
    STEP(ld, ok, base, get_ref(ld, rec, "receiver", FACTS_KIND_ACTOR, false, &receiver));
    if (sender && receiver && strcmp(sender, receiver) == 0) {
        ptr_push(ld, "receiver");
        STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "self-reference",
                                "sender and receiver are the same actor"));
    }
    bool low_ok = true, high_ok = true;
    STEP(ld, low_ok, base, get_int(ld, rec, "low", 0, 10000000, &low));
    STEP(ld, high_ok, base, get_int(ld, rec, "high", 0, 10000000, &high));
    ok = ok && low_ok && high_ok;
    if (low_ok && high_ok && low > high)
        STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "low-high",
                                "low (%" JSON_INTEGER_FORMAT ") is above high (%"
                                JSON_INTEGER_FORMAT ")", low, high));
    STEP(ld, ok, base, get_enum(ld, rec, "unit", units, &unit));
    STEP(ld, ok, base, get_enum(ld, rec, "kind", facts_estimate_kinds, &r->subkind));
    STEP(ld, ok, base, load_date(ld, rec, "period", &r->date, &present));
    STEP(ld, ok, base, get_ref_list(ld, rec, "reported_by", FACTS_KIND_ACTOR, NULL));
    STEP(ld, ok, base, get_enum(ld, rec, "certainty", certainties, &certainty));
    STEP(ld, ok, base, get_string(ld, rec, "hedge", FACTS_PHRASE_MAX, &hedge));
    STEP(ld, ok, base, get_string(ld, rec, "description", FACTS_STRING_MAX, &desc));
    STEP(ld, ok, base, load_evidence(ld, rec));
    if (!ok)
        return false;
    r->has_date = true;
    r->low = low;
    r->high = high;
    r->name = r->slug;
    return true;
}

static const char *const event_members[] = {
    "id", "slug", "title", "type", "status", "date", "location", "participants", "summary",
    "hedge", "related_events", "related_estimates", "cameo", "acled", "evidence", NULL};
static const char *const event_required[] = {"slug", "title", "type", "status", "date",
                                             "participants", "summary", "evidence", NULL};
static const char *const location_members[] = {"name", "country", NULL};
static const char *const location_required[] = {"name", NULL};
static const char *const participant_members[] = {"actor", "role", NULL};
static const char *const participant_required[] = {"actor", "role", NULL};
static const char *const roles[] = {
    "visitor", "host", "signatory", "overseer", "accuser", "accused", "reporter", "sender",
    "receiver", "mediator", "party", "observer", "subject", "inviter", "invitee", "appointee",
    "organizer", "speaker", "target", NULL};
static const char *const acled_types[] = {
    "Battles", "Explosions/Remote violence", "Violence against civilians", "Protests",
    "Riots", "Strategic developments", NULL};

/* An event's location (the pointer is at the event). */
static bool load_location(loader *ld, const json_t *loc)
{
    const char *name;
    ptr_push(ld, "location");
    return expect_object(ld, loc) &&
           check_members(ld, loc, location_members, location_required) &&
           get_string(ld, loc, "name", FACTS_STRING_MAX, &name) &&
           get_ref(ld, loc, "country", FACTS_KIND_ACTOR, true, NULL);
}

/* Participant i of parts (the pointer is at the participant). */
static bool load_participant(loader *ld, const json_t *parts, size_t i)
{
    const json_t *p = json_array_get(parts, i);
    int role;
    if (!expect_object(ld, p) ||
        !check_members(ld, p, participant_members, participant_required) ||
        !get_ref(ld, p, "actor", FACTS_KIND_ACTOR, false, NULL) ||
        !get_enum(ld, p, "role", roles, &role))
        return false;
    for (size_t j = 0; j < i; j++) {
        if (json_equal(json_array_get(parts, j), (json_t *)p))
            return fail(ld, FACTS_EINVALID, "duplicate",
                        "the same actor is listed twice in the same role");
    }
    return true;
}

static bool is_cameo(const char *s)
{
    size_t n = strlen(s);
    bool ok = n >= 2 && n <= 4;
    for (size_t i = 0; i < n; i++)
        ok = ok && s[i] >= '0' && s[i] <= '9';
    return ok;
}

static bool load_event(loader *ld, const json_t *rec, facts_record *r)
{
    const char *summary, *hedge, *cameo = NULL;
    const json_t *parts = NULL;
    int acled;
    bool present, ok = true;
    const size_t base = ld->len;
    STEP(ld, ok, base, check_members(ld, rec, event_members, event_required));
    STEP(ld, ok, base, load_id(ld, rec, r));
    STEP(ld, ok, base, get_slug(ld, rec, "slug", &r->slug));
    STEP(ld, ok, base, get_string(ld, rec, "title", FACTS_STRING_MAX, &r->name));
    STEP(ld, ok, base, get_enum(ld, rec, "type", facts_event_types, &r->type));
    STEP(ld, ok, base, get_enum(ld, rec, "status", facts_event_statuses, &r->status));
    STEP(ld, ok, base, load_date(ld, rec, "date", &r->date, &present));
    r->has_date = true;
    const json_t *loc = json_object_get(rec, "location");
    if (loc)
        STEP(ld, ok, base, load_location(ld, loc));
    ptr_pop(ld, base);
    STEP(ld, ok, base, get_array(ld, rec, "participants", 1, FACTS_ITEMS_MAX, &parts));
    for (size_t i = 0; parts && i < json_array_size(parts); i++) {
        ptr_push(ld, "participants");
        ptr_push_index(ld, i);
        STEP(ld, ok, base, load_participant(ld, parts, i));
        ptr_pop(ld, base);
    }
    STEP(ld, ok, base, get_string(ld, rec, "summary", FACTS_STRING_MAX, &summary));
    STEP(ld, ok, base, get_string(ld, rec, "hedge", FACTS_PHRASE_MAX, &hedge));
    STEP(ld, ok, base, get_ref_list(ld, rec, "related_events", FACTS_KIND_EVENT, r->slug));
    STEP(ld, ok, base, get_ref_list(ld, rec, "related_estimates", FACTS_KIND_ESTIMATE, NULL));
    STEP(ld, ok, base, get_string(ld, rec, "cameo", 4, &cameo));
    if (cameo && !is_cameo(cameo)) {
        ptr_push(ld, "cameo");
        STEP(ld, ok, base, fail(ld, FACTS_EINVALID, "format", "a CAMEO code is 2 to 4 digits"));
    }
    STEP(ld, ok, base, get_enum(ld, rec, "acled", acled_types, &acled));
    STEP(ld, ok, base, load_evidence(ld, rec));
    return ok;
}

typedef bool (*record_loader)(loader *, const json_t *, facts_record *);

static const char *const top_members[] = {"format", "revision", "sources", "actors",
                                          "events", "troop_estimates", NULL};
static const char *const top_required[] = {"format", "sources", "actors", "events",
                                           "troop_estimates", NULL};
static const record_loader kind_loaders[FACTS_KIND_COUNT] = {load_source, load_actor,
                                                             load_event, load_estimate};

/* ------------------------------------------------------------ the steps */

/* Decodes the JSON string whose body starts at text[*i] (after the opening
 * quote) into out (at most size - 1 bytes, cut at a character boundary),
 * leaving *i on the closing quote. Escapes are decoded; \\uXXXX becomes
 * UTF-8 (a lone surrogate becomes U+FFFD). */
static void json_key_decode(const char *text, size_t len, size_t *i, char *out, size_t size)
{
    size_t o = 0;
    while (*i < len && text[*i] != '"') {
        unsigned char buf[4];
        size_t n = 1;
        char c = text[(*i)++];
        buf[0] = (unsigned char)c;
        if (c == '\\' && *i < len) {
            char e = text[(*i)++];
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *m = strchr(from, e);
            if (e == 'u') {
                unsigned long cp = 0;
                for (int k = 0; k < 4 && *i < len; k++, (*i)++) {
                    char h = text[*i];
                    cp = cp * 16 + (unsigned long)(h >= '0' && h <= '9' ? h - '0'
                                                   : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                   : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                }
                if (cp >= 0xd800 && cp <= 0xdbff && *i + 6 <= len && text[*i] == '\\' &&
                    text[*i + 1] == 'u') {
                    unsigned long lo = 0;
                    for (int k = 2; k < 6; k++) {
                        char h = text[*i + (size_t)k];
                        lo = lo * 16 + (unsigned long)(h >= '0' && h <= '9' ? h - '0'
                                                       : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                       : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                    }
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        *i += 6;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffd;
                if (cp < 0x80) {
                    buf[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (unsigned char)(0xc0 | (cp >> 6));
                    buf[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 2;
                } else if (cp < 0x10000) {
                    buf[0] = (unsigned char)(0xe0 | (cp >> 12));
                    buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 3;
                } else {
                    buf[0] = (unsigned char)(0xf0 | (cp >> 18));
                    buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                    buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[3] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 4;
                }
            } else {
                buf[0] = (unsigned char)(m ? to[m - from] : e);
            }
        }
        if (o + n < size) {
            memcpy(out + o, buf, n);
            o += n;
        }
    }
    out[o] = '\0';
}

/* Computes the JSON pointer of the object or array that encloses byte offset
 * pos of the text (used for Jansson's duplicate-key error, which reports only
 * a position). Writes "" when pos is at the top level. Returns false when the
 * nesting there is deeper than the cap. */
static bool pointer_at(const char *text, size_t len, size_t pos, char *out, size_t outsize)
{
    struct frame {
        bool object;
        bool expect_key;
        size_t index;
        char key[PTR_MAX];
    };
    struct frame *stack = malloc((FACTS_DEPTH_MAX + 1) * sizeof *stack);
    int top = -1, depth = 0;
    out[0] = '\0';
    if (!stack)
        return true; /* the pointer is a courtesy: "" rather than nothing */
    if (pos > len)
        pos = len;
    for (size_t i = 0; i < pos; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            depth++;
            if (depth > FACTS_DEPTH_MAX + 1)
                continue;
            top++;
            stack[top].object = c == '{';
            stack[top].expect_key = true;
            stack[top].index = 0;
            stack[top].key[0] = '\0';
        } else if (c == '}' || c == ']') {
            if (depth-- <= FACTS_DEPTH_MAX + 1 && top >= 0)
                top--;
        } else if (c == ',' && top >= 0 && depth <= FACTS_DEPTH_MAX + 1) {
            if (stack[top].object)
                stack[top].expect_key = true;
            else
                stack[top].index++;
        } else if (c == '"') {
            i++;
            if (top >= 0 && depth <= FACTS_DEPTH_MAX + 1 && stack[top].object &&
                stack[top].expect_key) {
                json_key_decode(text, len, &i, stack[top].key, sizeof stack[top].key);
                stack[top].expect_key = false;
            } else {
                char skip[8];
                json_key_decode(text, len, &i, skip, sizeof skip);
            }
        }
    }
    if (depth > FACTS_DEPTH_MAX) {
        free(stack);
        return false;
    }
    /* Build the pointer with the same escaping as the loader's. */
    loader tmp = {0};
    for (int f = 0; f < top; f++) {
        if (stack[f].object)
            ptr_push(&tmp, stack[f].key);
        else
            ptr_push_index(&tmp, stack[f].index);
    }
    free(stack);
    size_t n = tmp.len < outsize ? tmp.len : outsize - 1;
    memcpy(out, tmp.ptr, n);
    out[n] = '\0';
    return true;
}

static bool depth_ok(const json_t *v, int depth)
{
    if (depth > FACTS_DEPTH_MAX)
        return false;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            if (!depth_ok(c, depth + 1))
                return false;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!depth_ok(json_array_get(v, i), depth + 1))
                return false;
        }
    }
    return true;
}

/* Jansson 2.14 ignores a failed allocation while it grows a string during
 * parsing and goes on with the character dropped. The core wraps Jansson's
 * allocator once so that a parse during which any allocation failed is
 * thrown away instead of loaded with altered text. */
static json_malloc_t jansson_malloc;
static _Thread_local bool parse_alloc_failed;
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void *tracking_malloc(size_t n)
{
    void *p = jansson_malloc(n);
    if (!p)
        parse_alloc_failed = true;
    return p;
}

static void install_tracking_malloc(void)
{
    json_free_t jansson_free;
    json_get_alloc_funcs(&jansson_malloc, &jansson_free);
    json_set_alloc_funcs(tracking_malloc, jansson_free);
}

static facts_status parse_document(const char *data, size_t len, const char *name,
                                   json_t **root, facts_error *err)
{
    if (len > FACTS_FILE_MAX) {
        facts_error_set(err, FACTS_ELIMIT, name, 0, 0, "", "limit",
                        "the dataset is larger than %d bytes", FACTS_FILE_MAX);
        return FACTS_ELIMIT;
    }
    json_error_t je;
    pthread_once(&alloc_once, install_tracking_malloc);
    parse_alloc_failed = false;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (parse_alloc_failed) {
        json_decref(doc);
        facts_error_set(err, FACTS_ENOMEM, name, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    if (!doc) {
        enum json_error_code code = json_error_code(&je);
        if (code == json_error_out_of_memory) {
            facts_error_set(err, FACTS_ENOMEM, name, 0, 0, "", "memory", "out of memory");
            return FACTS_ENOMEM;
        }
        if (code == json_error_duplicate_key) {
            char ptr[PTR_MAX];
            if (!pointer_at(data, len, (size_t)je.position, ptr, sizeof ptr)) {
                facts_error_set(err, FACTS_ELIMIT, name, je.line, je.column, "", "limit",
                                "nesting is deeper than %d levels", FACTS_DEPTH_MAX);
                return FACTS_ELIMIT;
            }
            facts_error_set(err, FACTS_EINVALID, name, je.line, je.column, ptr,
                            "duplicate-key", "%s", je.text);
            return FACTS_EINVALID;
        }
        facts_error_set(err, FACTS_ESYNTAX, name, je.line, je.column, "", "syntax", "%s",
                        je.text);
        return FACTS_ESYNTAX;
    }
    *root = doc;
    return FACTS_OK;
}

/* The structure of every record (pass 1). */
static bool check_records(loader *ld, const json_t *root, facts_store *st)
{
    if (!expect_object(ld, root) || !check_members(ld, root, top_members, top_required))
        return false;
    size_t m = ptr_push(ld, "format");
    const json_t *fmt = json_object_get(root, "format");
    if (!json_is_string(fmt))
        return fail(ld, FACTS_EINVALID, "type", "expected a string");
    if (strcmp(json_string_value(fmt), FACTS_DATASET_FORMAT) != 0)
        return fail(ld, FACTS_EINVALID, "enum", "the format must be \"%s\"",
                    FACTS_DATASET_FORMAT);
    ptr_pop(ld, m);
    json_int_t revision = 1;
    if (!get_int(ld, root, "revision", 1, FACTS_REVISION_MAX, &revision))
        return false;
    st->revision = (uint64_t)revision;
    bool ok = true;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        const json_t *arr = json_object_get(root, facts_dataset_members[k]);
        m = ptr_push(ld, facts_dataset_members[k]);
        if (!json_is_array(arr))
            return fail(ld, FACTS_EINVALID, "type", "expected an array");
        size_t n = json_array_size(arr);
        if (k == FACTS_KIND_SOURCE && n == 0)
            return fail(ld, FACTS_EINVALID, "empty", "a dataset needs at least one source");
        if (n > FACTS_RECORDS_MAX)
            return fail(ld, FACTS_ELIMIT, "limit", "more than %d records", FACTS_RECORDS_MAX);
        st->records[k] = calloc(n ? n : 1, sizeof(facts_record));
        if (!st->records[k])
            return fail_oom(ld);
        st->count[k] = n;
        for (size_t i = 0; i < n; i++) {
            facts_record *r = &st->records[k][i];
            r->kind = (facts_kind)k;
            r->type = r->status = r->subkind = -1;
            size_t mi = ptr_push_index(ld, i);
            const json_t *rec = json_array_get(arr, i);
            if (!expect_object(ld, rec) || !kind_loaders[k](ld, rec, r)) {
                if (!collecting(ld))
                    return false;
                ok = false;
            }
            ptr_pop(ld, mi);
        }
        ptr_pop(ld, m);
    }
    return ok;
}

typedef struct key_pos {
    const char *key;
    int kind;
    size_t pos;
} key_pos;

static int key_pos_cmp(const void *a, const void *b)
{
    const key_pos *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Reports the first (in document order) record whose key repeats an earlier
 * one's. by_kind: keys are unique per kind (slugs) or across kinds (ids). */
static bool check_unique(loader *ld, facts_store *st, bool ids)
{
    size_t total = 0;
    for (int k = 0; k < FACTS_KIND_COUNT; k++)
        total += st->count[k];
    key_pos *keys = malloc((total ? total : 1) * sizeof *keys);
    if (!keys)
        return fail_oom(ld);
    size_t n = 0, base = 0;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        for (size_t i = 0; i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            keys[n++] = (key_pos){ids ? r->id : r->slug, ids ? 0 : k, base + i};
        }
        base += st->count[k];
    }
    qsort(keys, n, sizeof *keys, key_pos_cmp);
    size_t worst = SIZE_MAX;
    for (size_t i = 1; i < n; i++) {
        if (keys[i].kind == keys[i - 1].kind && strcmp(keys[i].key, keys[i - 1].key) == 0 &&
            keys[i].pos < worst)
            worst = keys[i].pos;
    }
    free(keys);
    if (worst == SIZE_MAX)
        return true;
    int k = 0;
    while (worst >= st->count[k]) {
        worst -= st->count[k];
        k++;
    }
    const facts_record *r = &st->records[k][worst];
    ptr_push(ld, facts_dataset_members[k]);
    ptr_push_index(ld, worst);
    if (ids) {
        bool given = json_object_get(json_array_get(json_object_get(st->json, facts_dataset_members[k]), worst),
                                     "id") != NULL;
        ptr_push(ld, given ? "id" : "slug");
        return fail(ld, FACTS_EINVALID, "duplicate-id", "id %s is used twice", r->id);
    }
    ptr_push(ld, "slug");
    return fail(ld, FACTS_EINVALID, "duplicate-slug", "slug \"%.64s\" is used twice in %s",
                r->slug, facts_dataset_members[k]);
}

/* The references and locators collected by pass 1 (pass 2). */
static bool check_references(loader *ld, facts_store *st)
{
    int state = facts_table_find(facts_actor_kinds, "state");
    bool ok = true;
    for (size_t i = 0; i < ld->nrefs; i++) {
        const ref_entry *e = &ld->refs[i];
        const facts_record *t = facts_store_find(st, e->kind, e->slug);
        if (!t || strcmp(t->slug, e->slug) != 0)
            ok = fail_at(ld, e->pointer, "reference", "no %s has the slug \"%.64s\"",
                         facts_kind_name(e->kind), e->slug);
        else if (e->need_state && t->subkind != state)
            ok = fail_at(ld, e->pointer, "reference-kind", "\"%.64s\" is not a state", e->slug);
        else
            continue;
        if (!collecting(ld))
            return false;
    }
    for (size_t i = 0; i < ld->nlocs; i++) {
        const loc_entry *e = &ld->locs[i];
        const facts_record *src = facts_store_find(st, FACTS_KIND_SOURCE, e->source);
        if (!src || strcmp(src->slug, e->source) != 0)
            continue; /* reported above as a reference */
        /* Canonical JSON is not built yet: read the parsed document. */
        size_t si = (size_t)(src - st->records[FACTS_KIND_SOURCE]);
        const json_t *pars = json_object_get(
            json_array_get(json_object_get(st->json, "sources"), si), "paragraphs");
        char ptr[PTR_MAX];
        json_int_t sentences = 0;
        if ((size_t)e->paragraph > json_array_size(pars)) {
            snprintf(ptr, sizeof ptr, "%s/paragraph", e->pointer);
            ok = fail_at(ld, ptr, "locator", "source \"%.64s\" has %zu paragraphs", e->source,
                         json_array_size(pars));
        } else if (e->sentence >
                   (sentences = json_integer_value(json_array_get(pars, (size_t)e->paragraph - 1)))) {
            snprintf(ptr, sizeof ptr, "%s/sentence", e->pointer);
            ok = fail_at(ld, ptr, "locator",
                         "paragraph %" JSON_INTEGER_FORMAT " has %" JSON_INTEGER_FORMAT
                         " sentences", e->paragraph, sentences);
        } else {
            continue;
        }
        if (!collecting(ld))
            return false;
    }
    return ok;
}

/* Appends s, lower-cased, plus a separator to the growing buffer. */
static bool blob_add(char **buf, size_t *len, const char *s)
{
    if (!s)
        return true;
    size_t n = strlen(s);
    char *nb = realloc(*buf, *len + n + 2);
    if (!nb)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        nb[*len + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    *len += n;
    nb[(*len)++] = '\n';
    nb[*len] = '\0';
    *buf = nb;
    return true;
}

static const char *member_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Adds actor (found by slug) to r's involved actors, once. */
static bool involve(facts_store *st, facts_record *r, const char *slug)
{
    const facts_record *a = facts_store_find(st, FACTS_KIND_ACTOR, slug);
    for (size_t i = 0; i < r->n_actors; i++) {
        if (r->actors[i] == a)
            return true;
    }
    const facts_record **n = realloc(r->actors, (r->n_actors + 1) * sizeof *n);
    if (!n)
        return false;
    n[r->n_actors++] = a;
    r->actors = n;
    return true;
}

/* Builds each record's id, canonical JSON, search text and involvement
 * (pass 3: cannot fail except for memory). */
static bool build_records(facts_store *st)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        const json_t *arr = json_object_get(st->json, facts_dataset_members[k]);
        for (size_t i = 0; i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            const json_t *src = json_array_get(arr, i);
            json_t *canon = json_object();
            if (!canon || json_object_set_new(canon, "id", json_string(r->id)) != 0) {
                json_decref(canon);
                return false;
            }
            const char *key;
            json_t *val;
            json_object_foreach((json_t *)src, key, val) {
                if (strcmp(key, "id") != 0 && json_object_set(canon, key, val) != 0) {
                    json_decref(canon);
                    return false;
                }
            }
            r->json = canon;
            char *blob = NULL;
            size_t len = 0;
            bool ok = blob_add(&blob, &len, r->slug) && blob_add(&blob, &len, r->name);
            const json_t *aliases = json_object_get(src, "aliases");
            for (size_t j = 0; ok && j < json_array_size(aliases); j++)
                ok = blob_add(&blob, &len, json_string_value(json_array_get(aliases, j)));
            ok = ok && blob_add(&blob, &len, member_str(src, "description")) &&
                 blob_add(&blob, &len, member_str(src, "summary")) &&
                 blob_add(&blob, &len, member_str(src, "publisher")) &&
                 blob_add(&blob, &len, member_str(json_object_get(src, "location"), "name"));
            r->search = blob;
            r->sort_name = facts_strdup_lower(r->name, FACTS_SORT_NAME_MAX);
            if (!ok || !r->sort_name)
                return false;
        }
    }
    /* Involvement needs every actor's lookup entry, built by the caller. */
    return true;
}

static bool build_involvement(facts_store *st)
{
    for (int k = FACTS_KIND_EVENT; k <= FACTS_KIND_ESTIMATE; k++) {
        for (size_t i = 0; i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            const json_t *j = r->json;
            if (k == FACTS_KIND_EVENT) {
                const json_t *parts = json_object_get(j, "participants");
                for (size_t p = 0; p < json_array_size(parts); p++) {
                    if (!involve(st, r, member_str(json_array_get(parts, p), "actor")))
                        return false;
                }
            } else {
                if (!involve(st, r, member_str(j, "sender")) ||
                    !involve(st, r, member_str(j, "receiver")))
                    return false;
                const json_t *by = json_object_get(j, "reported_by");
                for (size_t p = 0; p < json_array_size(by); p++) {
                    if (!involve(st, r, json_string_value(json_array_get(by, p))))
                        return false;
                }
            }
        }
    }
    return true;
}

/* The whole dataset in canonical form (records with ids). */
static json_t *build_dataset_json(const facts_store *st)
{
    json_t *doc = json_object();
    if (!doc || json_object_set_new(doc, "format", json_string(FACTS_DATASET_FORMAT)) != 0 ||
        json_object_set_new(doc, "revision", json_integer((json_int_t)st->revision)) != 0)
        goto fail;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        json_t *arr = json_array();
        if (json_object_set_new(doc, facts_dataset_members[k], arr) != 0)
            goto fail;
        for (size_t i = 0; i < st->count[k]; i++) {
            if (json_array_append(arr, st->records[k][i].json) != 0)
                goto fail;
        }
    }
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

static void loader_free(loader *ld)
{
    for (size_t i = 0; i < ld->nrefs; i++)
        free(ld->refs[i].pointer);
    for (size_t i = 0; i < ld->nlocs; i++)
        free(ld->locs[i].pointer);
    free(ld->refs);
    free(ld->locs);
}

facts_status facts_store_load_buffer(const char *data, size_t len, const char *name,
                                     facts_store **out, facts_error *err)
{
    if (!name)
        name = "<input>";
    json_t *root = NULL;
    facts_status s = parse_document(data, len, name, &root, err);
    if (s != FACTS_OK)
        return s;
    return facts_store_load_root(root, name, out, err);
}

facts_status facts_store_load_root(json_t *root, const char *name, facts_store **out,
                                   facts_error *err)
{
    return facts_store_load_root_all(root, name, out, err, NULL, 0, NULL);
}

facts_status facts_store_load_root_all(json_t *root, const char *name, facts_store **out,
                                       facts_error *err, facts_error *list, size_t max,
                                       size_t *n)
{
    if (n)
        *n = 0;
    if (!depth_ok(root, 1)) {
        json_decref(root);
        facts_error_set(err, FACTS_ELIMIT, name, 0, 0, "", "limit",
                        "nesting is deeper than %d levels", FACTS_DEPTH_MAX);
        return FACTS_ELIMIT;
    }
    facts_store *st = calloc(1, sizeof *st);
    if (!st) {
        json_decref(root);
        facts_error_set(err, FACTS_ENOMEM, name, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    atomic_init(&st->refs, 1);
    st->json = root; /* the parsed document until the canonical one replaces it */
    loader ld = {.err = err, .name = name, .list = list, .list_max = list ? max : 0};
    bool ok = check_records(&ld, root, st);
    if (ok) {
        /* Derived ids, so that uniqueness covers them too. */
        for (int k = 0; k < FACTS_KIND_COUNT; k++) {
            for (size_t i = 0; i < st->count[k]; i++) {
                facts_record *r = &st->records[k][i];
                if (r->id[0] == '\0') {
                    char name_buf[128];
                    int len = snprintf(name_buf, sizeof name_buf, "%s/%s",
                                       facts_kind_name(r->kind), r->slug);
                    uuid_t u;
                    uuid_generate_sha1(u, facts_namespace, name_buf, (size_t)len);
                    uuid_unparse_lower(u, r->id);
                }
            }
        }
        ok = check_unique(&ld, st, false) && check_unique(&ld, st, true);
    }
    if (ok && facts_store_build_lookup(st) != FACTS_OK)
        ok = fail_oom(&ld);
    ok = ok && check_references(&ld, st);
    if (ok && !build_records(st))
        ok = fail_oom(&ld);
    if (ok && !build_involvement(st))
        ok = fail_oom(&ld);
    if (ok) {
        json_t *canon = build_dataset_json(st);
        if (!canon) {
            ok = fail_oom(&ld);
        } else {
            json_decref(root);
            st->json = canon;
        }
    }
    /* The sort orders depend on sort names built above. */
    if (ok && facts_store_build_orders(st) != FACTS_OK)
        ok = fail_oom(&ld);
    loader_free(&ld);
    if (!ok) {
        facts_store_unref(st);
        if (n)
            *n = ld.problems < max ? ld.problems : max;
        return ld.status;
    }
    *out = st;
    return FACTS_OK;
}

facts_status facts_store_load_file(const char *path, facts_store **out, facts_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        facts_error_set(err, FACTS_EIO, path, 0, 0, "", "io", "cannot open: %s",
                        strerror(errno));
        return FACTS_EIO;
    }
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    facts_status s = FACTS_OK;
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
        if (len > FACTS_FILE_MAX) {
            s = FACTS_ELIMIT;
            facts_error_set(err, s, path, 0, 0, "", "limit",
                            "the dataset is larger than %d bytes", FACTS_FILE_MAX);
            break;
        }
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) {
        s = FACTS_ENOMEM;
        facts_error_set(err, s, path, 0, 0, "", "memory", "out of memory");
    } else if (s == FACTS_OK && ferror(f)) {
        s = FACTS_EIO;
        facts_error_set(err, s, path, 0, 0, "", "io", "read error");
    }
    fclose(f);
    if (s == FACTS_OK)
        s = facts_store_load_buffer(buf, len, path, out, err);
    free(buf);
    return s;
}

const char *facts_embedded_dataset(size_t *len)
{
    *len = facts_embedded_data_len;
    return (const char *)facts_embedded_data;
}

facts_status facts_store_load_embedded(facts_store **out, facts_error *err)
{
    size_t len;
    const char *data = facts_embedded_dataset(&len);
    return facts_store_load_buffer(data, len, "<embedded>", out, err);
}
