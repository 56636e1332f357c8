/*
 * history.c - a bounded record of the latest changes, for the change feed.
 *
 * A ring of immutable, reference-counted entries guarded by one mutex: the
 * writer appends (rarely), feed readers copy references out (briefly) and
 * then use the entries without holding the lock. The snapshot read path
 * never touches it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct facts_history_entry {
    atomic_size_t refs;
    uint64_t revision;
    json_t *json;
    char *text;
    size_t len;
};

struct facts_history {
    pthread_mutex_t lock;
    facts_history_entry **ring;
    size_t capacity;
    size_t count;  /* entries held, <= capacity */
    size_t head;   /* index of the oldest */
    uint64_t base; /* the revision before the oldest entry ever kept */
    uint64_t latest;
};

facts_history *facts_history_new(size_t capacity, uint64_t revision)
{
    if (capacity < 1 || capacity > FACTS_HISTORY_MAX)
        return NULL;
    facts_history *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ring = calloc(capacity, sizeof *h->ring);
    if (!h->ring || pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h->ring);
        free(h);
        return NULL;
    }
    h->capacity = capacity;
    h->base = h->latest = revision;
    return h;
}

void facts_history_entry_unref(facts_history_entry *e)
{
    if (!e)
        return;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        json_decref(e->json);
        free(e->text);
        free(e);
    }
}

void facts_history_free(facts_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++)
        facts_history_entry_unref(h->ring[(h->head + i) % h->capacity]);
    pthread_mutex_destroy(&h->lock);
    free(h->ring);
    free(h);
}

facts_status facts_history_append(facts_history *h, uint64_t revision, json_t *entry,
                                  facts_error *err)
{
    facts_history_entry *e = NULL;
    char *text = NULL;
    if (!json_is_object(entry)) {
        json_decref(entry);
        facts_error_set(err, FACTS_EARG, "history", 0, 0, "", "argument",
                        "an entry is a JSON object");
        return FACTS_EARG;
    }
    text = json_dumps(entry, JSON_COMPACT | JSON_PRESERVE_ORDER);
    e = malloc(sizeof *e);
    if (!text || !e) {
        free(text);
        free(e);
        json_decref(entry);
        facts_error_set(err, FACTS_ENOMEM, "history", 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    atomic_init(&e->refs, 1);
    e->revision = revision;
    e->json = entry;
    e->text = text;
    e->len = strlen(text);

    facts_history_entry *dropped = NULL;
    pthread_mutex_lock(&h->lock);
    if (revision <= h->latest) {
        uint64_t latest = h->latest;
        pthread_mutex_unlock(&h->lock);
        facts_history_entry_unref(e);
        facts_error_set(err, FACTS_EARG, "history", 0, 0, "", "argument",
                        "revision %llu is not after %llu", (unsigned long long)revision,
                        (unsigned long long)latest);
        return FACTS_EARG;
    }
    if (h->count == h->capacity) {
        dropped = h->ring[h->head];
        h->base = dropped->revision;
        h->head = (h->head + 1) % h->capacity;
        h->count--;
    }
    h->ring[(h->head + h->count) % h->capacity] = e;
    h->count++;
    h->latest = revision;
    pthread_mutex_unlock(&h->lock);
    facts_history_entry_unref(dropped);
    return FACTS_OK;
}

void facts_history_reset(facts_history *h, uint64_t revision)
{
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->count; i++) {
        size_t slot = (h->head + i) % h->capacity;
        facts_history_entry_unref(h->ring[slot]);
        h->ring[slot] = NULL;
    }
    h->count = 0;
    h->head = 0;
    h->base = h->latest = revision;
    pthread_mutex_unlock(&h->lock);
}

uint64_t facts_history_latest(facts_history *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t v = h->latest;
    pthread_mutex_unlock(&h->lock);
    return v;
}

facts_status facts_history_since(facts_history *h, uint64_t since, size_t max,
                                 facts_history_entry **out, size_t *n, uint64_t *latest,
                                 uint64_t *oldest)
{
    pthread_mutex_lock(&h->lock);
    *latest = h->latest;
    *oldest = h->base;
    if (since < h->base || since > h->latest) {
        pthread_mutex_unlock(&h->lock);
        return FACTS_EGONE;
    }
    /* Entries hold increasing revisions (a reload may skip some): find
     * the first above since. */
    size_t lo = 0, hi = h->count, k = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->ring[(h->head + mid) % h->capacity]->revision <= since)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < h->count && k < max; i++, k++) {
        facts_history_entry *e = h->ring[(h->head + i) % h->capacity];
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        out[k] = e;
    }
    pthread_mutex_unlock(&h->lock);
    *n = k;
    return FACTS_OK;
}

uint64_t facts_history_entry_revision(const facts_history_entry *e)
{
    return e->revision;
}

const json_t *facts_history_entry_json(const facts_history_entry *e)
{
    return e->json;
}

const char *facts_history_entry_text(const facts_history_entry *e, size_t *len)
{
    *len = e->len;
    return e->text;
}
