/*
 * routes.c - the read API's routes (see routes.h); its query parameters
 * are params.c's.
 *
 * Routing works on the raw target: the path is split on '/' first and each
 * segment decoded afterwards, so an encoded slash stays inside its segment,
 * and dot segments (".", "..", "%2e%2e") and empty segments match no route.
 */
#include "routes.h"

#include "negotiate.h"
#include "params.h"
#include "problem.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SEGMENTS_MAX = 6,   /* path segments of the longest route */
    SEGMENT_LEN = FACTSD_ROUTE_KEY_MAX /* decoded bytes of one segment */
};

/* The media types of a collection's formats (indexed by
 * factsd_params_format): the types Accept names. */
static const struct {
    const char *type;
    factsd_media media;
} formats[FACTSD_PARAMS_FORMAT_COUNT] = {
    [FACTSD_PARAMS_FORMAT_JSON] = {"application/json", FACTSD_MEDIA_JSON},
    [FACTSD_PARAMS_FORMAT_CSV] = {"text/csv", FACTSD_MEDIA_CSV},
    [FACTSD_PARAMS_FORMAT_NDJSON] = {"application/x-ndjson", FACTSD_MEDIA_NDJSON},
};

#define BIT(p) FACTSD_PARAM_BIT(p)

void factsd_route_parse(const char *target, size_t len, factsd_route *r)
{
    const char *qmark = memchr(target, '?', len);
    const char *path = target;
    if (qmark != NULL)
        len = (size_t)(qmark - target);
    char seg[SEGMENTS_MAX][SEGMENT_LEN];
    size_t nseg = 0;
    r->id = FACTSD_ROUTE_NONE;
    if (len == 0 || path[0] != '/')
        return;
    if (len == 1) {
        r->id = FACTSD_ROUTE_ASSET;
        r->asset = FACTSD_ASSET_PAGE;
        return;
    }
    size_t i = 1;
    for (;;) {
        const char *s = path + i;
        const char *slash = memchr(s, '/', len - i);
        size_t slen = slash != NULL ? (size_t)(slash - s) : len - i;
        if (nseg == SEGMENTS_MAX)
            return;
        size_t dn = slen;
        if (memchr(s, '%', slen) == NULL && slen < SEGMENT_LEN) {
            /* Nothing to decode (the caller has refused control bytes). */
            memcpy(seg[nseg], s, slen);
            seg[nseg][slen] = '\0';
        } else if (!factsd_text_pct_decode(s, slen, false, seg[nseg], SEGMENT_LEN, &dn)) {
            return;
        }
        if (dn == 0 || memchr(seg[nseg], '/', dn) != NULL || strcmp(seg[nseg], ".") == 0 ||
            strcmp(seg[nseg], "..") == 0)
            return;
        nseg++;
        if (slash == NULL)
            break;
        i += slen + 1;
    }
    if (strcmp(seg[0], "dashboard") == 0) {
        static const char *const files[FACTSD_ASSET_COUNT] = {
            [FACTSD_ASSET_PAGE] = "", [FACTSD_ASSET_SCRIPT] = "app.js",
            [FACTSD_ASSET_STYLE] = "app.css"};
        for (int a = 0; a < FACTSD_ASSET_COUNT; a++) {
            if ((nseg == 1 && a == FACTSD_ASSET_PAGE) ||
                (nseg == 2 && a != FACTSD_ASSET_PAGE && strcmp(seg[1], files[a]) == 0)) {
                r->id = FACTSD_ROUTE_ASSET;
                r->asset = (factsd_asset)a;
            }
        }
        return;
    }
    if (nseg == 1) {
        if (strcmp(seg[0], "healthz") == 0)
            r->id = FACTSD_ROUTE_HEALTH;
        else if (strcmp(seg[0], "readyz") == 0)
            r->id = FACTSD_ROUTE_READY;
        else if (strcmp(seg[0], "metrics") == 0)
            r->id = FACTSD_ROUTE_METRICS;
        else if (strcmp(seg[0], "openapi.json") == 0)
            r->id = FACTSD_ROUTE_OPENAPI;
        else if (strcmp(seg[0], "v1") == 0)
            r->id = FACTSD_ROUTE_INDEX;
        return;
    }
    if (nseg == 3 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "admin") == 0 &&
        strcmp(seg[2], "compact") == 0) {
        r->id = FACTSD_ROUTE_COMPACT;
        return;
    }
    if (nseg == 2 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "changes") == 0) {
        r->id = FACTSD_ROUTE_CHANGES;
        return;
    }
    if (nseg == 2 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "stream") == 0) {
        r->id = FACTSD_ROUTE_STREAM;
        return;
    }
    if (nseg == 2 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "snapshot") == 0) {
        r->id = FACTSD_ROUTE_SNAPSHOT;
        return;
    }
    if (strcmp(seg[0], "v1") != 0 || facts_kind_from_collection(seg[1], &r->kind) != FACTS_OK)
        return;
    if (nseg == 2) {
        r->id = FACTSD_ROUTE_COLLECTION;
    } else if (nseg == 3) {
        r->id = r->kind == FACTS_KIND_ESTIMATE && strcmp(seg[2], "summary") == 0
                    ? FACTSD_ROUTE_SUMMARY
                    : FACTSD_ROUTE_ITEM;
        memcpy(r->key, seg[2], sizeof r->key);
    } else if (nseg == 4 && r->kind == FACTS_KIND_ACTOR) {
        if (strcmp(seg[3], "events") == 0)
            r->kind = FACTS_KIND_EVENT;
        else if (strcmp(seg[3], "troop-estimates") == 0)
            r->kind = FACTS_KIND_ESTIMATE;
        else
            return;
        r->id = FACTSD_ROUTE_ACTOR_SUB;
        memcpy(r->key, seg[2], sizeof r->key);
    }
}

