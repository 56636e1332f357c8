/*
 * query.c - filtered, sorted, paginated views of one collection, and the
 * troop-estimate summary.
 *
 * A query walks the store's precomputed order for its sort, keeps the records
 * that pass every filter, counts them all and returns one page. A cursor is
 * the sort key of the last record returned (not an offset), so a page boundary
 * stays put on the same store and remains meaningful on later revisions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct facts_page {
    const facts_record **items;
    size_t count;
    size_t total;
    char *next;
};

/* The filters keep sets of enum values as 32-bit masks (error.c asserts
 * that every table fits). */
/* A query with its arguments checked and resolved. */
typedef struct compiled {
    facts_kind kind;
    const facts_record *actor;
    uint32_t types, statuses, subkinds; /* bit masks; 0 = any */
    bool has_from, has_to;
    int32_t from_day, to_day;
    char text[FACTS_QUERY_TEXT_MAX + 1];
    bool has_text;
    facts_sort sort;
    size_t limit;
    uint64_t fingerprint;
} compiled;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static facts_status arg_error(facts_error *err, const char *arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    facts_error_setv(err, FACTS_EARG, "query", 0, 0, arg, "argument", fmt, ap);
    va_end(ap);
    return FACTS_EARG;
}

void facts_query_init(facts_query *q, facts_kind kind)
{
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->sort = FACTS_SORT_DEFAULT;
}

facts_status facts_sort_parse(const char *s, facts_sort *sort)
{
    static const struct {
        const char *name;
        facts_sort sort;
    } names[] = {{"date", FACTS_SORT_DATE_ASC},
                 {"-date", FACTS_SORT_DATE_DESC},
                 {"name", FACTS_SORT_NAME_ASC},
                 {"-name", FACTS_SORT_NAME_DESC}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *sort = names[i].sort;
            return FACTS_OK;
        }
    }
    return FACTS_EARG;
}

