/*
 * store.c - the immutable store: reference counting, lookup by id or slug,
 * record accessors and the sort orders queries walk.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

facts_store *facts_store_ref(facts_store *store)
{
    if (store)
        atomic_fetch_add_explicit(&store->refs, 1, memory_order_relaxed);
    return store;
}

static void store_free(facts_store *st)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        for (size_t i = 0; st->records[k] && i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            json_decref(r->json);
            free(r->search);
            free(r->sort_name);
            free(r->actors);
        }
        free(st->records[k]);
        free(st->index[k]);
        for (int s = 0; s < FACTS_SORT_COUNT; s++)
            free(st->order[k][s]);
    }
    json_decref(st->json);
    free(st);
}

void facts_store_unref(facts_store *store)
{
    if (!store)
        return;
    if (atomic_fetch_sub_explicit(&store->refs, 1, memory_order_acq_rel) == 1)
        store_free(store);
}

uint64_t facts_store_revision(const facts_store *store)
{
    return store->revision;
}

bool facts_store_same_records(const facts_store *a, const facts_store *b)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        if (a->count[k] != b->count[k])
            return false;
        for (size_t i = 0; i < a->count[k]; i++)
            if (!json_equal(a->records[k][i].json, b->records[k][i].json))
                return false;
    }
    return true;
}

facts_status facts_store_renumber(facts_store *store, uint64_t revision, facts_error *err)
{
    if (atomic_load_explicit(&store->refs, memory_order_acquire) != 1 ||
        revision < store->revision || revision > (uint64_t)FACTS_REVISION_MAX) {
        facts_error_set(err, FACTS_EARG, "store", 0, 0, "", "argument",
                        "a store is renumbered only by its sole owner, forward, up to 2^53");
        return FACTS_EARG;
    }
    if (json_object_get(store->json, "revision") != NULL) {
        json_t *v = json_integer((json_int_t)revision);
        if (v == NULL || json_object_set_new(store->json, "revision", v) != 0) {
            facts_error_set(err, FACTS_ENOMEM, "store", 0, 0, "", "memory", "out of memory");
            return FACTS_ENOMEM;
        }
    }
    store->revision = revision;
    return FACTS_OK;
}

size_t facts_store_count(const facts_store *store, facts_kind kind)
{
    return (unsigned)kind < FACTS_KIND_COUNT ? store->count[kind] : 0;
}

const facts_record *facts_store_at(const facts_store *store, facts_kind kind, size_t i)
{
    if ((unsigned)kind >= FACTS_KIND_COUNT || i >= store->count[kind])
        return NULL;
    return &store->records[kind][i];
}

const json_t *facts_store_json(const facts_store *store)
{
    return store->json;
}

static int index_cmp(const void *a, const void *b)
{
    return strcmp(((const facts_index_entry *)a)->key, ((const facts_index_entry *)b)->key);
}

facts_status facts_store_build_lookup(facts_store *store)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        size_t n = store->count[k];
        facts_index_entry *idx = malloc((2 * n + 1) * sizeof *idx);
        if (!idx)
            return FACTS_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            idx[2 * i] = (facts_index_entry){store->records[k][i].id, &store->records[k][i]};
            idx[2 * i + 1] = (facts_index_entry){store->records[k][i].slug, &store->records[k][i]};
        }
        qsort(idx, 2 * n, sizeof *idx, index_cmp);
        free(store->index[k]);
        store->index[k] = idx;
        store->index_len[k] = 2 * n;
    }
    return FACTS_OK;
}

const facts_record *facts_store_find(const facts_store *store, facts_kind kind, const char *key)
{
    if (!key || (unsigned)kind >= FACTS_KIND_COUNT || !store->index[kind])
        return NULL;
    char lower[37];
    if (strlen(key) == 36 && key[8] == '-' && key[13] == '-' && key[18] == '-' &&
        key[23] == '-') {
        /* Ids are stored in lower case; accept any case from callers. Slugs
         * never have this shape, so they stay as given. */
        for (size_t i = 0; i < 36; i++)
            lower[i] = (key[i] >= 'A' && key[i] <= 'Z') ? (char)(key[i] - 'A' + 'a') : key[i];
        lower[36] = '\0';
        key = lower;
    }
    facts_index_entry probe = {key, NULL};
    const facts_index_entry *e =
        bsearch(&probe, store->index[kind], store->index_len[kind], sizeof probe, index_cmp);
    return e ? e->rec : NULL;
}

