/*
 * fuzz_params.c - the read API's query parameters (server/params.c), the
 * path matching that decides which of them a route takes
 * (factsd_route_parse in server/routes.c), and the change feed's query
 * (factsd_feed_query_parse in server/feed.c).
 *
 * Input layout:
 *   byte 0  bits 0-1: 0 a whole target ("/path?query") as the server sees
 *           it once the request rules passed it (other targets are left
 *           out): its route, the parameters that route takes; 1 a query
 *           with the parameters of byte 1 and 2 allowed; 2 the change feed's
 *           query; 3 the same query read both ways with every parameter
 *           allowed. bit 2: the collection sorts by date (modes 1 and 3)
 *   byte 1  (mode 1) allowed parameters 0-7 (bit i: factsd_param_id i);
 *           (mode 2) the room for offending parameters, 0-8
 *   byte 2  (mode 1) allowed parameters 8-11 (bits 0-3)
 *   rest    the target or the query, without '?'
 *
 * Checked besides the sanitizers (the query is handed over in a buffer of
 * exactly its size): the parse is the same twice; only allowed parameters
 * have values, each in the struct's store, NUL-terminated, UTF-8 without a
 * control byte; limit, format and sort are in range and limit is the value
 * given; the offending names are unique, at most FACTSD_PROBLEM_PARAMS_MAX,
 * UTF-8, with a reason; an accepted query's canonical form parses to the
 * same parameters and is its own canonical form, and the form without the
 * cursor is the same less the cursor. A route's key is a decoded segment
 * (not empty, no '/', not a dot segment) and only a route has an Allow
 * value. The feed's query keeps its ranges, writes no more entries than
 * its room (the count may go beyond it), counts the same with more room,
 * and an accepted one printed back parses to the same values.
 */
#include "fuzz.h"

#include "feed.h"
#include "params.h"
#include "routes.h"
#include "text.h"

#include <inttypes.h>

enum {
    INPUT_MAX = 3 * FACTSD_TARGET_MAX
};

static char *dup_exact(const unsigned char *s, size_t n)
{
    char *d = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(d != NULL, "out of memory");
    if (n > 0)
        memcpy(d, s, n);
    return d;
}

static bool clean_utf8(const char *s)
{
    for (const char *c = s; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    }
    return factsd_text_utf8_valid(s, strlen(s));
}

/* Whether p names an offending parameter name. */
static bool has_error(const factsd_params *p, const char *name)
{
    for (size_t i = 0; i < p->nerrors; i++) {
        if (strcmp(p->errors[i].name, name) == 0)
            return true;
    }
    return false;
}

static void check_params(const factsd_params *p, unsigned allowed)
{
    FUZZ_CHECK(p->nerrors <= FACTSD_PROBLEM_PARAMS_MAX, "%zu errors", p->nerrors);
    FUZZ_CHECK(p->used <= sizeof p->store, "store used %zu", p->used);
    for (size_t i = 0; i < p->nerrors; i++) {
        const factsd_problem_param *e = &p->errors[i];
        FUZZ_CHECK(fuzz_terminated(e->name, sizeof e->name) &&
                       fuzz_terminated(e->reason, sizeof e->reason),
                   "error %zu not terminated", i);
        FUZZ_CHECK(e->name[0] != '\0' && e->reason[0] != '\0', "error %zu empty", i);
        FUZZ_CHECK(factsd_text_utf8_valid(e->name, strlen(e->name)) &&
                       factsd_text_utf8_valid(e->reason, strlen(e->reason)),
                   "error %zu not UTF-8", i);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(p->errors[j].name, e->name) != 0, "\"%s\" twice", e->name);
    }
    for (int k = 0; k < FACTSD_PARAM_COUNT; k++) {
        const char *v = p->value[k];
        if (v == NULL)
            continue;
        FUZZ_CHECK(allowed & FACTSD_PARAM_BIT(k), "%s given but not allowed",
                   factsd_params_name((factsd_param_id)k));
        FUZZ_CHECK(v >= p->store && v < p->store + p->used, "%s outside the store",
                   factsd_params_name((factsd_param_id)k));
        size_t room = (size_t)(p->store + sizeof p->store - v);
        FUZZ_CHECK(memchr(v, '\0', room) != NULL, "%s not terminated",
                   factsd_params_name((factsd_param_id)k));
        FUZZ_CHECK(clean_utf8(v), "%s holds a control byte or is not UTF-8",
                   factsd_params_name((factsd_param_id)k));
    }
    FUZZ_CHECK(p->limit >= 1 && p->limit <= FACTS_QUERY_LIMIT_MAX, "limit %zu", p->limit);
    FUZZ_CHECK((unsigned)p->format < FACTSD_PARAMS_FORMAT_COUNT, "format %d", (int)p->format);
    FUZZ_CHECK(factsd_params_format_name(p->format) != NULL, "format name");
    /* A value refused while the list was full has no entry: nothing to
     * compare then (the query is refused all the same). */
    bool full = p->nerrors == FACTSD_PROBLEM_PARAMS_MAX;
    const char *limit = p->value[FACTSD_PARAM_LIMIT];
    if (limit != NULL && !full && !has_error(p, "limit")) {
        long long n = 0;
        FUZZ_CHECK(factsd_text_parse_int(limit, 1, FACTS_QUERY_LIMIT_MAX, &n) &&
                       (size_t)n == p->limit,
                   "limit \"%s\" gave %zu", limit, p->limit);
    }
    if (p->value[FACTSD_PARAM_FORMAT] != NULL && !full && !has_error(p, "format"))
        FUZZ_CHECK(strcmp(p->value[FACTSD_PARAM_FORMAT], factsd_params_format_name(p->format)) == 0,
                   "format \"%s\" gave %d", p->value[FACTSD_PARAM_FORMAT], (int)p->format);
}

