/*
 * view.c - a snapshot and its representations, rendered once (see view.h).
 */
#include "view.h"

#include "csv.h"
#include "dashboard.h"
#include "text.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FACTSD_VERSION
#define FACTSD_VERSION FACTS_VERSION
#endif

enum {
    PAGE_MAX = 64u << 20 /* bytes of one assembled page body */
};

enum {
    CACHE_SLOTS = 512 /* hash buckets of the query cache (a power of two) */
};

struct cache_entry {
    struct cache_entry *next;
    uint64_t hash;
    size_t keylen;
    factsd_repr *repr;
    char key[]; /* keylen bytes */
};

/* Representations made for requests with parameters, kept for the view's
 * life so repeated queries are answered like the prebuilt ones. Entries are
 * only ever added, at the head of a bucket, and published with release
 * ordering, so readers walk the buckets without taking the lock; writers
 * serialize on it. */
struct query_cache {
    pthread_mutex_t lock; /* guards entries, bytes and adding to slots */
    size_t entries;
    size_t bytes;
    _Atomic(struct cache_entry *) slots[CACHE_SLOTS];
};

struct item_entry {
    const facts_record *rec;
    factsd_repr *repr;
};

struct factsd_view {
    atomic_uint refs;
    facts_store *store;
    const factsd_config *cfg;
    struct item_entry *items; /* every record, sorted by address */
    size_t nitems;
    factsd_repr *first_page[FACTS_KIND_COUNT];
    factsd_repr *index;
    factsd_repr *health;
    factsd_repr *openapi;
    factsd_repr *summary;
    factsd_repr *assets[FACTSD_ASSET_COUNT];
    struct query_cache *cache;
};

static int item_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct item_entry *)a)->rec;
    uintptr_t y = (uintptr_t)((const struct item_entry *)b)->rec;
    return x < y ? -1 : x > y;
}

const factsd_repr *factsd_view_item(const factsd_view *v, const facts_record *rec)
{
    struct item_entry key = {rec, NULL};
    const struct item_entry *e =
        bsearch(&key, v->items, v->nitems, sizeof *v->items, item_cmp);
    return e != NULL ? e->repr : NULL;
}

/* Appends the ready-made JSON of every record on page, comma-separated. */
static bool append_items(factsd_buf *b, const factsd_view *v, const facts_page *page)
{
    size_t n = facts_page_count(page);
    for (size_t i = 0; i < n; i++) {
        const factsd_repr *r = factsd_view_item(v, facts_page_get(page, i));
        if (r == NULL)
            return false;
        size_t len;
        const char *body = factsd_repr_body(r, &len);
        if ((i > 0 && !factsd_buf_append(b, ",", 1)) || !factsd_buf_append(b, body, len))
            return false;
    }
    return true;
}

/* A page as CSV rows or NDJSON lines. */
static char *render_rows(const factsd_view *v, const facts_page *page, facts_kind kind,
                         factsd_media format, size_t *len)
{
    factsd_buf b;
    factsd_buf_init(&b, PAGE_MAX);
    size_t n = facts_page_count(page);
    bool ok = format != FACTSD_MEDIA_CSV ||
              factsd_csv_header(&b, kind);
    for (size_t i = 0; ok && i < n; i++) {
        const facts_record *rec = facts_page_get(page, i);
        if (format == FACTSD_MEDIA_CSV) {
            ok = factsd_csv_row(&b, rec);
            continue;
        }
        const factsd_repr *r = factsd_view_item(v, rec);
        size_t blen;
        const char *body = r != NULL ? factsd_repr_body(r, &blen) : NULL;
        ok = body != NULL && factsd_buf_append(&b, body, blen) && factsd_buf_append(&b, "\n", 1);
    }
    if (!ok) {
        factsd_buf_free(&b);
        return NULL;
    }
    return factsd_buf_steal(&b, len);
}