/* Parses a comma-separated list of names from table into a bit mask. */
static facts_status parse_set(const char *value, const char *const *table, const char *arg,
                              uint32_t *mask, facts_error *err)
{
    uint32_t m = 0;
    size_t count = 0;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        if (n == 0 || n >= sizeof name)
            return arg_error(err, arg, "\"%.64s\" is not a valid %s list", value, arg);
        if (++count > FACTS_QUERY_VALUES_MAX)
            return arg_error(err, arg, "more than %d values", FACTS_QUERY_VALUES_MAX);
        memcpy(name, p, n);
        name[n] = '\0';
        int i = facts_table_find(table, name);
        if (i < 0)
            return arg_error(err, arg, "unknown %s \"%s\"", arg, name);
        m |= UINT32_C(1) << i;
        if (!comma)
            break;
        p = comma + 1;
    }
    *mask = m;
    return FACTS_OK;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static facts_status compile(const facts_store *st, const facts_query *q, bool paged,
                            compiled *c, facts_error *err)
{
    memset(c, 0, sizeof *c);
    if ((unsigned)q->kind >= FACTS_KIND_COUNT)
        return arg_error(err, "collection", "unknown collection");
    c->kind = q->kind;
    bool event = q->kind == FACTS_KIND_EVENT, estimate = q->kind == FACTS_KIND_ESTIMATE;
    bool dated = event || estimate;
    const char *kind_name = facts_kind_collection(q->kind);

    if (q->actor) {
        if (!dated)
            return arg_error(err, "actor", "%s cannot be filtered by actor", kind_name);
        c->actor = facts_store_find(st, FACTS_KIND_ACTOR, q->actor);
        if (!c->actor) {
            facts_error_set(err, FACTS_ENOTFOUND, "query", 0, 0, "actor", "argument",
                            "no actor has the id or slug \"%.64s\"", q->actor);
            return FACTS_ENOTFOUND;
        }
    }
    facts_status s;
    if (q->type) {
        if (!event)
            return arg_error(err, "type", "%s cannot be filtered by type", kind_name);
        if ((s = parse_set(q->type, facts_event_types, "type", &c->types, err)) != FACTS_OK)
            return s;
    }
    if (q->status) {
        if (!event)
            return arg_error(err, "status", "%s cannot be filtered by status", kind_name);
        if ((s = parse_set(q->status, facts_event_statuses, "status", &c->statuses, err)) != FACTS_OK)
            return s;
    }
    if (q->subkind) {
        if (q->kind == FACTS_KIND_ACTOR)
            s = parse_set(q->subkind, facts_actor_kinds, "kind", &c->subkinds, err);
        else if (estimate)
            s = parse_set(q->subkind, facts_estimate_kinds, "kind", &c->subkinds, err);
        else
            return arg_error(err, "kind", "%s cannot be filtered by kind", kind_name);
        if (s != FACTS_OK)
            return s;
    }
    const char *const ends[2] = {q->from, q->to};
    const char *const names[2] = {"from", "to"};
    int32_t *days[2] = {&c->from_day, &c->to_day};
    bool *has[2] = {&c->has_from, &c->has_to};
    for (int i = 0; i < 2; i++) {
        if (!ends[i])
            continue;
        if (!dated)
            return arg_error(err, names[i], "%s have no dates", kind_name);
        if (facts_date_parse(ends[i], i == 1, days[i]) != FACTS_OK)
            return arg_error(err, names[i],
                             "\"%.32s\" is not a date (YYYY, YYYY-MM or YYYY-MM-DD)", ends[i]);
        *has[i] = true;
    }
    if (c->has_from && c->has_to && c->from_day > c->to_day)
        return arg_error(err, "from", "from is after to");
    if (q->text) {
        size_t n = strlen(q->text);
        if (n == 0)
            return arg_error(err, "q", "the search text is empty");
        if (n > FACTS_QUERY_TEXT_MAX)
            return arg_error(err, "q", "the search text is longer than %d bytes",
                             FACTS_QUERY_TEXT_MAX);
        for (size_t i = 0; i < n; i++) {
            char ch = q->text[i];
            /* Control characters never match (and the newlines that join a
             * record's fields must not let one search span two fields). */
            if ((unsigned char)ch < 0x20 || ch == 0x7f)
                return arg_error(err, "q", "the search text has a control character");
            c->text[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
        }
        c->text[n] = '\0';
        c->has_text = true;
    }
    if ((unsigned)q->sort >= FACTS_SORT_COUNT)
        return arg_error(err, "sort", "unknown sort");
    c->sort = q->sort;
    if (c->sort == FACTS_SORT_DEFAULT)
        c->sort = dated ? FACTS_SORT_DATE_ASC : FACTS_SORT_NAME_ASC;
    if ((c->sort == FACTS_SORT_DATE_ASC || c->sort == FACTS_SORT_DATE_DESC) && !dated)
        return arg_error(err, "sort", "%s have no dates to sort by", kind_name);
    if (paged) {
        if (q->limit > FACTS_QUERY_LIMIT_MAX)
            return arg_error(err, "limit", "the limit is 1..%d", FACTS_QUERY_LIMIT_MAX);
        c->limit = q->limit ? q->limit : FACTS_QUERY_LIMIT_DEFAULT;
    }
    /* What makes two queries the same for a cursor: everything but limit.
     * Every field has a fixed size or a stated length, so no two different
     * queries hash the same bytes. */
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    uint32_t words[6] = {(uint32_t)c->kind, c->types, c->statuses, c->subkinds,
                         (uint32_t)c->sort,
                         (uint32_t)(c->has_from | (c->has_to << 1) | (c->has_text << 2) |
                                    ((c->actor != NULL) << 3))};
    h = fnv1a(h, words, sizeof words);
    h = fnv1a(h, &c->from_day, sizeof c->from_day);
    h = fnv1a(h, &c->to_day, sizeof c->to_day);
    h = fnv1a(h, c->actor ? c->actor->id : "", c->actor ? 36 : 0);
    uint64_t text_len = strlen(c->text);
    h = fnv1a(h, &text_len, sizeof text_len);
    h = fnv1a(h, c->text, (size_t)text_len);
    c->fingerprint = h;
    return FACTS_OK;
}

static bool matches(const compiled *c, const facts_record *r)
{
    if (c->actor && !facts_record_involves(r, c->actor))
        return false;
    if (c->types && (r->type < 0 || !(c->types & (UINT32_C(1) << r->type))))
        return false;
    if (c->statuses && (r->status < 0 || !(c->statuses & (UINT32_C(1) << r->status))))
        return false;
    if (c->subkinds && (r->subkind < 0 || !(c->subkinds & (UINT32_C(1) << r->subkind))))
        return false;
    if (c->has_from || c->has_to) {
        if (!r->has_date || r->date.precision == FACTS_PRECISION_UNKNOWN)
            return false;
        if (c->has_from && r->date.last_day < c->from_day)
            return false;
        if (c->has_to && r->date.first_day > c->to_day)
            return false;
    }
    if (c->has_text && !strstr(r->search, c->text))
        return false;
    return true;
}

/* ------------------------------------------------------------- cursors */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding. Returns a new string or NULL. */
static char *b64_encode(const char *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 5);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* Decodes base64url into out (size bytes, NUL-terminated). */
static bool b64_decode(const char *in, char *out, size_t size, size_t *len)
{
    size_t n = strlen(in), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (n % 4 == 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b64, in[i]);
        if (!p || !in[i])
            return false;
        acc = (acc << 6) | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= size)
                return false;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *len = o;
    return true;
}