static bool params_equal(const factsd_params *a, const factsd_params *b, bool with_cursor)
{
    for (int k = 0; k < FACTSD_PARAM_COUNT; k++) {
        if (k == FACTSD_PARAM_CURSOR && !with_cursor)
            continue;
        if ((a->value[k] == NULL) != (b->value[k] == NULL))
            return false;
        if (a->value[k] != NULL && strcmp(a->value[k], b->value[k]) != 0)
            return false;
    }
    return a->limit == b->limit && a->sort == b->sort && a->pretty == b->pretty &&
           a->format == b->format;
}

static char *canonical(const factsd_params *p, bool with_cursor, size_t *len)
{
    factsd_buf b;
    factsd_buf_init(&b, 4 * FACTSD_TARGET_MAX);
    FUZZ_CHECK(factsd_params_put_canonical(&b, p, with_cursor), "canonical form failed");
    char *s = factsd_buf_steal(&b, len);
    FUZZ_CHECK(s != NULL, "out of memory");
    return s;
}

static void fuzz_params(const char *query, size_t len, unsigned allowed, bool dated)
{
    static factsd_params p, again, round; /* large: not on the stack */
    p.dated = dated;
    factsd_params_parse(&p, query, len, allowed);
    check_params(&p, allowed);
    again.dated = dated;
    factsd_params_parse(&again, query, len, allowed);
    FUZZ_CHECK(params_equal(&p, &again, true) && p.nerrors == again.nerrors,
               "two parses differ");
    for (size_t i = 0; i < p.nerrors; i++)
        FUZZ_CHECK(strcmp(p.errors[i].name, again.errors[i].name) == 0 &&
                       strcmp(p.errors[i].reason, again.errors[i].reason) == 0,
                   "two parses differ in error %zu", i);
    if (len == 0)
        FUZZ_CHECK(!factsd_params_any(&p) && p.nerrors == 0, "an empty query gives something");
    if (p.nerrors > 0)
        return;
    size_t clen = 0;
    char *c = canonical(&p, true, &clen);
    round.dated = dated;
    factsd_params_parse(&round, c, clen, allowed);
    FUZZ_CHECK(round.nerrors == 0, "the canonical form \"%s\" is refused: %s %s", c,
               round.nerrors ? round.errors[0].name : "",
               round.nerrors ? round.errors[0].reason : "");
    FUZZ_CHECK(params_equal(&p, &round, true), "the canonical form \"%s\" parses otherwise", c);
    size_t c2len = 0;
    char *c2 = canonical(&round, true, &c2len);
    FUZZ_CHECK(c2len == clen && strcmp(c, c2) == 0, "canonical twice: \"%s\", \"%s\"", c, c2);
    char *link = factsd_params_canonical(&p);
    FUZZ_CHECK(link != NULL, "out of memory");
    factsd_params_parse(&round, link, strlen(link), allowed);
    FUZZ_CHECK(round.nerrors == 0 && round.value[FACTSD_PARAM_CURSOR] == NULL &&
                   params_equal(&p, &round, false),
               "the link's query \"%s\" parses otherwise", link);
    FUZZ_CHECK(factsd_params_any(&p) == (clen > 0), "any vs \"%s\"", c);
    free(link);
    free(c2);
    free(c);
}