char *factsd_view_render_page(const factsd_view *v, const facts_page *page, size_t limit,
                              facts_kind kind, factsd_media format, size_t *len)
{
    if (format == FACTSD_MEDIA_CSV || format == FACTSD_MEDIA_NDJSON)
        return render_rows(v, page, kind, format, len);
    factsd_buf b;
    factsd_buf_init(&b, PAGE_MAX);
    factsd_buf_puts(&b, "{\"items\":[");
    if (!append_items(&b, v, page)) {
        factsd_buf_free(&b);
        return NULL;
    }
    factsd_buf_printf(&b, "],\"total\":%zu,\"next\":", facts_page_total(page));
    const char *next = facts_page_next(page);
    if (next != NULL)
        factsd_render_json_string(&b, next);
    else
        factsd_buf_puts(&b, "null");
    factsd_buf_printf(&b, ",\"limit\":%zu,\"revision\":%llu}", limit,
                      (unsigned long long)facts_store_revision(v->store));
    return factsd_buf_steal(&b, len);
}

char *factsd_view_render_summary(const factsd_view *v, const facts_summary *sum,
                                 const facts_page *page, size_t *len)
{
    factsd_buf b;
    factsd_buf_init(&b, PAGE_MAX);
    factsd_buf_printf(&b,
                      "{\"low\":%lld,\"high\":%lld,\"count\":%zu,\"unit\":\"troops\","
                      "\"items\":[",
                      (long long)sum->low, (long long)sum->high, sum->count);
    if (!append_items(&b, v, page)) {
        factsd_buf_free(&b);
        return NULL;
    }
    factsd_buf_puts(&b, "]}");
    return factsd_buf_steal(&b, len);
}

/* Wraps a body into a shared representation; NULL on failure (body and link
 * are released either way). */
static factsd_repr *shared_repr(const factsd_view *v, char *body, size_t len, char *link)
{
    factsd_repr *r = factsd_repr_new(body, len, FACTSD_MEDIA_JSON, link);
    factsd_repr_set_revision(r, facts_store_revision(v->store));
    if (r != NULL && !factsd_repr_share(r, v->cfg)) {
        factsd_repr_free(r);
        r = NULL;
    }
    return r;
}

/* Dumps v compactly into a shared representation; NULL on failure. */
static factsd_repr *shared_json(const factsd_view *view, const json_t *value)
{
    size_t len;
    char *body = factsd_render_json(value, false, &len);
    return body != NULL ? shared_repr(view, body, len, NULL) : NULL;
}

static bool build_items(factsd_view *v)
{
    size_t total = 0;
    for (int k = 0; k < FACTS_KIND_COUNT; k++)
        total += facts_store_count(v->store, (facts_kind)k);
    v->items = calloc(total > 0 ? total : 1, sizeof *v->items);
    if (v->items == NULL)
        return false;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        size_t n = facts_store_count(v->store, (facts_kind)k);
        for (size_t i = 0; i < n; i++) {
            const facts_record *rec = facts_store_at(v->store, (facts_kind)k, i);
            if (rec == NULL)
                return false;
            factsd_repr *r = shared_json(v, facts_record_json(rec));
            if (r == NULL)
                return false;
            v->items[v->nitems].rec = rec;
            v->items[v->nitems].repr = r;
            v->nitems++;
        }
    }
    qsort(v->items, v->nitems, sizeof *v->items, item_cmp);
    return true;
}

