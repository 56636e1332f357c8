/*
 * load_member.c - the loader's member-walking helpers (see
 * load_internal.h): problems and their JSON pointers, member checks,
 * references and evidence locators, dates, ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_internal.h"

/* Whether a failed check should let the load go on to find more problems:
 * only when collecting, and while there is room to report them. */
bool facts_load_collecting(const facts_loader *ld)
{
    return ld->list != NULL && ld->problems < ld->list_max;
}

/* Records one problem: the first goes to ld->err; each goes to the list while
 * there is room. */
static void record_problem(facts_loader *ld, facts_status status, const char *pointer,
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
 * would not fit. Returns the previous length, for facts_load_ptr_pop. */
size_t facts_load_ptr_push(facts_loader *ld, const char *seg)
{
    size_t old = ld->len;
    if (ld->len + 1 < FACTS_LOAD_PTR_MAX)
        ld->ptr[ld->len++] = '/';
    for (const char *s = seg; *s && ld->len + 2 < FACTS_LOAD_PTR_MAX; s++) {
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

size_t facts_load_ptr_push_index(facts_loader *ld, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return facts_load_ptr_push(ld, buf);
}

void facts_load_ptr_pop(facts_loader *ld, size_t old)
{
    ld->len = old;
    ld->ptr[old] = '\0';
}

bool facts_load_fail(facts_loader *ld, facts_status status, const char *rule, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_problem(ld, status, ld->ptr, rule, fmt, ap);
    va_end(ap);
    return false;
}

/* Like fail, for a problem found at another pointer than the current one. */
bool facts_load_fail_at(facts_loader *ld, const char *pointer, const char *rule, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_problem(ld, FACTS_EINVALID, pointer, rule, fmt, ap);
    va_end(ap);
    return false;
}

bool facts_load_fail_oom(facts_loader *ld)
{
    /* Running out of memory ends the load: nothing more is collected. */
    ld->list_max = 0;
    return facts_load_fail(ld, FACTS_ENOMEM, "memory", "out of memory");
}

/* ------------------------------------------------------- member checks */

bool facts_load_expect_object(facts_loader *ld, const json_t *v)
{
    if (!json_is_object(v))
        return facts_load_fail(ld, FACTS_EINVALID, "type", "expected an object");
    return true;
}

bool facts_load_check_members(facts_loader *ld, const json_t *obj, const char *const *allowed,
                              const char *const *required)
{
    const char *key;
    json_t *val;
    bool ok = true;
    json_object_foreach((json_t *)obj, key, val) {
        if (facts_table_find(allowed, key) < 0) {
            size_t m = facts_load_ptr_push(ld, key);
            ok = facts_load_fail(ld, FACTS_EINVALID, "unknown-member", "unknown member \"%.64s\"",
                                 key);
            if (!facts_load_collecting(ld))
                return false;
            facts_load_ptr_pop(ld, m);
        }
    }
    for (size_t i = 0; required[i]; i++) {
        if (!json_object_get(obj, required[i])) {
            ok = facts_load_fail(ld, FACTS_EINVALID, "required", "missing required member \"%s\"",
                                 required[i]);
            if (!facts_load_collecting(ld))
                return false;
        }
    }
    return ok;
}

/* Checks a string value at the current pointer. */
bool facts_load_check_string(facts_loader *ld, const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return facts_load_fail(ld, FACTS_EINVALID, "type", "expected a string");
    size_t bytes = json_string_length(v);
    if (bytes == 0)
        return facts_load_fail(ld, FACTS_EINVALID, "empty", "must not be empty");
    if (bytes > max && facts_utf8_length(json_string_value(v), bytes) > max)
        return facts_load_fail(ld, FACTS_EINVALID, "too-long", "longer than %zu characters", max);
    return true;
}

/* Gets obj[key] as a string (NULL when absent; presence of required members
 * is checked by facts_load_check_members). */
bool facts_load_get_string(facts_loader *ld, const json_t *obj, const char *key, size_t max,
                           const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    if (!facts_load_check_string(ld, v, max))
        return false;
    facts_load_ptr_pop(ld, m);
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

bool facts_load_check_slug(facts_loader *ld, const json_t *v)
{
    if (!facts_load_check_string(ld, v, FACTS_SLUG_MAX))
        return false;
    const char *s = json_string_value(v);
    if (!is_slug_text(s))
        return facts_load_fail(ld, FACTS_EINVALID, "format",
                               "\"%.64s\" is not a slug (lower-case letters and digits in "
                               "hyphen-separated words)", s);
    if (is_uuid_text(s))
        return facts_load_fail(ld, FACTS_EINVALID, "format",
                               "a slug must not have the form of a UUID");
    return true;
}

bool facts_load_get_slug(facts_loader *ld, const json_t *obj, const char *key, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    if (!facts_load_check_slug(ld, v))
        return false;
    facts_load_ptr_pop(ld, m);
    *out = json_string_value(v);
    return true;
}

bool facts_load_get_enum(facts_loader *ld, const json_t *obj, const char *key,
                         const char *const *table, int *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = -1;
    if (!v)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    if (!facts_load_check_string(ld, v, FACTS_STRING_MAX))
        return false;
    int i = facts_table_find(table, json_string_value(v));
    if (i < 0)
        return facts_load_fail(ld, FACTS_EINVALID, "enum", "\"%.64s\" is not an allowed value",
                               json_string_value(v));
    facts_load_ptr_pop(ld, m);
    *out = i;
    return true;
}

bool facts_load_get_int(facts_loader *ld, const json_t *obj, const char *key, json_int_t min,
                        json_int_t max, json_int_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    if (!json_is_integer(v))
        return facts_load_fail(ld, FACTS_EINVALID, "type", "expected an integer");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return facts_load_fail(ld, FACTS_EINVALID, "range",
                               "%" JSON_INTEGER_FORMAT " is outside %" JSON_INTEGER_FORMAT
                               "..%" JSON_INTEGER_FORMAT, n, min, max);
    facts_load_ptr_pop(ld, m);
    *out = n;
    return true;
}

/* Gets obj[key] as an array of min..max items (NULL when absent). */
bool facts_load_get_array(facts_loader *ld, const json_t *obj, const char *key, size_t min,
                          size_t max, const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    if (!json_is_array(v))
        return facts_load_fail(ld, FACTS_EINVALID, "type", "expected an array");
    size_t n = json_array_size(v);
    if (n < min)
        return facts_load_fail(ld, FACTS_EINVALID, "empty", "needs at least %zu item%s", min,
                               min == 1 ? "" : "s");
    if (n > max)
        return facts_load_fail(ld, FACTS_EINVALID, "too-long", "more than %zu items", max);
    facts_load_ptr_pop(ld, m);
    *out = v;
    return true;
}

/* ----------------------------------------------- references and locators */

/* Records a reference found at the current pointer, checked once every
 * record is known. */
static bool add_ref(facts_loader *ld, facts_kind kind, const char *slug, bool need_state)
{
    if (ld->nrefs == ld->caprefs) {
        size_t cap = ld->caprefs ? ld->caprefs * 2 : 64;
        facts_load_ref *n = realloc(ld->refs, cap * sizeof *n);
        if (!n)
            return facts_load_fail_oom(ld);
        ld->refs = n;
        ld->caprefs = cap;
    }
    char *p = strdup(ld->ptr);
    if (!p)
        return facts_load_fail_oom(ld);
    ld->refs[ld->nrefs++] = (facts_load_ref){p, slug, kind, need_state};
    return true;
}

/* A reference member obj[key] (slug) of kind. */
bool facts_load_get_ref(facts_loader *ld, const json_t *obj, const char *key, facts_kind kind,
                        bool need_state, const char **out)
{
    const char *slug;
    if (!facts_load_get_slug(ld, obj, key, &slug))
        return false;
    if (out)
        *out = slug;
    if (!slug)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    bool ok = add_ref(ld, kind, slug, need_state);
    facts_load_ptr_pop(ld, m);
    return ok;
}

/* An optional array of unique slugs referring to records of kind; self (may
 * be NULL) must not appear. */
bool facts_load_get_ref_list(facts_loader *ld, const json_t *obj, const char *key, facts_kind kind,
                             const char *self)
{
    const json_t *arr;
    if (!facts_load_get_array(ld, obj, key, 0, FACTS_ITEMS_MAX, &arr))
        return false;
    if (!arr)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        size_t mi = facts_load_ptr_push_index(ld, i);
        if (!facts_load_check_slug(ld, v))
            return false;
        const char *s = json_string_value(v);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(arr, j)), s) == 0)
                return facts_load_fail(ld, FACTS_EINVALID, "duplicate", "\"%.64s\" is listed twice",
                                       s);
        }
        if (self && strcmp(self, s) == 0)
            return facts_load_fail(ld, FACTS_EINVALID, "self-reference",
                                   "a record cannot refer to itself");
        if (!add_ref(ld, kind, s, false))
            return false;
        facts_load_ptr_pop(ld, mi);
    }
    facts_load_ptr_pop(ld, m);
    return true;
}