/* Cursor text: "1|<fingerprint>|<dated>|<first>|<last>|<slug>|<sort name>";
 * the sort name only for the name sorts (the date sorts do not compare it). */
static char *cursor_encode(const compiled *c, const facts_record *r)
{
    char buf[FACTS_CURSOR_MAX];
    bool by_name = c->sort == FACTS_SORT_NAME_ASC || c->sort == FACTS_SORT_NAME_DESC;
    int n = snprintf(buf, sizeof buf, "1|%016llx|%d|%ld|%ld|%s|%s",
                     (unsigned long long)c->fingerprint,
                     r->has_date && r->date.precision != FACTS_PRECISION_UNKNOWN,
                     (long)r->date.first_day, (long)r->date.last_day, r->slug,
                     by_name ? r->sort_name : "");
    /* At most about 240 bytes (slug 64, sort name 128): it always fits,
     * and its encoding stays under FACTS_CURSOR_MAX. */
    if (n < 0 || (size_t)n >= sizeof buf / 4 * 3)
        return NULL;
    return b64_encode(buf, (size_t)n);
}

/* Reads a checked decimal integer in [min, max] from [s, end). */
static bool parse_long(const char *s, const char *end, long long min, long long max,
                       long long *out)
{
    bool neg = false;
    long long v = 0;
    if (s < end && *s == '-') {
        neg = true;
        s++;
    }
    if (s == end || end - s > 12)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    v = neg ? -v : v;
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Decodes a cursor into a key record holding the fields the sort compares. */
static facts_status cursor_decode(const compiled *c, const char *cursor, facts_record *key,
                                  char *slug, char *name, facts_error *err)
{
    char buf[FACTS_CURSOR_MAX];
    size_t len;
    if (strlen(cursor) > FACTS_CURSOR_MAX || !b64_decode(cursor, buf, sizeof buf, &len) ||
        strlen(buf) != len)
        return arg_error(err, "cursor", "the cursor is malformed");
    char *f[7];
    f[0] = buf;
    for (int i = 1; i < 7; i++) {
        char *bar = strchr(f[i - 1], '|');
        if (!bar)
            return arg_error(err, "cursor", "the cursor is malformed");
        *bar = '\0';
        f[i] = bar + 1;
    }
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)c->fingerprint);
    long long dated, first, last;
    if (strcmp(f[0], "1") != 0 ||
        !parse_long(f[2], f[2] + strlen(f[2]), 0, 1, &dated) ||
        !parse_long(f[3], f[3] + strlen(f[3]), -1000000000LL, 1000000000LL, &first) ||
        !parse_long(f[4], f[4] + strlen(f[4]), -1000000000LL, 1000000000LL, &last) ||
        strlen(f[5]) == 0 || strlen(f[5]) > FACTS_SLUG_MAX || strlen(f[6]) > FACTS_SORT_NAME_MAX)
        return arg_error(err, "cursor", "the cursor is malformed");
    if (strcmp(f[1], fp) != 0)
        return arg_error(err, "cursor", "the cursor belongs to another query");
    /* Date-sorted cursors carry no name (and so nothing after the slug). */
    bool by_name = c->sort == FACTS_SORT_NAME_ASC || c->sort == FACTS_SORT_NAME_DESC;
    if (!by_name && f[6][0] != '\0')
        return arg_error(err, "cursor", "the cursor is malformed");
    memset(key, 0, sizeof *key);
    key->kind = c->kind;
    key->has_date = dated != 0;
    key->date.precision = dated ? FACTS_PRECISION_DAY : FACTS_PRECISION_UNKNOWN;
    key->date.first_day = (int32_t)first;
    key->date.last_day = (int32_t)last;
    memcpy(slug, f[5], strlen(f[5]) + 1);
    memcpy(name, f[6], strlen(f[6]) + 1);
    key->slug = slug;
    key->sort_name = name;
    return FACTS_OK;
}