static bool build_first_pages(factsd_view *v)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        facts_query q;
        facts_query_init(&q, (facts_kind)k);
        facts_page *page = NULL;
        if (facts_store_query(v->store, &q, &page, NULL) != FACTS_OK)
            return false;
        size_t len;
        char *body = factsd_view_render_page(v, page, FACTS_QUERY_LIMIT_DEFAULT, (facts_kind)k,
                                             FACTSD_MEDIA_JSON, &len);
        char *link = NULL;
        const char *next = facts_page_next(page);
        char path[64];
        snprintf(path, sizeof path, "/v1/%s", facts_kind_collection((facts_kind)k));
        if (body != NULL && next != NULL) {
            link = factsd_render_next_link(path, NULL, next);
            if (link == NULL) {
                free(body);
                body = NULL;
            }
        }
        facts_page_free(page);
        if (body == NULL)
            return false;
        factsd_repr *r = factsd_repr_new(body, len, FACTSD_MEDIA_JSON, link);
        factsd_repr_set_revision(r, facts_store_revision(v->store));
        factsd_repr_set_negotiated(r);
        if (r != NULL && !factsd_repr_share(r, v->cfg)) {
            factsd_repr_free(r);
            r = NULL;
        }
        v->first_page[k] = r;
        if (r == NULL)
            return false;
    }
    return true;
}

static bool build_summary(factsd_view *v)
{
    facts_query q;
    facts_query_init(&q, FACTS_KIND_ESTIMATE);
    facts_summary sum;
    facts_page *page = NULL;
    if (facts_store_summarize(v->store, &q, &sum, &page, NULL) != FACTS_OK)
        return false;
    size_t len;
    char *body = factsd_view_render_summary(v, &sum, page, &len);
    facts_page_free(page);
    if (body == NULL)
        return false;
    v->summary = shared_repr(v, body, len, NULL);
    return v->summary != NULL;
}