static const char *const evidence_members[] = {"source", "paragraph", "sentence", "phrase", NULL};
static const char *const evidence_required[] = {"source", "paragraph", "sentence", NULL};

/* The required member "evidence" of rec: a non-empty array of locators. */
bool facts_load_evidence(facts_loader *ld, const json_t *rec)
{
    const json_t *arr;
    if (!facts_load_get_array(ld, rec, "evidence", 1, FACTS_ITEMS_MAX, &arr))
        return false;
    if (!arr)
        return true;
    size_t m = facts_load_ptr_push(ld, "evidence");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *loc = json_array_get(arr, i);
        size_t mi = facts_load_ptr_push_index(ld, i);
        const char *source, *phrase;
        json_int_t par = 0, sent = 0;
        if (!facts_load_expect_object(ld, loc) ||
            !facts_load_check_members(ld, loc, evidence_members, evidence_required) ||
            !facts_load_get_ref(ld, loc, "source", FACTS_KIND_SOURCE, false, &source) ||
            !facts_load_get_int(ld, loc, "paragraph", 1, 100000, &par) ||
            !facts_load_get_int(ld, loc, "sentence", 1, 100000, &sent) ||
            !facts_load_get_string(ld, loc, "phrase", FACTS_PHRASE_MAX, &phrase))
            return false;
        if (ld->nlocs == ld->caplocs) {
            size_t cap = ld->caplocs ? ld->caplocs * 2 : 64;
            facts_load_loc *n = realloc(ld->locs, cap * sizeof *n);
            if (!n)
                return facts_load_fail_oom(ld);
            ld->locs = n;
            ld->caplocs = cap;
        }
        char *p = strdup(ld->ptr);
        if (!p)
            return facts_load_fail_oom(ld);
        ld->locs[ld->nlocs++] = (facts_load_loc){p, source, par, sent};
        facts_load_ptr_pop(ld, mi);
    }
    facts_load_ptr_pop(ld, m);
    return true;
}

