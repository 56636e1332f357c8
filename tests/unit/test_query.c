/*
 * test_query.c - queries over the embedded dataset: every filter against an
 * independent oracle that reads the records' JSON, every sort's order, cursor
 * pagination visiting each record exactly once, argument errors, and the
 * troop-estimate summary.
 *
 * usage: test_query DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "facts.h"

static facts_store *st;

/* ---------------------------------------------------------------- oracle */

static bool json_has_string(const json_t *arr, const char *s)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            return true;
    }
    return false;
}

static bool oracle_involves(const json_t *j, facts_kind kind, const char *actor)
{
    if (kind == FACTS_KIND_EVENT) {
        const json_t *parts = json_object_get(j, "participants");
        for (size_t i = 0; i < json_array_size(parts); i++) {
            if (strcmp(json_string_value(json_object_get(json_array_get(parts, i), "actor")),
                       actor) == 0)
                return true;
        }
        return false;
    }
    return strcmp(json_string_value(json_object_get(j, "sender")), actor) == 0 ||
           strcmp(json_string_value(json_object_get(j, "receiver")), actor) == 0 ||
           json_has_string(json_object_get(j, "reported_by"), actor);
}

/* The record's date window from its JSON; false when undated. */
static bool oracle_window(const json_t *j, facts_kind kind, int32_t *a, int32_t *b)
{
    const json_t *d = json_object_get(j, kind == FACTS_KIND_EVENT ? "date" : "period");
    const char *from = json_string_value(json_object_get(d, "from"));
    const char *to = json_string_value(json_object_get(d, "to"));
    if (!from || !to)
        return false;
    return facts_date_parse(from, false, a) == FACTS_OK && facts_date_parse(to, true, b) == FACTS_OK;
}

static bool contains_ci(const char *hay, const char *needle)
{
    if (!hay)
        return false;
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    }
    return false;
}

static bool oracle_text(const json_t *j, const char *q)
{
    static const char *const fields[] = {"slug", "name", "title", "summary", "description",
                                         "publisher"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (contains_ci(json_string_value(json_object_get(j, fields[i])), q))
            return true;
    }
    const json_t *aliases = json_object_get(j, "aliases");
    for (size_t i = 0; i < json_array_size(aliases); i++) {
        if (contains_ci(json_string_value(json_array_get(aliases, i)), q))
            return true;
    }
    return contains_ci(json_string_value(json_object_get(json_object_get(j, "location"), "name")), q);
}

static bool in_list(const char *list, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, value, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    }
    return false;
}

static bool oracle_match(const facts_query *q, const facts_record *r)
{
    const json_t *j = facts_record_json(r);
    const char *actor_slug = NULL;
    if (q->actor) {
        const facts_record *a = facts_store_find(st, FACTS_KIND_ACTOR, q->actor);
        actor_slug = facts_record_slug(a);
        if (!oracle_involves(j, q->kind, actor_slug))
            return false;
    }
    if (q->type && !in_list(q->type, json_string_value(json_object_get(j, "type"))))
        return false;
    if (q->status && !in_list(q->status, json_string_value(json_object_get(j, "status"))))
        return false;
    if (q->subkind && !in_list(q->subkind, json_string_value(json_object_get(j, "kind"))))
        return false;
    if (q->from || q->to) {
        int32_t a, b, qa, qb;
        if (!oracle_window(j, q->kind, &a, &b))
            return false;
        if (q->from && facts_date_parse(q->from, false, &qa) == FACTS_OK && b < qa)
            return false;
        if (q->to && facts_date_parse(q->to, true, &qb) == FACTS_OK && a > qb)
            return false;
    }
    if (q->text && !oracle_text(j, q->text))
        return false;
    return true;
}

/* ------------------------------------------------------------ the tests */

/* Runs q to the end with the given page size; checks every page and that the
 * pages together are exactly the oracle's matches, each once, in sort order. */