/* Sets obj[key] = value (value reference stolen, also on failure); false
 * when either is NULL or memory runs out. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    if (obj == NULL) {
        json_decref(value);
        return false;
    }
    return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static json_t *counts_object(const facts_store *store)
{
    json_t *counts = json_object();
    for (int k = 0; counts != NULL && k < FACTS_KIND_COUNT; k++) {
        if (!put(counts, facts_kind_collection((facts_kind)k),
                 json_integer((json_int_t)facts_store_count(store, (facts_kind)k)))) {
            json_decref(counts);
            return NULL;
        }
    }
    return counts;
}

static bool build_health(factsd_view *v)
{
    json_t *root = json_object();
    bool ok = put(root, "status", json_string("ok")) &&
              put(root, "revision", json_integer((json_int_t)facts_store_revision(v->store))) &&
              put(root, "counts", counts_object(v->store));
    if (ok)
        v->health = shared_json(v, root);
    json_decref(root);
    return ok && v->health != NULL;
}

static json_t *sources_array(const facts_store *store)
{
    json_t *list = json_array();
    size_t n = facts_store_count(store, FACTS_KIND_SOURCE);
    for (size_t i = 0; list != NULL && i < n; i++) {
        const facts_record *rec = facts_store_at(store, FACTS_KIND_SOURCE, i);
        const json_t *full = rec != NULL ? facts_record_json(rec) : NULL;
        const char *publisher = json_string_value(json_object_get(full, "publisher"));
        char href[128];
        snprintf(href, sizeof href, "/v1/sources/%s", rec != NULL ? facts_record_slug(rec) : "");
        json_t *s = json_object();
        bool ok = rec != NULL && publisher != NULL && s != NULL &&
                  put(s, "id", json_string(facts_record_id(rec))) &&
                  put(s, "slug", json_string(facts_record_slug(rec))) &&
                  put(s, "title", json_string(facts_record_name(rec))) &&
                  put(s, "publisher", json_string(publisher)) &&
                  put(s, "href", json_string(href)) && json_array_append(list, s) == 0;
        json_decref(s);
        if (!ok) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static json_t *links_object(void)
{
    static const char *const links[][2] = {
        {"self", "/v1"},
        {"actors", "/v1/actors"},
        {"events", "/v1/events"},
        {"troop-estimates", "/v1/troop-estimates"},
        {"troop-estimates-summary", "/v1/troop-estimates/summary"},
        {"sources", "/v1/sources"},
        {"health", "/healthz"},
        {"openapi", "/openapi.json"},
    };
    json_t *obj = json_object();
    for (size_t i = 0; obj != NULL && i < sizeof links / sizeof links[0]; i++) {
        if (!put(obj, links[i][0], json_string(links[i][1]))) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static bool build_index(factsd_view *v)
{
    json_t *root = json_object();
    bool ok = put(root, "name", json_string("factsd")) &&
              put(root, "version", json_string(FACTSD_VERSION)) &&
              put(root, "format", json_string(FACTS_DATASET_FORMAT)) &&
              put(root, "revision", json_integer((json_int_t)facts_store_revision(v->store))) &&
              put(root, "sources", sources_array(v->store)) &&
              put(root, "counts", counts_object(v->store)) &&
              put(root, "links", links_object());
    if (ok)
        v->index = shared_json(v, root);
    json_decref(root);
    return ok && v->index != NULL;
}

static bool build_openapi(factsd_view *v, const char *openapi, size_t len, char *msg,
                          size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb(openapi, len, JSON_REJECT_DUPLICATES, &jerr);
    bool object = json_is_object(doc);
    json_decref(doc);
    if (!object) {
        snprintf(msg, size, "the embedded OpenAPI description is not a JSON object");
        return false;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return false;
    memcpy(copy, openapi, len);
    copy[len] = '\0';
    v->openapi = shared_repr(v, copy, len, NULL);
    return v->openapi != NULL;
}

static bool build_assets(factsd_view *v)
{
    static const struct {
        const unsigned char *bytes;
        const size_t *len;
        factsd_media media;
    } files[FACTSD_ASSET_COUNT] = {
        [FACTSD_ASSET_PAGE] = {factsd_dashboard_html, &factsd_dashboard_html_len,
                               FACTSD_MEDIA_HTML},
        [FACTSD_ASSET_SCRIPT] = {factsd_dashboard_js, &factsd_dashboard_js_len,
                                 FACTSD_MEDIA_SCRIPT},
        [FACTSD_ASSET_STYLE] = {factsd_dashboard_css, &factsd_dashboard_css_len,
                                FACTSD_MEDIA_STYLE},
    };
    for (int i = 0; i < FACTSD_ASSET_COUNT; i++) {
        size_t len = *files[i].len;
        char *copy = malloc(len + 1);
        if (copy == NULL)
            return false;
        memcpy(copy, files[i].bytes, len + 1);
        factsd_repr *r = factsd_repr_new(copy, len, files[i].media, NULL);
        if (r != NULL && !factsd_repr_share(r, v->cfg)) {
            factsd_repr_free(r);
            r = NULL;
        }
        v->assets[i] = r;
        if (r == NULL)
            return false;
    }
    return true;
}

const factsd_repr *factsd_view_asset(const factsd_view *v, factsd_asset asset)
{
    return (unsigned)asset < FACTSD_ASSET_COUNT ? v->assets[asset] : NULL;
}

/* Finds key in a bucket list; the cache lock must be held. */
static struct cache_entry *cache_find(struct cache_entry *e, uint64_t hash, const char *key,
                                      size_t len)
{
    for (; e != NULL; e = e->next) {
        if (e->hash == hash && e->keylen == len && memcmp(e->key, key, len) == 0)
            return e;
    }
    return NULL;
}

const factsd_repr *factsd_view_cache_get(const factsd_view *v, const char *key, size_t len)
{
    struct query_cache *c = v->cache;
    uint64_t hash = factsd_text_hash64(key, len);
    struct cache_entry *head =
        atomic_load_explicit(&c->slots[hash & (CACHE_SLOTS - 1)], memory_order_acquire);
    struct cache_entry *e = cache_find(head, hash, key, len);
    return e != NULL ? e->repr : NULL;
}