factsd_feed_route factsd_route_feed(const factsd_route *r)
{
    return r->id == FACTSD_ROUTE_CHANGES  ? FACTSD_FEED_ROUTE_CHANGES
           : r->id == FACTSD_ROUTE_STREAM ? FACTSD_FEED_ROUTE_STREAM
                                          : FACTSD_FEED_ROUTE_NONE;
}

factsd_write_route factsd_route_write(const factsd_route *r, facts_kind *kind)
{
    switch (r->id) {
    case FACTSD_ROUTE_NONE:
        return FACTSD_WRITE_ROUTE_NONE;
    case FACTSD_ROUTE_COMPACT:
        return FACTSD_WRITE_ROUTE_COMPACT;
    case FACTSD_ROUTE_COLLECTION:
    case FACTSD_ROUTE_ITEM:
        if (r->kind == FACTS_KIND_SOURCE)
            return FACTSD_WRITE_ROUTE_READ_ONLY;
        *kind = r->kind;
        return r->id == FACTSD_ROUTE_COLLECTION ? FACTSD_WRITE_ROUTE_COLLECTION
                                                : FACTSD_WRITE_ROUTE_ITEM;
    default:
        return FACTSD_WRITE_ROUTE_READ_ONLY;
    }
}

const char *factsd_route_allow(const factsd_route *r)
{
    facts_kind kind;
    switch (factsd_route_write(r, &kind)) {
    case FACTSD_WRITE_ROUTE_NONE:
        return NULL;
    case FACTSD_WRITE_ROUTE_COLLECTION:
        return "GET, HEAD, OPTIONS, POST";
    case FACTSD_WRITE_ROUTE_ITEM:
        return "GET, HEAD, OPTIONS, PUT, PATCH, DELETE";
    case FACTSD_WRITE_ROUTE_COMPACT:
        return "OPTIONS, POST";
    case FACTSD_WRITE_ROUTE_READ_ONLY:
        break;
    }
    return "GET, HEAD, OPTIONS";
}

