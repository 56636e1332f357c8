/*
 * fuzz_query.c - the query arguments and keyset cursors of lib/query.c on
 * the embedded article store, with facts_sort_parse and facts_date_parse.
 *
 * Input layout:
 *   byte 0  bits 0-1: the kind; bits 2-4: the sort (5..7 are out of range);
 *           bit 5: a "templated" cursor: the cursor text is "1|<the query's
 *           own fingerprint>|" + the cursor string, base64url-encoded, so
 *           that mutations reach past the fingerprint check; bit 6: the
 *           sort string below is given
 *   byte 1  the limit: 0..199 as is, 200..255 as (b - 200) * 10 (up to 550)
 *   byte 2  which of the first eight strings below are given (bit i:
 *           string i)
 *   rest    strings separated by NUL or newline bytes, each cut at 600 bytes:
 *           cursor, text, type, status, kind, from, to, actor, sort (a sort
 *           name: it replaces byte 0's sort when facts_sort_parse takes it)
 *
 * Checked besides the sanitizers: the error contract; every record on a page
 * passes the filters (but the text search, which reads an internal field) and
 * the pages come in sort order; paging from the start with the next cursors
 * returns each match once and exactly total of them (checked against a count
 * made here, without a text filter); the troop-estimate summary sums what the
 * query selects; facts_date_parse and facts_sort_parse keep their outputs
 * on failure.
 */
#include "fuzz.h"

enum {
    STRINGS = 9,
    STRING_MAX = 600,
    PAGES_MAX = 8, /* pages walked per input */
    SEEN_MAX = PAGES_MAX * FACTS_QUERY_LIMIT_MAX
};

enum { S_CURSOR, S_TEXT, S_TYPE, S_STATUS, S_KIND, S_FROM, S_TO, S_ACTOR, S_SORT };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_jansson();
    (void)fuzz_article();
    return 0;
}

/* ------------------------------------------------------------- oracle */