static bool dated(const facts_record *r)
{
    return r->has_date && r->date.precision != FACTS_PRECISION_UNKNOWN;
}

int facts_record_compare(const facts_record *a, const facts_record *b, facts_sort sort)
{
    if (sort == FACTS_SORT_DEFAULT)
        sort = (a->kind == FACTS_KIND_EVENT || a->kind == FACTS_KIND_ESTIMATE)
                   ? FACTS_SORT_DATE_ASC
                   : FACTS_SORT_NAME_ASC;
    int c = 0;
    int sign = (sort == FACTS_SORT_DATE_DESC || sort == FACTS_SORT_NAME_DESC) ? -1 : 1;
    if (sort == FACTS_SORT_DATE_ASC || sort == FACTS_SORT_DATE_DESC) {
        bool da = dated(a), db = dated(b);
        if (da != db)
            return da ? -1 : 1; /* undated last, in either direction */
        if (!da)
            return strcmp(a->slug, b->slug);
        if (a->date.first_day != b->date.first_day)
            c = a->date.first_day < b->date.first_day ? -1 : 1;
        else if (a->date.last_day != b->date.last_day)
            c = a->date.last_day < b->date.last_day ? -1 : 1;
    } else {
        c = strcmp(a->sort_name, b->sort_name);
    }
    if (c == 0)
        c = strcmp(a->slug, b->slug);
    return sign * c;
}

/* qsort has no context argument: the sort being built is passed here. Orders
 * are built while the store is private to one thread (at load). */
static _Thread_local struct {
    const facts_record *records;
    facts_sort sort;
} order_ctx;

static int order_cmp(const void *a, const void *b)
{
    const facts_record *ra = &order_ctx.records[*(const size_t *)a];
    const facts_record *rb = &order_ctx.records[*(const size_t *)b];
    return facts_record_compare(ra, rb, order_ctx.sort);
}

facts_status facts_store_build_orders(facts_store *store)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        for (int s = 0; s < FACTS_SORT_COUNT; s++) {
            size_t n = store->count[k];
            size_t *order = malloc((n ? n : 1) * sizeof *order);
            if (!order)
                return FACTS_ENOMEM;
            for (size_t i = 0; i < n; i++)
                order[i] = i;
            order_ctx.records = store->records[k];
            order_ctx.sort = (facts_sort)s;
            qsort(order, n, sizeof *order, order_cmp);
            free(store->order[k][s]);
            store->order[k][s] = order;
        }
    }
    return FACTS_OK;
}

facts_kind facts_record_kind(const facts_record *rec)
{
    return rec->kind;
}

const char *facts_record_id(const facts_record *rec)
{
    return rec->id;
}

const char *facts_record_slug(const facts_record *rec)
{
    return rec->slug;
}

const char *facts_record_name(const facts_record *rec)
{
    return rec->name;
}

const json_t *facts_record_json(const facts_record *rec)
{
    return rec->json;
}

bool facts_record_date(const facts_record *rec, facts_date_range *range)
{
    if (!rec->has_date)
        return false;
    *range = rec->date;
    return true;
}

bool facts_estimate_bounds(const facts_record *rec, int64_t *low, int64_t *high)
{
    if (rec->kind != FACTS_KIND_ESTIMATE)
        return false;
    *low = rec->low;
    *high = rec->high;
    return true;
}

bool facts_record_involves(const facts_record *rec, const facts_record *actor)
{
    if (rec == actor)
        return true;
    for (size_t i = 0; i < rec->n_actors; i++) {
        if (rec->actors[i] == actor)
            return true;
    }
    return false;
}