static void answer_problem(factsd_answer *out, factsd_problem_kind kind, const char *detail,
                           const factsd_problem_param *params, size_t count)
{
    out->status = factsd_problem_status(kind);
    out->own = factsd_problem_new(kind, detail, params, count);
    out->repr = out->own;
    if (out->own == NULL)
        out->status = 500;
}

static void answer_internal(factsd_answer *out)
{
    answer_problem(out, FACTSD_PROBLEM_INTERNAL, "the server ran out of memory", NULL, 0);
}

/* Answers with body (owned; NULL means out of memory) in media and link
 * (owned); negotiated: one of a collection's formats. */
static void answer_media(factsd_answer *out, char *body, size_t len, char *link,
                         factsd_media media, bool negotiated, bool pretty)
{
    if (body != NULL && pretty && media == FACTSD_MEDIA_JSON) {
        size_t plen;
        char *p = factsd_render_pretty(body, len, &plen);
        free(body);
        body = p;
        len = plen;
    }
    out->own = factsd_repr_new(body, len, media, link);
    if (out->own == NULL) {
        answer_internal(out);
        return;
    }
    if (negotiated)
        factsd_repr_set_negotiated(out->own);
    out->status = 200;
    out->repr = out->own;
}

static void answer_body(factsd_answer *out, char *body, size_t len, char *link, bool pretty)
{
    answer_media(out, body, len, link, FACTSD_MEDIA_JSON, false, pretty);
}

/* Answers with a cached representation, indented when pretty. */
static void answer_cached(factsd_answer *out, const factsd_repr *r, bool pretty)
{
    if (!pretty) {
        out->status = 200;
        out->repr = r;
        return;
    }
    size_t len;
    const char *body = factsd_repr_body(r, &len);
    const char *link = factsd_repr_link(r);
    char *copy = NULL;
    if (link != NULL && (copy = strdup(link)) == NULL) {
        answer_internal(out);
        return;
    }
    size_t plen = 0;
    char *indented = factsd_render_pretty(body, len, &plen);
    answer_body(out, indented, plen, copy, false);
}

static void answer_bad_params(factsd_answer *out, const factsd_params *p)
{
    answer_problem(out, FACTSD_PROBLEM_INVALID_PARAMETERS,
                   p->nerrors == 1 ? "a query parameter is not valid here"
                                   : "some query parameters are not valid here",
                   p->errors, p->nerrors);
}

/* The URL name of the query argument a core error names. */
static const char *core_param_name(const char *pointer)
{
    if (strcmp(pointer, "text") == 0)
        return "q";
    if (strcmp(pointer, "subkind") == 0)
        return "kind";
    for (int k = 0; k < FACTSD_PARAM_COUNT; k++) {
        if (strcmp(pointer, factsd_params_name(k)) == 0)
            return factsd_params_name(k);
    }
    return "(query)";
}

/* Sets the filters and paging of q that p gives, among which. */
static void query_apply(facts_query *q, const factsd_params *p, unsigned which)
{
    const char *const *v = p->value;
    if ((which & BIT(FACTSD_PARAM_ACTOR)) && v[FACTSD_PARAM_ACTOR] != NULL)
        q->actor = v[FACTSD_PARAM_ACTOR];
    if ((which & BIT(FACTSD_PARAM_TYPE)) && v[FACTSD_PARAM_TYPE] != NULL)
        q->type = v[FACTSD_PARAM_TYPE];
    if ((which & BIT(FACTSD_PARAM_STATUS)) && v[FACTSD_PARAM_STATUS] != NULL)
        q->status = v[FACTSD_PARAM_STATUS];
    if ((which & BIT(FACTSD_PARAM_KIND)) && v[FACTSD_PARAM_KIND] != NULL)
        q->subkind = v[FACTSD_PARAM_KIND];
    if ((which & BIT(FACTSD_PARAM_FROM)) && v[FACTSD_PARAM_FROM] != NULL)
        q->from = v[FACTSD_PARAM_FROM];
    if ((which & BIT(FACTSD_PARAM_TO)) && v[FACTSD_PARAM_TO] != NULL)
        q->to = v[FACTSD_PARAM_TO];
    if ((which & BIT(FACTSD_PARAM_Q)) && v[FACTSD_PARAM_Q] != NULL)
        q->text = v[FACTSD_PARAM_Q];
    if ((which & BIT(FACTSD_PARAM_CURSOR)) && v[FACTSD_PARAM_CURSOR] != NULL)
        q->cursor = v[FACTSD_PARAM_CURSOR];
    if (which & BIT(FACTSD_PARAM_SORT))
        q->sort = p->sort;
    if (which & BIT(FACTSD_PARAM_LIMIT))
        q->limit = p->limit;
}