static void walk(facts_query q, size_t limit, const char *label)
{
    q.limit = limit;
    size_t expected = 0;
    for (size_t i = 0; i < facts_store_count(st, q.kind); i++)
        expected += oracle_match(&q, facts_store_at(st, q.kind, i));
    size_t n = facts_store_count(st, q.kind);
    const facts_record **seen = calloc(n + 1, sizeof *seen);
    size_t nseen = 0;
    char *cursor = NULL;
    int pages = 0, ok = 1;
    for (;;) {
        facts_page *page = NULL;
        facts_error err;
        q.cursor = cursor;
        facts_status s = facts_store_query(st, &q, &page, &err);
        if (s != FACTS_OK) {
            fprintf(stderr, "%s: %s %s\n", label, err.pointer, err.text);
            ok = 0;
            break;
        }
        pages++;
        ok &= facts_page_total(page) == expected;
        ok &= facts_page_count(page) <= (limit ? limit : FACTS_QUERY_LIMIT_DEFAULT);
        for (size_t i = 0; i < facts_page_count(page); i++) {
            const facts_record *r = facts_page_get(page, i);
            ok &= oracle_match(&q, r);
            for (size_t j = 0; j < nseen; j++)
                ok &= seen[j] != r;
            if (nseen > 0) {
                /* Check the sort order against the previous record. */
                const facts_record *prev = seen[nseen - 1];
                facts_date_range da, db;
                bool dated_a = facts_record_date(prev, &da) && da.precision != FACTS_PRECISION_UNKNOWN;
                bool dated_b = facts_record_date(r, &db) && db.precision != FACTS_PRECISION_UNKNOWN;
                switch (q.sort) {
                case FACTS_SORT_DATE_ASC:
                    ok &= !(dated_b && !dated_a) && !(dated_a && dated_b && db.first_day < da.first_day);
                    break;
                case FACTS_SORT_DATE_DESC:
                    ok &= !(dated_b && !dated_a) && !(dated_a && dated_b && db.first_day > da.first_day);
                    break;
                case FACTS_SORT_NAME_ASC:
                    ok &= strcasecmp(facts_record_name(prev), facts_record_name(r)) <= 0;
                    break;
                case FACTS_SORT_NAME_DESC:
                    ok &= strcasecmp(facts_record_name(prev), facts_record_name(r)) >= 0;
                    break;
                default:
                    break;
                }
            }
            if (nseen < n)
                seen[nseen++] = r;
        }
        free(cursor);
        cursor = facts_page_next(page) ? strdup(facts_page_next(page)) : NULL;
        ok &= facts_page_next(page) == NULL || facts_page_count(page) == (limit ? limit : 50);
        facts_page_free(page);
        if (!cursor || pages > 1000)
            break;
    }
    free(cursor);
    free(seen);
    ok &= nseen == expected;
    if (!ok)
        fprintf(stderr, "%s (limit %zu): visited %zu of %zu\n", label, limit, nseen, expected);
    CHECK(ok);
}