const factsd_repr *factsd_view_cache_put(const factsd_view *v, const char *key, size_t len,
                                         factsd_repr **r)
{
    struct query_cache *c = v->cache;
    size_t body_len;
    factsd_repr_body(*r, &body_len);
    uint64_t hash = factsd_text_hash64(key, len);
    _Atomic(struct cache_entry *) *slot = &c->slots[hash & (CACHE_SLOTS - 1)];
    pthread_mutex_lock(&c->lock);
    struct cache_entry *head = atomic_load_explicit(slot, memory_order_relaxed);
    struct cache_entry *e = cache_find(head, hash, key, len);
    if (e != NULL) {
        pthread_mutex_unlock(&c->lock);
        factsd_repr_free(*r);
        *r = NULL;
        return e->repr;
    }
    if (c->entries >= FACTSD_VIEW_CACHE_ENTRIES || body_len > FACTSD_VIEW_CACHE_BYTES - c->bytes) {
        pthread_mutex_unlock(&c->lock);
        return NULL;
    }
    e = malloc(sizeof *e + len);
    if (e == NULL || !factsd_repr_share(*r, v->cfg)) {
        pthread_mutex_unlock(&c->lock);
        free(e);
        return NULL;
    }
    e->hash = hash;
    e->keylen = len;
    memcpy(e->key, key, len);
    e->repr = *r;
    e->next = head;
    atomic_store_explicit(slot, e, memory_order_release);
    c->entries++;
    c->bytes += body_len;
    pthread_mutex_unlock(&c->lock);
    *r = NULL;
    return e->repr;
}

static struct query_cache *cache_new(void)
{
    struct query_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        atomic_init(&c->slots[i], NULL);
    return c;
}

static void cache_free(struct query_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_entry *e = atomic_load_explicit(&c->slots[i], memory_order_relaxed);
        while (e != NULL) {
            struct cache_entry *next = e->next;
            factsd_repr_free(e->repr);
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void view_free(factsd_view *v)
{
    cache_free(v->cache);
    for (size_t i = 0; i < v->nitems; i++)
        factsd_repr_free(v->items[i].repr);
    free(v->items);
    for (int k = 0; k < FACTS_KIND_COUNT; k++)
        factsd_repr_free(v->first_page[k]);
    factsd_repr_free(v->index);
    factsd_repr_free(v->health);
    factsd_repr_free(v->openapi);
    factsd_repr_free(v->summary);
    for (int i = 0; i < FACTSD_ASSET_COUNT; i++)
        factsd_repr_free(v->assets[i]);
    facts_store_unref(v->store);
    free(v);
}

factsd_view *factsd_view_new(facts_store *store, const char *openapi, size_t openapi_len,
                             const factsd_config *cfg, char *msg, size_t size)
{
    snprintf(msg, size, "out of memory while rendering the dataset");
    factsd_view *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    atomic_init(&v->refs, 1);
    v->store = facts_store_ref(store);
    v->cfg = cfg;
    v->cache = cache_new();
    if (v->cache == NULL || !build_items(v) || !build_first_pages(v) || !build_summary(v) || !build_health(v) ||
        !build_index(v) || !build_assets(v) ||
        !build_openapi(v, openapi, openapi_len, msg, size)) {
        view_free(v);
        return NULL;
    }
    return v;
}

factsd_view *factsd_view_ref(factsd_view *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}

void factsd_view_unref(factsd_view *v)
{
    if (v == NULL)
        return;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
        view_free(v);
}

const facts_store *factsd_view_store(const factsd_view *v)
{
    return v->store;
}

const factsd_config *factsd_view_config(const factsd_view *v)
{
    return v->cfg;
}

const factsd_repr *factsd_view_first_page(const factsd_view *v, facts_kind kind)
{
    return (unsigned)kind < FACTS_KIND_COUNT ? v->first_page[kind] : NULL;
}

const factsd_repr *factsd_view_index(const factsd_view *v)
{
    return v->index;
}

const factsd_repr *factsd_view_health(const factsd_view *v)
{
    return v->health;
}

const factsd_repr *factsd_view_openapi(const factsd_view *v)
{
    return v->openapi;
}

const factsd_repr *factsd_view_summary(const factsd_view *v)
{
    return v->summary;
}