/* Runs q (a page query, or a summary when summary is true). */
static facts_status query_run(const facts_store *store, const facts_query *q, bool summary,
                              facts_page **page, facts_summary *sum, facts_error *err)
{
    if (summary)
        return facts_store_summarize(store, q, sum, page, err);
    return facts_store_query(store, q, page, err);
}

/* Finds each filter that the core refuses on its own, so the answer can list
 * every offending parameter, then adds the one the core named in first (the
 * error of the whole query; NULL when it was not run). */
static void collect_core_errors(factsd_params *p, const facts_store *store, const facts_query *base,
                                bool summary, const facts_error *first)
{
    static const factsd_param_id filters[] = {FACTSD_PARAM_ACTOR, FACTSD_PARAM_TYPE,
                                              FACTSD_PARAM_STATUS, FACTSD_PARAM_KIND,
                                              FACTSD_PARAM_FROM, FACTSD_PARAM_TO,
                                              FACTSD_PARAM_Q};
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        factsd_param_id id = filters[i];
        if (p->value[id] == NULL)
            continue;
        facts_query q = *base;
        query_apply(&q, p, BIT(id));
        facts_page *page = NULL;
        facts_summary sum;
        facts_error err;
        facts_status st = query_run(store, &q, summary, &page, &sum, &err);
        facts_page_free(page);
        if (st == FACTS_EARG)
            factsd_params_error(p, factsd_params_name(id),
                                err.text[0] ? err.text : "is not valid");
        else if (st == FACTS_ENOTFOUND && id == FACTSD_PARAM_ACTOR)
            factsd_params_error(p, "actor", "names no actor");
    }
    if (first == NULL)
        return;
    if (first->status == FACTS_ENOTFOUND)
        factsd_params_error(p, "actor", "names no actor");
    else
        factsd_params_error(p, core_param_name(first->pointer),
                     first->text[0] ? first->text : "is not valid");
}