static void test_filters_and_pagination(void)
{
    static const struct {
        facts_kind kind;
        const char *actor, *type, *status, *subkind, *from, *to, *text;
        facts_sort sort;
        size_t min_expected; /* the article has at least this many */
    } cases[] = {
        {FACTS_KIND_ACTOR, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 10},
        {FACTS_KIND_ACTOR, NULL, NULL, NULL, "person", NULL, NULL, NULL, FACTS_SORT_NAME_DESC, 4},
        {FACTS_KIND_ACTOR, NULL, NULL, NULL, "state,news-agency", NULL, NULL, NULL, FACTS_SORT_NAME_ASC, 4},
        {FACTS_KIND_ACTOR, NULL, NULL, NULL, NULL, NULL, NULL, "mr. kim", FACTS_SORT_DEFAULT, 1},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 10},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DATE_DESC, 10},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_NAME_ASC, 10},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_NAME_DESC, 10},
        {FACTS_KIND_EVENT, "sergei-shoigu", NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 3},
        {FACTS_KIND_EVENT, "kim-jong-un", "visit,weapons-test", NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DATE_DESC, 1},
        {FACTS_KIND_EVENT, NULL, "visit", NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 2},
        {FACTS_KIND_EVENT, NULL, NULL, "speculated,expected", NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 1},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, "2024", "2024", NULL, FACTS_SORT_DEFAULT, 2},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, "2024-06-15", NULL, NULL, FACTS_SORT_DATE_ASC, 2},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, NULL, "2023-12-31", NULL, FACTS_SORT_DEFAULT, 1},
        {FACTS_KIND_EVENT, NULL, NULL, NULL, NULL, NULL, NULL, "PYONGYANG", FACTS_SORT_DEFAULT, 1},
        {FACTS_KIND_ESTIMATE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 2},
        {FACTS_KIND_ESTIMATE, "north-korea", NULL, NULL, "initial", NULL, NULL, NULL, FACTS_SORT_DEFAULT, 1},
        /* A season overlaps a window that touches it. */
        {FACTS_KIND_ESTIMATE, NULL, NULL, NULL, NULL, "2024-10-31", "2024-10-31", NULL, FACTS_SORT_DEFAULT, 1},
        {FACTS_KIND_SOURCE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, FACTS_SORT_DEFAULT, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        facts_query q;
        facts_query_init(&q, cases[c].kind);
        q.actor = cases[c].actor;
        q.type = cases[c].type;
        q.status = cases[c].status;
        q.subkind = cases[c].subkind;
        q.from = cases[c].from;
        q.to = cases[c].to;
        q.text = cases[c].text;
        q.sort = cases[c].sort;
        char label[64];
        snprintf(label, sizeof label, "case %zu", c);
        size_t expected = 0;
        for (size_t i = 0; i < facts_store_count(st, q.kind); i++)
            expected += oracle_match(&q, facts_store_at(st, q.kind, i));
        if (expected < cases[c].min_expected)
            fprintf(stderr, "%s: only %zu matches\n", label, expected);
        CHECK(expected >= cases[c].min_expected);
        static const size_t limits[] = {1, 2, 3, 7, 0, 500};
        for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
            walk(q, limits[l], label);
    }
}

static void test_season_overlap(void)
{
    /* The initial deployment is dated "last autumn" (a season): a window on
     * one day inside it finds it; the month after does not. */
    const facts_record *init = facts_store_find(st, FACTS_KIND_ESTIMATE, "initial-deployment");
    CHECK(init != NULL);
    facts_date_range r;
    CHECK(init && facts_record_date(init, &r) && r.precision == FACTS_PRECISION_SEASON);
    facts_query q;
    facts_query_init(&q, FACTS_KIND_ESTIMATE);
    q.from = q.to = "2024-11";
    facts_page *p = NULL;
    CHECK(facts_store_query(st, &q, &p, NULL) == FACTS_OK);
    bool found = false;
    for (size_t i = 0; p && i < facts_page_count(p); i++)
        found |= facts_page_get(p, i) == init;
    CHECK(found);
    facts_page_free(p);
    /* Both ends of the window are inclusive, to the day. */
    static const char *const edges[][2] = {{"2024-11-30", NULL}, {NULL, "2024-09-01"},
                                           {"2024-09-01", "2024-09-01"}};
    for (size_t e = 0; e < 3; e++) {
        q.from = edges[e][0];
        q.to = edges[e][1];
        p = NULL;
        CHECK(facts_store_query(st, &q, &p, NULL) == FACTS_OK);
        found = false;
        for (size_t i = 0; p && i < facts_page_count(p); i++)
            found |= facts_page_get(p, i) == init;
        CHECK(found);
        facts_page_free(p);
    }
    q.from = "2024-12-01";
    q.to = NULL;
    p = NULL;
    CHECK(facts_store_query(st, &q, &p, NULL) == FACTS_OK);
    for (size_t i = 0; p && i < facts_page_count(p); i++)
        CHECK(facts_page_get(p, i) != init);
    facts_page_free(p);
}

/* base64url of s, for hand-made cursors. */
static void b64url(const char *s, char *out, size_t size)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n && o + 5 < size; i += 3) {
        unsigned v = (unsigned)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = t[v & 63];
    }
    out[o] = '\0';
}