/* ------------------------------------------------------------- queries */

static facts_page *page_new(size_t cap)
{
    facts_page *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->items = malloc((cap ? cap : 1) * sizeof *p->items);
    if (!p->items) {
        free(p);
        return NULL;
    }
    return p;
}

facts_status facts_store_query(const facts_store *store, const facts_query *q,
                               facts_page **out, facts_error *err)
{
    compiled c;
    facts_status s = compile(store, q, true, &c, err);
    if (s != FACTS_OK)
        return s;
    const size_t n = store->count[c.kind];
    const size_t *order = store->order[c.kind][c.sort];
    const facts_record *recs = store->records[c.kind];
    size_t start = 0;
    if (q->cursor) {
        facts_record key;
        char slug[FACTS_SLUG_MAX + 1], name[FACTS_SORT_NAME_MAX + 1];
        s = cursor_decode(&c, q->cursor, &key, slug, name, err);
        if (s != FACTS_OK)
            return s;
        /* The first position whose record sorts after the key. */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (facts_record_compare(&recs[order[mid]], &key, c.sort) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        start = lo;
    }
    facts_page *page = page_new(c.limit);
    if (!page) {
        facts_error_set(err, FACTS_ENOMEM, "query", 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    bool more = false;
    for (size_t i = 0; i < n; i++) {
        const facts_record *r = &recs[order[i]];
        if (!matches(&c, r))
            continue;
        page->total++;
        if (i < start)
            continue;
        if (page->count < c.limit)
            page->items[page->count++] = r;
        else
            more = true;
    }
    if (more) {
        page->next = cursor_encode(&c, page->items[page->count - 1]);
        if (!page->next) {
            facts_page_free(page);
            facts_error_set(err, FACTS_ENOMEM, "query", 0, 0, "", "memory", "out of memory");
            return FACTS_ENOMEM;
        }
    }
    *out = page;
    return FACTS_OK;
}

facts_status facts_store_summarize(const facts_store *store, const facts_query *q,
                                   facts_summary *sum, facts_page **page, facts_error *err)
{
    if (q->kind != FACTS_KIND_ESTIMATE)
        return arg_error(err, "collection", "only troop estimates can be summed");
    compiled c;
    facts_status s = compile(store, q, false, &c, err);
    if (s != FACTS_OK)
        return s;
    const size_t n = store->count[c.kind];
    const size_t *order = store->order[c.kind][c.sort];
    facts_page *p = NULL;
    if (page && !(p = page_new(n))) {
        facts_error_set(err, FACTS_ENOMEM, "query", 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    /* At most 10,000 estimates of at most 10,000,000 each: no overflow. */
    facts_summary total = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const facts_record *r = &store->records[c.kind][order[i]];
        if (!matches(&c, r))
            continue;
        total.low += r->low;
        total.high += r->high;
        total.count++;
        if (p)
            p->items[p->count++] = r;
    }
    if (p) {
        p->total = p->count;
        *page = p;
    }
    *sum = total;
    return FACTS_OK;
}

size_t facts_page_count(const facts_page *page)
{
    return page->count;
}

const facts_record *facts_page_get(const facts_page *page, size_t i)
{
    return i < page->count ? page->items[i] : NULL;
}

size_t facts_page_total(const facts_page *page)
{
    return page->total;
}

const char *facts_page_next(const facts_page *page)
{
    return page->next;
}

void facts_page_free(facts_page *page)
{
    if (!page)
        return;
    free(page->items);
    free(page->next);
    free(page);
}