/* ---------------------------------------------------------------- dates */

static const char *const date_members[] = {"precision", "from", "to", "phrase",
                                           "basis", "note", NULL};
static const char *const date_required[] = {"precision", "basis", NULL};
/* Index order matches facts_precision. */
static const char *const precisions[] = {"unknown", "year", "season", "month", "day", NULL};
static const char *const bases[] = {"stated", "context", "unknown", NULL};
enum { BASIS_STATED, BASIS_CONTEXT, BASIS_UNKNOWN };

/* Parses one end of a range at obj[key] for precision prec. */
static bool load_date_end(facts_loader *ld, const json_t *obj, const char *key,
                          facts_precision prec,
                          int32_t *first, int32_t *last, int *month_index)
{
    const char *s;
    if (!facts_load_get_string(ld, obj, key, 16, &s))
        return false;
    size_t m = facts_load_ptr_push(ld, key);
    facts_precision g;
    bool cal;
    if (!facts_date_parse_partial(s, &g, first, last, &cal)) {
        if (cal)
            return facts_load_fail(ld, FACTS_EINVALID, "format",
                                   "\"%s\" is not a partial date (YYYY, YYYY-MM or YYYY-MM-DD)", s);
        return facts_load_fail(ld, FACTS_EINVALID, "date", "\"%s\" is not a real calendar date", s);
    }
    facts_precision want = prec == FACTS_PRECISION_SEASON ? FACTS_PRECISION_MONTH : prec;
    if (g != want)
        return facts_load_fail(ld, FACTS_EINVALID, "date", "\"%s\" does not match precision \"%s\"",
                               s,
                               precisions[prec]);
    int y = 0, mo = 0;
    for (int i = 0; i < 4; i++)
        y = y * 10 + (s[i] - '0');
    if (g != FACTS_PRECISION_YEAR)
        mo = (s[5] - '0') * 10 + (s[6] - '0');
    *month_index = y * 12 + mo;
    facts_load_ptr_pop(ld, m);
    return true;
}