/* GET of a collection, a sub-collection or the summary. */
static void answer_query(const factsd_view *v, const factsd_route *r, const facts_record *actor,
                         factsd_params *p, factsd_answer *out)
{
    const facts_store *store = factsd_view_store(v);
    bool summary = r->id == FACTSD_ROUTE_SUMMARY;
    factsd_media media = formats[p->format].media;
    if (!factsd_params_any(p) && p->nerrors == 0) {
        if (summary) {
            answer_cached(out, factsd_view_summary(v), false);
            return;
        }
        if (r->id == FACTSD_ROUTE_COLLECTION) {
            answer_cached(out, factsd_view_first_page(v, r->kind), false);
            return;
        }
    }
    facts_query base;
    facts_query_init(&base, r->kind);
    if (actor != NULL)
        base.actor = facts_record_id(actor);
    if (p->nerrors > 0) {
        /* Some values were refused already; name the filters the core
         * refuses as well, so one answer lists every offending parameter. */
        collect_core_errors(p, store, &base, summary, NULL);
        answer_bad_params(out, p);
        return;
    }
    facts_query q = base;
    query_apply(&q, p, ~0u);
    facts_page *page = NULL;
    facts_summary sum;
    facts_error err;
    facts_status st = query_run(store, &q, summary, &page, &sum, &err);
    if (st == FACTS_ENOMEM) {
        answer_internal(out);
        return;
    }
    if (st != FACTS_OK) {
        collect_core_errors(p, store, &base, summary, &err);
        answer_bad_params(out, p);
        return;
    }
    size_t len = 0;
    char *body;
    char *link = NULL;
    if (summary) {
        body = factsd_view_render_summary(v, &sum, page, &len);
    } else {
        body = factsd_view_render_page(v, page, p->limit, r->kind, media, &len);
        const char *next = facts_page_next(page);
        if (body != NULL && next != NULL) {
            char path[3 * SEGMENT_LEN];
            if (actor != NULL)
                snprintf(path, sizeof path, "/v1/actors/%s/%s", facts_record_slug(actor),
                         facts_kind_collection(r->kind));
            else
                snprintf(path, sizeof path, "/v1/%s", facts_kind_collection(r->kind));
            char *query = factsd_params_canonical(p);
            link = query != NULL ? factsd_render_next_link(path, query, next) : NULL;
            free(query);
            if (link == NULL) {
                free(body);
                body = NULL;
            }
        }
    }
    facts_page_free(page);
    if (body == NULL) {
        free(link);
        answer_internal(out);
        return;
    }
    answer_media(out, body, len, link, media, !summary, p->pretty);
}

/* The cache key of a request: its route with canonical ids, then its
 * canonical parameters. Returns NULL when memory runs out. */
static char *cache_key(const factsd_route *r, const facts_record *rec, const factsd_params *p,
                       size_t *len)
{
    factsd_buf b;
    factsd_buf_init(&b, 4 * FACTSD_TARGET_MAX + 256);
    switch (r->id) {
    case FACTSD_ROUTE_INDEX:
        factsd_buf_puts(&b, "/v1");
        break;
    case FACTSD_ROUTE_HEALTH:
        factsd_buf_puts(&b, "/healthz");
        break;
    case FACTSD_ROUTE_OPENAPI:
        factsd_buf_puts(&b, "/openapi.json");
        break;
    case FACTSD_ROUTE_COLLECTION:
        factsd_buf_puts(&b, "/v1/");
        factsd_buf_puts(&b, facts_kind_collection(r->kind));
        break;
    case FACTSD_ROUTE_SUMMARY:
        factsd_buf_puts(&b, "/v1/troop-estimates/summary");
        break;
    case FACTSD_ROUTE_SNAPSHOT:
        factsd_buf_puts(&b, "/v1/snapshot");
        break;
    case FACTSD_ROUTE_ITEM:
        factsd_buf_puts(&b, "/v1/");
        factsd_buf_puts(&b, facts_kind_collection(r->kind));
        factsd_buf_puts(&b, "/");
        factsd_buf_puts(&b, facts_record_id(rec));
        break;
    case FACTSD_ROUTE_ACTOR_SUB:
        factsd_buf_puts(&b, "/v1/actors/");
        factsd_buf_puts(&b, facts_record_id(rec));
        factsd_buf_puts(&b, "/");
        factsd_buf_puts(&b, facts_kind_collection(r->kind));
        break;
    case FACTSD_ROUTE_NONE:
    case FACTSD_ROUTE_COMPACT:
    case FACTSD_ROUTE_CHANGES:
    case FACTSD_ROUTE_STREAM:
    case FACTSD_ROUTE_ASSET:
    case FACTSD_ROUTE_METRICS:
    case FACTSD_ROUTE_READY:
        break;
    }
    factsd_buf_puts(&b, "?");
    factsd_params_put_canonical(&b, p, true);
    return factsd_buf_steal(&b, len);
}