static void test_errors(void)
{
    /* A first-page cursor of all events with "|extra|more" appended. */
    char appended[1024] = "";
    {
        facts_query q0;
        facts_query_init(&q0, FACTS_KIND_EVENT);
        q0.limit = 1;
        facts_page *p0 = NULL;
        if (facts_store_query(st, &q0, &p0, NULL) == FACTS_OK && facts_page_next(p0)) {
            char raw[600];
            size_t len = 0;
            /* Decode by re-encoding: a cursor is base64url of text. */
            const char *c = facts_page_next(p0);
            static const char t[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            unsigned acc = 0;
            int bits = 0;
            for (; *c && len + 1 < sizeof raw; c++) {
                acc = (acc << 6) | (unsigned)(strchr(t, *c) - t);
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    raw[len++] = (char)((acc >> bits) & 0xff);
                }
            }
            raw[len] = '\0';
            char longer[700];
            snprintf(longer, sizeof longer, "%s|extra|more", raw);
            b64url(longer, appended, sizeof appended);
        }
        facts_page_free(p0);
    }
    CHECK(appended[0] != '\0');
    static const struct {
        facts_kind kind;
        const char *field, *value;
        facts_status status;
        const char *pointer;
    } cases[] = {
        {FACTS_KIND_ACTOR, "type", "visit", FACTS_EARG, "type"},
        {FACTS_KIND_ACTOR, "status", "occurred", FACTS_EARG, "status"},
        {FACTS_KIND_ACTOR, "actor", "russia", FACTS_EARG, "actor"},
        {FACTS_KIND_ACTOR, "from", "2024", FACTS_EARG, "from"},
        {FACTS_KIND_ACTOR, "sort", "date", FACTS_EARG, "sort"},
        {FACTS_KIND_SOURCE, "kind", "person", FACTS_EARG, "kind"},
        {FACTS_KIND_EVENT, "kind", "person", FACTS_EARG, "kind"},
        {FACTS_KIND_EVENT, "type", "picnic", FACTS_EARG, "type"},
        {FACTS_KIND_EVENT, "type", "visit,", FACTS_EARG, "type"},
        {FACTS_KIND_EVENT, "type", ",visit", FACTS_EARG, "type"},
        {FACTS_KIND_EVENT, "type", "visit,visit,visit,visit,visit,visit,visit,visit,visit,visit,"
                                   "visit,visit,visit,visit,visit,visit,visit", FACTS_EARG, "type"},
        {FACTS_KIND_EVENT, "status", "rumoured", FACTS_EARG, "status"},
        {FACTS_KIND_EVENT, "actor", "nobody", FACTS_ENOTFOUND, "actor"},
        {FACTS_KIND_EVENT, "from", "2024-13", FACTS_EARG, "from"},
        {FACTS_KIND_EVENT, "to", "June 2024", FACTS_EARG, "to"},
        {FACTS_KIND_EVENT, "q", "", FACTS_EARG, "q"},
        {FACTS_KIND_EVENT, "limit", "501", FACTS_EARG, "limit"},
        {FACTS_KIND_EVENT, "cursor", "!!!", FACTS_EARG, "cursor"},
        {FACTS_KIND_EVENT, "cursor", "MXx4", FACTS_EARG, "cursor"},
        /* A real cursor with fields appended. */
        {FACTS_KIND_EVENT, "cursor", "APPENDED", FACTS_EARG, "cursor"},
        {FACTS_KIND_ESTIMATE, "kind", "visit", FACTS_EARG, "kind"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        facts_query q;
        facts_query_init(&q, cases[c].kind);
        const char *f = cases[c].field, *v = cases[c].value;
        if (!strcmp(f, "type")) q.type = v;
        else if (!strcmp(f, "status")) q.status = v;
        else if (!strcmp(f, "actor")) q.actor = v;
        else if (!strcmp(f, "from")) q.from = v;
        else if (!strcmp(f, "to")) q.to = v;
        else if (!strcmp(f, "kind")) q.subkind = v;
        else if (!strcmp(f, "q")) q.text = v;
        else if (!strcmp(f, "cursor") && !strcmp(v, "APPENDED")) q.cursor = appended;
        else if (!strcmp(f, "cursor")) q.cursor = v;
        else if (!strcmp(f, "limit")) q.limit = 501;
        else if (!strcmp(f, "sort")) CHECK(facts_sort_parse(v, &q.sort) == FACTS_OK);
        facts_page *page = (facts_page *)(uintptr_t)0x1;
        facts_error err;
        facts_status s = facts_store_query(st, &q, &page, &err);
        if (s != cases[c].status || strcmp(err.pointer, cases[c].pointer) != 0)
            fprintf(stderr, "error case %zu: got %s at %s\n", c, facts_status_name(s), err.pointer);
        CHECK(s == cases[c].status);
        CHECK(s == FACTS_OK || strcmp(err.pointer, cases[c].pointer) == 0);
        CHECK(page == (facts_page *)(uintptr_t)0x1);
    }
    /* A search never spans two fields. */
    {
        facts_query tq;
        facts_query_init(&tq, FACTS_KIND_ACTOR);
        tq.text = "korea\npyongyang";
        facts_page *tp = NULL;
        facts_error terr;
        CHECK(facts_store_query(st, &tq, &tp, &terr) == FACTS_EARG && strcmp(terr.pointer, "q") == 0);
    }
    /* from after to. */
    facts_query q;
    facts_query_init(&q, FACTS_KIND_EVENT);
    q.from = "2025";
    q.to = "2024";
    facts_page *page = NULL;
    facts_error err;
    CHECK(facts_store_query(st, &q, &page, &err) == FACTS_EARG && page == NULL);
    /* A text search over the cap. */
    char longq[FACTS_QUERY_TEXT_MAX + 2];
    memset(longq, 'a', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    facts_query_init(&q, FACTS_KIND_EVENT);
    q.text = longq;
    CHECK(facts_store_query(st, &q, &page, &err) == FACTS_EARG && strcmp(err.pointer, "q") == 0);
    /* Sort names. */
    facts_sort s = FACTS_SORT_NAME_ASC;
    CHECK(facts_sort_parse("-date", &s) == FACTS_OK && s == FACTS_SORT_DATE_DESC);
    CHECK(facts_sort_parse("date ", &s) == FACTS_EARG && s == FACTS_SORT_DATE_DESC);
    CHECK(facts_sort_parse(NULL, &s) == FACTS_EARG);
}

/* A cursor belongs to its query: another filter or sort refuses it; the same
 * query on another store with the same records continues where it stopped. */
static void test_cursor_scope(const char *data_dir)
{
    facts_query q;
    facts_query_init(&q, FACTS_KIND_EVENT);
    q.limit = 3;
    facts_page *p1 = NULL;
    CHECK(facts_store_query(st, &q, &p1, NULL) == FACTS_OK);
    if (!p1 || !facts_page_next(p1)) {
        CHECK(0);
        facts_page_free(p1);
        return;
    }
    facts_query other = q;
    other.cursor = facts_page_next(p1);
    other.sort = FACTS_SORT_NAME_ASC;
    facts_page *p2 = NULL;
    facts_error err;
    CHECK(facts_store_query(st, &other, &p2, &err) == FACTS_EARG && strcmp(err.pointer, "cursor") == 0);
    other = q;
    other.cursor = facts_page_next(p1);
    other.type = "visit";
    CHECK(facts_store_query(st, &other, &p2, &err) == FACTS_EARG);
    /* Filters that differ only in how their bytes are split still differ. */
    {
        facts_query a, b;
        facts_query_init(&a, FACTS_KIND_EVENT);
        a.actor = "russia";
        a.text = "a";
        a.limit = 1;
        facts_page *pa = NULL, *pb = NULL;
        CHECK(facts_store_query(st, &a, &pa, NULL) == FACTS_OK);
        if (pa && facts_page_next(pa)) {
            const facts_record *ru = facts_store_find(st, FACTS_KIND_ACTOR, "russia");
            char text[64];
            snprintf(text, sizeof text, "%sa", ru ? facts_record_id(ru) : "");
            facts_query_init(&b, FACTS_KIND_EVENT);
            b.text = text;
            b.cursor = facts_page_next(pa);
            CHECK(facts_store_query(st, &b, &pb, &err) == FACTS_EARG);
        } else {
            CHECK(0);
        }
        facts_page_free(pa);
        facts_page_free(pb);
    }
    /* A different limit is the same query. */
    other = q;
    other.cursor = facts_page_next(p1);
    other.limit = 500;
    CHECK(facts_store_query(st, &other, &p2, &err) == FACTS_OK);
    size_t rest = p2 ? facts_page_count(p2) : 0;
    CHECK(rest + 3 == facts_store_count(st, FACTS_KIND_EVENT));
    /* The same cursor on a second load of the same data. */
    facts_store *st2 = NULL;
    CHECK(facts_store_load_embedded(&st2, NULL) == FACTS_OK);
    facts_page *p3 = NULL;
    CHECK(st2 && facts_store_query(st2, &other, &p3, NULL) == FACTS_OK);
    if (p2 && p3) {
        CHECK(facts_page_count(p3) == rest);
        for (size_t i = 0; i < rest && i < facts_page_count(p3); i++)
            CHECK_STR(facts_record_id(facts_page_get(p3, i)), facts_record_id(facts_page_get(p2, i)));
    }
    facts_page_free(p1);
    facts_page_free(p2);
    facts_page_free(p3);
    facts_store_unref(st2);
    (void)data_dir;
}

static void test_summary(void)
{
    /* Expected sums computed from the records themselves. */
    int64_t low = 0, high = 0, ilow = 0, ihigh = 0;
    size_t count = facts_store_count(st, FACTS_KIND_ESTIMATE);
    for (size_t i = 0; i < count; i++) {
        const facts_record *r = facts_store_at(st, FACTS_KIND_ESTIMATE, i);
        int64_t l, h;
        CHECK(facts_estimate_bounds(r, &l, &h) && l <= h);
        low += l;
        high += h;
        if (strcmp(json_string_value(json_object_get(facts_record_json(r), "kind")), "initial") == 0) {
            ilow += l;
            ihigh += h;
        }
    }
    facts_query q;
    facts_query_init(&q, FACTS_KIND_ESTIMATE);
    facts_summary sum = {-1, -1, 0};
    facts_page *page = NULL;
    CHECK(facts_store_summarize(st, &q, &sum, &page, NULL) == FACTS_OK);
    CHECK(sum.low == low && sum.high == high && sum.count == count);
    CHECK(page && facts_page_count(page) == count && facts_page_total(page) == count);
    facts_page_free(page);
    /* The article's two estimates: 10,000-12,000 and 1,000-3,000. */
    CHECK(sum.low == 11000 && sum.high == 15000);
    q.subkind = "initial";
    CHECK(facts_store_summarize(st, &q, &sum, NULL, NULL) == FACTS_OK);
    CHECK(sum.low == ilow && sum.high == ihigh && sum.count == 1);
    q.actor = "nobody";
    facts_summary before = sum;
    CHECK(facts_store_summarize(st, &q, &sum, NULL, NULL) == FACTS_ENOTFOUND);
    CHECK(sum.low == before.low && sum.high == before.high);
    facts_query_init(&q, FACTS_KIND_EVENT);
    CHECK(facts_store_summarize(st, &q, &sum, NULL, NULL) == FACTS_EARG);
    /* Non-estimates have no bounds. */
    int64_t l = 7, h = 7;
    CHECK(!facts_estimate_bounds(facts_store_at(st, FACTS_KIND_ACTOR, 0), &l, &h) && l == 7);
}

static void test_involvement(void)
{
    const facts_record *nk = facts_store_find(st, FACTS_KIND_ACTOR, "north-korea");
    const facts_record *est = facts_store_find(st, FACTS_KIND_ESTIMATE, "initial-deployment");
    CHECK(nk && est && facts_record_involves(est, nk));
    CHECK(nk && facts_record_involves(nk, nk));
    facts_date_range r = {FACTS_PRECISION_DAY, 1, 1};
    CHECK(nk && !facts_record_date(nk, &r) && r.first_day == 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_query DATA_DIR\n");
        return 2;
    }
    facts_error err;
    if (facts_store_load_embedded(&st, &err) != FACTS_OK) {
        fprintf(stderr, "cannot load the embedded dataset: %s\n", err.text);
        return 1;
    }
    test_filters_and_pagination();
    test_season_overlap();
    test_errors();
    test_cursor_scope(argv[1]);
    test_summary();
    test_involvement();
    facts_store_unref(st);
    return check_done("test_query");
}