/* Loads the date range obj[key] (absent: *present = false). */
bool facts_load_date(facts_loader *ld, const json_t *obj, const char *key, facts_date_range *out,
                     bool *present)
{
    const json_t *d = json_object_get(obj, key);
    *present = d != NULL;
    if (!d)
        return true;
    size_t m = facts_load_ptr_push(ld, key);
    int prec, basis;
    const char *phrase, *note;
    if (!facts_load_expect_object(ld, d) ||
        !facts_load_check_members(ld, d, date_members, date_required) ||
        !facts_load_get_enum(ld, d, "precision", precisions, &prec) ||
        !facts_load_get_enum(ld, d, "basis", bases, &basis) ||
        !facts_load_get_string(ld, d, "phrase", FACTS_PHRASE_MAX, &phrase) ||
        !facts_load_get_string(ld, d, "note", FACTS_STRING_MAX, &note))
        return false;
    facts_date_range r = {(facts_precision)prec, 0, 0};
    if (prec == FACTS_PRECISION_UNKNOWN) {
        const char *const ends[] = {"from", "to"};
        for (int i = 0; i < 2; i++) {
            if (json_object_get(d, ends[i])) {
                facts_load_ptr_push(ld, ends[i]);
                return facts_load_fail(ld, FACTS_EINVALID, "date",
                                       "an unknown date has no \"%s\"", ends[i]);
            }
        }
        if (basis != BASIS_UNKNOWN) {
            facts_load_ptr_push(ld, "basis");
            return facts_load_fail(ld, FACTS_EINVALID, "date",
                                   "an unknown date has basis \"unknown\"");
        }
    } else {
        if (basis == BASIS_UNKNOWN) {
            facts_load_ptr_push(ld, "basis");
            return facts_load_fail(ld, FACTS_EINVALID, "date",
                                   "basis \"unknown\" goes with precision \"unknown\" only");
        }
        if (!json_object_get(d, "from") || !json_object_get(d, "to"))
            return facts_load_fail(ld, FACTS_EINVALID, "required",
                                   "a date of precision \"%s\" needs \"from\" and \"to\"",
                                   precisions[prec]);
        int32_t f1, f2, t1, t2;
        int fm, tm;
        if (!load_date_end(ld, d, "from", r.precision, &f1, &f2, &fm) ||
            !load_date_end(ld, d, "to", r.precision, &t1, &t2, &tm))
            return false;
        if (f1 > t1)
            return facts_load_fail(ld, FACTS_EINVALID, "date-order", "\"from\" is after \"to\"");
        if (prec == FACTS_PRECISION_SEASON && tm - fm > 2)
            return facts_load_fail(ld, FACTS_EINVALID, "date-order",
                                   "a season spans at most three months");
        r.first_day = f1;
        r.last_day = t2;
    }
    if (basis == BASIS_CONTEXT && !note)
        return facts_load_fail(ld, FACTS_EINVALID, "context-note",
                               "a date resolved from context needs a \"note\" saying how");
    facts_load_ptr_pop(ld, m);
    *out = r;
    return true;
}

/* ------------------------------------------------------------------ ids */

bool facts_load_id(facts_loader *ld, const json_t *rec, facts_record *r)
{
    const json_t *v = json_object_get(rec, "id");
    if (!v)
        return true;
    size_t m = facts_load_ptr_push(ld, "id");
    if (!facts_load_check_string(ld, v, 36))
        return false;
    if (!is_uuid_text(json_string_value(v)))
        return facts_load_fail(ld, FACTS_EINVALID, "format", "an id is a lower-case UUID");
    memcpy(r->id, json_string_value(v), 37);
    facts_load_ptr_pop(ld, m);
    return true;
}