/* A 404 for a record key, naming it when it is printable and short. */
static void answer_no_record(factsd_answer *out, facts_kind kind, const char *key)
{
    char detail[160];
    bool printable = strlen(key) <= 64;
    for (const char *c = key; printable && *c; c++)
        printable = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9') || *c == '-';
    if (printable)
        snprintf(detail, sizeof detail, "no %s has the id or slug '%s'", facts_kind_name(kind),
                 key);
    else
        snprintf(detail, sizeof detail, "no %s has this id or slug", facts_kind_name(kind));
    answer_problem(out, FACTSD_PROBLEM_NOT_FOUND, detail, NULL, 0);
}

/* GET /v1/snapshot: the whole dataset with its revision, as
 * facts_store_load_buffer reads it back. Made on the first request to a
 * view and kept in its cache (a snapshot is the same for every request to
 * one view), or made for this request alone when the cache is full. */
static void answer_snapshot(const factsd_view *v, bool pretty, factsd_answer *out)
{
    static const char key[] = "/v1/snapshot?";
    const factsd_repr *hit = factsd_view_cache_get(v, key, sizeof key - 1);
    if (hit != NULL) {
        answer_cached(out, hit, pretty);
        return;
    }
    size_t len = 0;
    char *body = factsd_render_json(facts_store_json(factsd_view_store(v)), false, &len);
    factsd_repr *own = body != NULL ? factsd_repr_new(body, len, FACTSD_MEDIA_JSON, NULL) : NULL;
    if (own == NULL) {
        answer_internal(out);
        return;
    }
    factsd_repr_set_revision(own, facts_store_revision(factsd_view_store(v)));
    const factsd_repr *kept = factsd_view_cache_put(v, key, sizeof key - 1, &own);
    if (kept != NULL) {
        answer_cached(out, kept, pretty);
        return;
    }
    out->status = 200;
    out->own = own;
    out->repr = own;
    if (pretty) {
        factsd_answer again;
        answer_cached(&again, own, true);
        factsd_repr_free(own);
        *out = again;
    }
}