/* Whether value is one of the comma-separated names in list. */
static bool in_list(const char *list, const char *value)
{
    if (value == NULL)
        return false;
    size_t n = strlen(value);
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t m = comma ? (size_t)(comma - p) : strlen(p);
        if (m == n && memcmp(p, value, n) == 0)
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

static const char *member(const facts_record *r, const char *name)
{
    return json_string_value(json_object_get(facts_record_json(r), name));
}

/* The filters of an accepted query but the text search, from the public API
 * alone. */
static bool oracle_matches(const facts_store *st, const facts_query *q, const facts_record *r)
{
    if (q->actor && !facts_record_involves(r, facts_store_find(st, FACTS_KIND_ACTOR, q->actor)))
        return false;
    if (q->type && !in_list(q->type, member(r, "type")))
        return false;
    if (q->status && !in_list(q->status, member(r, "status")))
        return false;
    if (q->subkind && !in_list(q->subkind, member(r, "kind")))
        return false;
    if (q->from || q->to) {
        facts_date_range d;
        if (!facts_record_date(r, &d) || d.precision == FACTS_PRECISION_UNKNOWN)
            return false;
        int32_t day;
        if (q->from && (facts_date_parse(q->from, false, &day) != FACTS_OK || d.last_day < day))
            return false;
        if (q->to && (facts_date_parse(q->to, true, &day) != FACTS_OK || d.first_day > day))
            return false;
    }
    return true;
}

/* The ASCII lower-case first 128 bytes of the name, as the name sorts see it. */
static void sort_name(const facts_record *r, char *out)
{
    const char *s = facts_record_name(r);
    size_t i = 0;
    for (; s[i] != '\0' && i < 128; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[i] = '\0';
}

/* The order of include/facts.h's facts_sort (ties by slug). */
static int oracle_compare(const facts_record *a, const facts_record *b, facts_sort sort)
{
    int sign = sort == FACTS_SORT_DATE_DESC || sort == FACTS_SORT_NAME_DESC ? -1 : 1;
    int c = 0;
    if (sort == FACTS_SORT_DATE_ASC || sort == FACTS_SORT_DATE_DESC) {
        facts_date_range da, db;
        bool ha = facts_record_date(a, &da) && da.precision != FACTS_PRECISION_UNKNOWN;
        bool hb = facts_record_date(b, &db) && db.precision != FACTS_PRECISION_UNKNOWN;
        if (ha != hb)
            return ha ? -1 : 1; /* undated last either way */
        if (!ha)
            return strcmp(facts_record_slug(a), facts_record_slug(b));
        if (da.first_day != db.first_day)
            c = da.first_day < db.first_day ? -1 : 1;
        else if (da.last_day != db.last_day)
            c = da.last_day < db.last_day ? -1 : 1;
    } else {
        char na[129], nb[129];
        sort_name(a, na);
        sort_name(b, nb);
        c = strcmp(na, nb);
    }
    if (c == 0)
        c = strcmp(facts_record_slug(a), facts_record_slug(b));
    return sign * c;
}

/* ------------------------------------------------------------- cursors */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of n bytes into out (4 * n / 3 + 4 bytes). */
static void b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

/* Decodes base64url (the core's own cursors) into out; false if it is not. */
static bool b64_decode(const char *in, char *out, size_t size)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in; in++) {
        const char *p = strchr(b64, *in);
        if (!p)
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
    return true;
}

/* The query's fingerprint as its cursors carry it ("1|<fp>|..."), found by
 * asking for a page of one; false when there is no second page. */
static bool fingerprint(const facts_store *st, const facts_query *q, char fp[17])
{
    facts_query one = *q;
    one.limit = 1;
    one.cursor = NULL;
    facts_page *page = NULL;
    facts_error err;
    if (facts_store_query(st, &one, &page, &err) != FACTS_OK)
        return false;
    bool ok = false;
    char text[FACTS_CURSOR_MAX];
    const char *next = facts_page_next(page);
    if (next && b64_decode(next, text, sizeof text) && strncmp(text, "1|", 2) == 0 &&
        strlen(text) > 19 && text[18] == '|') {
        memcpy(fp, text + 2, 16);
        fp[16] = '\0';
        ok = true;
    }
    facts_page_free(page);
    return ok;
}

/* ------------------------------------------------------------- checks */

static void check_dates(const char *s)
{
    int32_t first = 7, last = 7;
    facts_status a = facts_date_parse(s, false, &first);
    facts_status b = facts_date_parse(s, true, &last);
    FUZZ_CHECK(a == b, "\"%s\" parses as a first day but not as a last one", s);
    if (a != FACTS_OK) {
        FUZZ_CHECK(a == FACTS_EARG && first == 7 && last == 7, "a failed parse set the day");
        return;
    }
    FUZZ_CHECK(first <= last, "\"%s\" is %d..%d", s, (int)first, (int)last);
    /* 1000-01-01 .. 9999-12-31 */
    FUZZ_CHECK(first >= -354285 && last <= 2932896, "\"%s\" is %d..%d", s, (int)first,
               (int)last);
}

static void check_sort(const char *s)
{
    facts_sort sort = (facts_sort)99;
    facts_status st = facts_sort_parse(s, &sort);
    if (st != FACTS_OK)
        FUZZ_CHECK(st == FACTS_EARG && sort == (facts_sort)99, "a failed sort parse set it");
    else
        FUZZ_CHECK(sort >= FACTS_SORT_DATE_ASC && sort <= FACTS_SORT_NAME_DESC, "sort %d",
                   (int)sort);
}

/* The troop-estimate summary sums the records the query selects. */
static void check_summary(const facts_store *st, const facts_query *q, size_t total)
{
    facts_summary sum = {-1, -1, 99};
    facts_page *page = FUZZ_UNTOUCHED;
    facts_error err;
    fuzz_error_poison(&err);
    facts_status s = facts_store_summarize(st, q, &sum, &page, &err);
    FUZZ_CHECK(s == FACTS_OK, "a query that runs does not sum: %s", err.text);
    FUZZ_CHECK(sum.count == total && facts_page_count(page) == total &&
                   facts_page_total(page) == total && facts_page_next(page) == NULL,
               "the summary counts %zu of %zu", sum.count, total);
    int64_t low = 0, high = 0;
    for (size_t i = 0; i < facts_page_count(page); i++) {
        int64_t l, h;
        FUZZ_CHECK(facts_estimate_bounds(facts_page_get(page, i), &l, &h), "an estimate");
        low += l;
        high += h;
    }
    FUZZ_CHECK(low == sum.low && high == sum.high, "the sums");
    facts_page_free(page);
}

/* Runs q and walks its next cursors: pages in order, every record passing
 * the filters, each once, total of them when walked from the start. */
static void walk(const facts_store *st, facts_query *q, bool from_start, facts_sort sort)
{
    static const facts_record *seen[SEEN_MAX];
    size_t n_seen = 0, total = 0;
    char cursor[FACTS_CURSOR_MAX + 1];
    size_t limit = q->limit ? q->limit : FACTS_QUERY_LIMIT_DEFAULT;
    bool ended = false;
    for (int p = 0; p < PAGES_MAX; p++) {
        facts_page *page = FUZZ_UNTOUCHED;
        facts_error err;
        fuzz_error_poison(&err);
        facts_status s = facts_store_query(st, q, &page, &err);
        if (s != FACTS_OK) {
            FUZZ_CHECK(p == 0, "a next cursor was refused: %s", err.text);
            FUZZ_CHECK(page == FUZZ_UNTOUCHED, "a failed query set the page");
            fuzz_check_error(&err, s);
            FUZZ_CHECK(s == FACTS_EARG || s == FACTS_ENOTFOUND, "status %s",
                       facts_status_name(s));
            FUZZ_CHECK(strcmp(err.source, "query") == 0 && err.pointer[0] != '\0',
                       "a query error names its argument");
            return;
        }
        size_t count = facts_page_count(page);
        FUZZ_CHECK(p == 0 || facts_page_total(page) == total, "the total moved");
        total = facts_page_total(page);
        FUZZ_CHECK(count <= limit && count <= total && total <= facts_store_count(st, q->kind),
                   "%zu on a page, %zu in all", count, total);
        FUZZ_CHECK(facts_page_get(page, count) == NULL, "facts_page_get past the end");
        for (size_t i = 0; i < count; i++) {
            const facts_record *r = facts_page_get(page, i);
            FUZZ_CHECK(facts_record_kind(r) == q->kind, "a record of another kind");
            FUZZ_CHECK(oracle_matches(st, q, r), "%s does not pass the filters",
                       facts_record_slug(r));
            if (n_seen > 0)
                FUZZ_CHECK(oracle_compare(seen[n_seen - 1], r, sort) < 0,
                           "%s comes after %s", facts_record_slug(r),
                           facts_record_slug(seen[n_seen - 1]));
            seen[n_seen++] = r;
        }
        const char *next = facts_page_next(page);
        if (next == NULL) {
            ended = true;
            facts_page_free(page);
            break;
        }
        FUZZ_CHECK(count == limit, "a full page has a next cursor (%zu of %zu)", count, limit);
        FUZZ_CHECK(strlen(next) <= FACTS_CURSOR_MAX, "a cursor of %zu bytes", strlen(next));
        memcpy(cursor, next, strlen(next) + 1);
        q->cursor = cursor;
        facts_page_free(page);
    }
    if (from_start && ended) {
        FUZZ_CHECK(n_seen == total, "the pages hold %zu records, total says %zu", n_seen, total);
        if (q->text == NULL) {
            size_t want = 0;
            for (size_t i = 0; i < facts_store_count(st, q->kind); i++)
                want += oracle_matches(st, q, facts_store_at(st, q->kind, i));
            FUZZ_CHECK(want == total, "%zu records pass the filters, total says %zu", want,
                       total);
        }
    }
    if (from_start && q->kind == FACTS_KIND_ESTIMATE) {
        q->cursor = NULL;
        check_summary(st, q, total);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 3)
        return 0;
    const facts_store *st = fuzz_article();
    char strings[STRINGS][STRING_MAX + 1];
    const char *given[STRINGS] = {NULL};
    size_t at = 3;
    for (int i = 0; i < STRINGS && at <= size; i++) {
        size_t end = at;
        while (end < size && data[end] != '\0' && data[end] != '\n')
            end++;
        size_t n = end - at < STRING_MAX ? end - at : STRING_MAX;
        memcpy(strings[i], data + at, n);
        strings[i][n] = '\0';
        if (i < 8 ? (data[2] & (1u << i)) != 0 : (data[0] & 0x40) != 0)
            given[i] = strings[i];
        at = end + 1;
    }

    facts_query q;
    facts_query_init(&q, (facts_kind)(data[0] & 3));
    q.sort = (facts_sort)((data[0] >> 2) & 7);
    q.limit = data[1] < 200 ? data[1] : (size_t)(data[1] - 200) * 10;
    q.text = given[S_TEXT];
    q.type = given[S_TYPE];
    q.status = given[S_STATUS];
    q.subkind = given[S_KIND];
    q.from = given[S_FROM];
    q.to = given[S_TO];
    q.actor = given[S_ACTOR];
    for (int i = S_FROM; i <= S_TO; i++) {
        if (given[i])
            check_dates(given[i]);
    }
    if (given[S_SORT]) {
        check_sort(given[S_SORT]);
        facts_sort sort;
        if (facts_sort_parse(given[S_SORT], &sort) == FACTS_OK)
            q.sort = sort;
    }
    facts_sort sort = q.sort;
    if (sort == FACTS_SORT_DEFAULT)
        sort = q.kind == FACTS_KIND_EVENT || q.kind == FACTS_KIND_ESTIMATE ? FACTS_SORT_DATE_ASC
                                                                          : FACTS_SORT_NAME_ASC;

    char templated[FACTS_CURSOR_MAX * 2];
    if (given[S_CURSOR] && (data[0] & 0x20)) {
        char fp[17];
        if (!fingerprint(st, &q, fp))
            return 0;
        char text[STRING_MAX + 32];
        int n = snprintf(text, sizeof text, "1|%s|%s", fp, given[S_CURSOR]);
        if (n < 0 || (size_t)n >= sizeof text)
            return 0;
        b64_encode((const unsigned char *)text, (size_t)n, templated);
        q.cursor = templated;
    } else {
        q.cursor = given[S_CURSOR];
    }
    walk(st, &q, q.cursor == NULL, sort);
    return 0;
}