static void fuzz_route(const unsigned char *data, size_t size)
{
    if (size > FACTSD_TARGET_MAX || !factsd_text_pct_valid((const char *)data, size))
        return; /* the request rules refuse it before routing */
    char *t = dup_exact(data, size);
    factsd_route r;
    memset(&r, 0xa5, sizeof r);
    factsd_route_parse(t, size, &r);
    FUZZ_CHECK((unsigned)r.id <= FACTSD_ROUTE_READY, "route %d", (int)r.id);
    FUZZ_CHECK((factsd_route_allow(&r) == NULL) == (r.id == FACTSD_ROUTE_NONE), "Allow");
    if (r.id == FACTSD_ROUTE_ITEM || r.id == FACTSD_ROUTE_ACTOR_SUB) {
        FUZZ_CHECK(fuzz_terminated(r.key, sizeof r.key), "key not terminated");
        FUZZ_CHECK(r.key[0] != '\0' && strchr(r.key, '/') == NULL && strcmp(r.key, ".") != 0 &&
                       strcmp(r.key, "..") != 0,
                   "key \"%s\"", r.key);
    }
    unsigned allowed = factsd_params_allowed(&r);
    FUZZ_CHECK(allowed < FACTSD_PARAM_BIT(FACTSD_PARAM_COUNT), "allowed %#x", allowed);
    if (r.id == FACTSD_ROUTE_ASSET)
        FUZZ_CHECK(allowed == 0, "the dashboard's files take parameters");
    else
        FUZZ_CHECK(allowed & FACTSD_PARAM_BIT(FACTSD_PARAM_PRETTY), "no pretty");
    const char *q = memchr(t, '?', size);
    bool dated = r.kind == FACTS_KIND_EVENT || r.kind == FACTS_KIND_ESTIMATE;
    if (q != NULL)
        fuzz_params(q + 1, size - (size_t)(q - t) - 1, allowed, dated);
    free(t);
}

static void fuzz_feed(const char *query, size_t len, size_t cap)
{
    factsd_problem_param bad[FACTSD_PROBLEM_PARAMS_MAX + 1];
    factsd_problem_param more[FACTSD_PROBLEM_PARAMS_MAX];
    memset(bad, 0x5a, sizeof bad);
    factsd_feed_query q, q2;
    size_t n = factsd_feed_query_parse(query, len, &q, bad, cap);
    size_t written = n < cap ? n : cap;
    for (size_t i = 0; i < written; i++)
        FUZZ_CHECK(fuzz_terminated(bad[i].name, sizeof bad[i].name) &&
                       fuzz_terminated(bad[i].reason, sizeof bad[i].reason) &&
                       bad[i].name[0] != '\0' && bad[i].reason[0] != '\0',
                   "entry %zu", i);
    for (size_t i = written; i < FACTSD_PROBLEM_PARAMS_MAX + 1; i++)
        FUZZ_CHECK(bad[i].name[0] == 0x5a, "entry %zu written beyond the room %zu", i, cap);
    size_t n2 = factsd_feed_query_parse(query, len, &q2, more, FACTSD_PROBLEM_PARAMS_MAX);
    FUZZ_CHECK(n2 == n, "%zu offending with room %zu, %zu with more", n, cap, n2);
    for (size_t i = 0; i < written; i++)
        FUZZ_CHECK(strcmp(bad[i].name, more[i].name) == 0 &&
                       strcmp(bad[i].reason, more[i].reason) == 0,
                   "entry %zu differs with more room", i);
    if (n > 0)
        return;
    FUZZ_CHECK(q.limit >= 1 && q.limit <= FACTSD_FEED_LIMIT_MAX && q.wait <= FACTSD_FEED_WAIT_MAX &&
                   q.since <= INT64_MAX,
                   "since %" PRIu64 ", limit %zu, wait %u", q.since, q.limit, q.wait);
    FUZZ_CHECK(q2.since == q.since && q2.limit == q.limit && q2.wait == q.wait, "two parses");
    char printed[96];
    int plen = snprintf(printed, sizeof printed, "since=%" PRIu64 "&limit=%zu&wait=%u", q.since,
                        q.limit, q.wait);
    FUZZ_CHECK(plen > 0 && (size_t)plen < sizeof printed, "printed");
    n2 = factsd_feed_query_parse(printed, (size_t)plen, &q2, more, FACTSD_PROBLEM_PARAMS_MAX);
    FUZZ_CHECK(n2 == 0 && q2.since == q.since && q2.limit == q.limit && q2.wait == q.wait,
               "\"%s\" parses otherwise", printed);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 3 || size > INPUT_MAX)
        return 0;
    unsigned mode = data[0] & 3;
    bool dated = (data[0] & 4) != 0;
    const unsigned char *rest = data + 3;
    size_t len = size - 3;
    if (mode == 0) {
        fuzz_route(rest, len);
        return 0;
    }
    char *query = dup_exact(rest, len);
    if (mode == 1) {
        unsigned allowed = data[1] | ((unsigned)(data[2] & 0x0f) << 8);
        fuzz_params(query, len, allowed, dated);
    } else if (mode == 2) {
        fuzz_feed(query, len, data[1] % 9);
    } else {
        fuzz_params(query, len, FACTSD_PARAM_BIT(FACTSD_PARAM_COUNT) - 1, dated);
        fuzz_feed(query, len, 8);
    }
    free(query);
    return 0;
}