void factsd_routes_get(const factsd_view *v, const factsd_route *r, const char *target,
                       size_t len, const char *accept, factsd_answer *out)
{
    out->status = 500;
    out->repr = NULL;
    out->own = NULL;
    const char *qmark = memchr(target, '?', len);
    size_t plen = qmark != NULL ? (size_t)(qmark - target) : len;
    if (r->id == FACTSD_ROUTE_NONE || r->id == FACTSD_ROUTE_CHANGES ||
        r->id == FACTSD_ROUTE_STREAM || r->id == FACTSD_ROUTE_METRICS ||
        r->id == FACTSD_ROUTE_READY) {
        /* The change feed, the metrics and readiness are answered by the
         * HTTP layer, which holds their state; they never reach here. */
        answer_problem(out, FACTSD_PROBLEM_NOT_FOUND, "no resource lives at this path", NULL,
                       0);
        return;
    }
    if (r->id == FACTSD_ROUTE_COMPACT) {
        answer_problem(out, FACTSD_PROBLEM_METHOD_NOT_ALLOWED, "this resource answers POST only",
                       NULL, 0);
        return;
    }
    unsigned allowed = factsd_params_allowed(r);
    factsd_params params;
    factsd_params *p = &params;
    p->dated = r->kind == FACTS_KIND_EVENT || r->kind == FACTS_KIND_ESTIMATE;
    if (qmark != NULL)
        factsd_params_parse(p, qmark + 1, len - plen - 1, allowed);
    else
        factsd_params_parse(p, "", 0, allowed);
    bool lists = r->id == FACTSD_ROUTE_COLLECTION || r->id == FACTSD_ROUTE_ACTOR_SUB;
    if (lists && p->value[FACTSD_PARAM_FORMAT] == NULL) {
        /* No format=: Accept chooses, and the choice joins the parameters
         * (so the cache and the next page's link carry it). */
        const char *types[FACTSD_PARAMS_FORMAT_COUNT];
        for (int f = 0; f < FACTSD_PARAMS_FORMAT_COUNT; f++)
            types[f] = formats[f].type;
        int f = factsd_negotiate_media(accept, types, FACTSD_PARAMS_FORMAT_COUNT);
        if (f < 0) {
            answer_problem(out, FACTSD_PROBLEM_NOT_ACCEPTABLE,
                           "this resource is available as application/json, text/csv and "
                           "application/x-ndjson",
                           NULL, 0);
            return;
        }
        p->format = (factsd_params_format)f;
        if (f != 0)
            p->value[FACTSD_PARAM_FORMAT] = factsd_params_format_name((factsd_params_format)f);
    }
    const facts_store *store = factsd_view_store(v);
    const facts_record *rec = NULL;
    if (r->id == FACTSD_ROUTE_ITEM || r->id == FACTSD_ROUTE_ACTOR_SUB) {
        facts_kind kind = r->id == FACTSD_ROUTE_ITEM ? r->kind : FACTS_KIND_ACTOR;
        rec = facts_store_find(store, kind, r->key);
        if (rec == NULL) {
            answer_no_record(out, kind, r->key);
            return;
        }
    }
    bool query_route = r->id == FACTSD_ROUTE_COLLECTION || r->id == FACTSD_ROUTE_SUMMARY ||
                       r->id == FACTSD_ROUTE_ACTOR_SUB;
    if (p->nerrors > 0 && !query_route) {
        answer_bad_params(out, p);
        return;
    }
    /* A request with parameters is answered from the view's cache when the
     * same canonical request was answered before. */
    char *key = NULL;
    size_t keylen = 0;
    if (p->nerrors == 0 && factsd_params_any(p)) {
        key = cache_key(r, rec, p, &keylen);
        const factsd_repr *hit = key != NULL ? factsd_view_cache_get(v, key, keylen) : NULL;
        if (hit != NULL) {
            free(key);
            answer_cached(out, hit, false);
            return;
        }
    }
    switch (r->id) {
    case FACTSD_ROUTE_ASSET:
        answer_cached(out, factsd_view_asset(v, r->asset), false);
        break;
    case FACTSD_ROUTE_INDEX:
        answer_cached(out, factsd_view_index(v), p->pretty);
        break;
    case FACTSD_ROUTE_HEALTH:
        answer_cached(out, factsd_view_health(v), p->pretty);
        break;
    case FACTSD_ROUTE_OPENAPI:
        answer_cached(out, factsd_view_openapi(v), p->pretty);
        break;
    case FACTSD_ROUTE_ITEM: {
        const factsd_repr *item = factsd_view_item(v, rec);
        if (item == NULL)
            answer_internal(out);
        else
            answer_cached(out, item, p->pretty);
        break;
    }
    case FACTSD_ROUTE_COLLECTION:
    case FACTSD_ROUTE_SUMMARY:
        answer_query(v, r, NULL, p, out);
        break;
    case FACTSD_ROUTE_ACTOR_SUB:
        answer_query(v, r, rec, p, out);
        break;
    case FACTSD_ROUTE_SNAPSHOT:
        answer_snapshot(v, p->pretty, out);
        break;
    case FACTSD_ROUTE_NONE:
    case FACTSD_ROUTE_COMPACT:
    case FACTSD_ROUTE_CHANGES:
    case FACTSD_ROUTE_STREAM:
    case FACTSD_ROUTE_METRICS:
    case FACTSD_ROUTE_READY:
        break;
    }
    factsd_repr_set_revision(out->own, facts_store_revision(store));
    if (key != NULL && out->status == 200 && out->own != NULL && out->repr == out->own) {
        const factsd_repr *kept = factsd_view_cache_put(v, key, keylen, &out->own);
        if (kept != NULL)
            out->repr = kept;
    }
    free(key);
}
