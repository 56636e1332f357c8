/*
 * metrics.c - the per-thread counters, the replica state and the rendering
 * of a scrape (see metrics.h).
 */
#include "metrics.h"

#include "negotiate.h"
#include "text.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    CODES = 5,      /* status classes 1xx to 5xx */
    BUCKETS = 16,   /* finite histogram buckets; one more for +Inf */
    ROUTES = FACTSD_ROUTE_SNAPSHOT + 1,
    CACHE_LINE = 64
};

/* The upper bounds of the histogram buckets, in nanoseconds and as the le
 * label writes them (canonical numbers, as OpenMetrics recommends). */
static const uint64_t bucket_ns[BUCKETS] = {
    100000,    250000,    500000,     1000000,    2500000,    5000000,
    10000000,  25000000,  50000000,   100000000,  250000000,  500000000,
    1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const bucket_le[BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1.0",    "2.5",   "5.0",  "10.0",
};

/* The route label of each route id: the path template of the OpenAPI
 * description; "other" for paths that name no route. */
static const char *const route_labels[ROUTES] = {
    [FACTSD_ROUTE_NONE] = "other",
    [FACTSD_ROUTE_INDEX] = "/v1",
    [FACTSD_ROUTE_HEALTH] = "/healthz",
    [FACTSD_ROUTE_OPENAPI] = "/openapi.json",
    [FACTSD_ROUTE_COLLECTION] = "/v1/{collection}",
    [FACTSD_ROUTE_ITEM] = "/v1/{collection}/{key}",
    [FACTSD_ROUTE_ACTOR_SUB] = "/v1/actors/{key}/{collection}",
    [FACTSD_ROUTE_SUMMARY] = "/v1/troop-estimates/summary",
    [FACTSD_ROUTE_COMPACT] = "/v1/admin/compact",
    [FACTSD_ROUTE_CHANGES] = "/v1/changes",
    [FACTSD_ROUTE_STREAM] = "/v1/stream",
    [FACTSD_ROUTE_ASSET] = "/dashboard",
    [FACTSD_ROUTE_METRICS] = "/metrics",
    [FACTSD_ROUTE_READY] = "/readyz",
    [FACTSD_ROUTE_SNAPSHOT] = "/v1/snapshot",
};

static const char *const method_labels[FACTSD_METRICS_METHOD_COUNT] = {
    "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "other",
};

static const char *const code_labels[CODES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

typedef atomic_uint_least64_t counter;

/* A histogram: the count of each bucket on its own (not cumulative: the
 * scrape adds them up, so +Inf always equals _count) and the sum. */
struct histogram {
    counter buckets[BUCKETS + 1];
    counter sum_ns;
};

/* One thread's counters. Only its thread writes it (except the shared
 * overflow block), always with relaxed atomic adds; scrapes read it. */
struct block {
    alignas(CACHE_LINE) counter requests[ROUTES][FACTSD_METRICS_METHOD_COUNT][CODES];
    counter bytes[ROUTES];
    struct histogram duration[ROUTES];
    struct histogram journal;
    counter journal_writes;
    counter journal_errors;
    counter compactions;
    struct block *next;      /* every block: the registry's list */
    struct block *next_free; /* blocks of exited threads */
};

/* The registry. lock guards the lists and the count; a block, once listed,
 * is never freed while the process runs. */
static struct {
    pthread_mutex_t lock;
    pthread_once_t once;
    pthread_key_t key;     /* hands a thread's block back when it exits */
    bool key_ok;
    struct block *all;
    struct block *free;
    size_t count;
    struct block overflow; /* for the threads beyond FACTSD_METRICS_BLOCKS_MAX */
    atomic_llong start_ms; /* CLOCK_REALTIME at start; 0: not yet */
    /* The replica's last report. */
    atomic_bool replica_enabled;
    atomic_bool replica_connected;
    atomic_bool replica_ready;
    atomic_bool replica_diverged;
    atomic_uint_least64_t replica_lag_ms;
    atomic_uint_least64_t replica_revision;
} reg = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .once = PTHREAD_ONCE_INIT,
};

static _Thread_local struct block *tl_block;

/* The thread that owned b exits: b goes to the next new thread. */
static void block_release(void *arg)
{
    struct block *b = arg;
    if (b == NULL || b == &reg.overflow)
        return;
    pthread_mutex_lock(&reg.lock);
    b->next_free = reg.free;
    reg.free = b;
    pthread_mutex_unlock(&reg.lock);
}

static void registry_init(void)
{
    reg.key_ok = pthread_key_create(&reg.key, block_release) == 0;
}

/* The calling thread's block, registered on its first call: a released
 * one, a new one, or the overflow block. NULL only when the thread could
 * not be registered (no memory for the key); it is retried on the next
 * call then. */
static struct block *block_get(void)
{
    struct block *b = tl_block;
    if (b != NULL)
        return b;
    pthread_once(&reg.once, registry_init);
    pthread_mutex_lock(&reg.lock);
    if (reg.free != NULL) {
        b = reg.free;
        reg.free = b->next_free;
        b->next_free = NULL;
    } else if (reg.count < FACTSD_METRICS_BLOCKS_MAX && reg.key_ok) {
        b = aligned_alloc(CACHE_LINE, sizeof *b);
        if (b != NULL) {
            memset(b, 0, sizeof *b);
            b->next = reg.all;
            reg.all = b;
            reg.count++;
        }
    }
    pthread_mutex_unlock(&reg.lock);
    if (b != NULL && (!reg.key_ok || pthread_setspecific(reg.key, b) != 0)) {
        block_release(b);
        b = NULL;
    }
    if (b == NULL)
        b = &reg.overflow; /* counted all the same, with the others beyond */
    tl_block = b;
    return b;
}

static void add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(const counter *c)
{
    return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

static void observe(struct histogram *h, uint64_t ns)
{
    size_t i = 0;
    while (i < BUCKETS && ns > bucket_ns[i])
        i++;
    add(&h->buckets[i], 1);
    add(&h->sum_ns, ns);
}

void factsd_metrics_request(factsd_route_id route, factsd_metrics_method method,
                            unsigned status, uint64_t bytes, bool timed, uint64_t duration_ns)
{
    struct block *b = block_get();
    size_t r = (unsigned)route < ROUTES ? (size_t)route : (size_t)FACTSD_ROUTE_NONE;
    size_t m = (unsigned)method < FACTSD_METRICS_METHOD_COUNT ? (size_t)method
                                                              : (size_t)FACTSD_METRICS_OTHER;
    size_t code = status < 200 ? 0 : status >= 500 ? 4 : status / 100 - 1;
    add(&b->requests[r][m][code], 1);
    if (bytes > 0)
        add(&b->bytes[r], bytes);
    if (timed)
        observe(&b->duration[r], duration_ns);
}

void factsd_metrics_journal_append(bool ok, uint64_t duration_ns)
{
    struct block *b = block_get();
    add(ok ? &b->journal_writes : &b->journal_errors, 1);
    observe(&b->journal, duration_ns);
}

void factsd_metrics_compaction(void)
{
    add(&block_get()->compactions, 1);
}

void factsd_metrics_replica_set(const factsd_metrics_replica *rep)
{
    atomic_store_explicit(&reg.replica_lag_ms, rep->lag_ms, memory_order_relaxed);
    atomic_store_explicit(&reg.replica_connected, rep->connected, memory_order_relaxed);
    atomic_store_explicit(&reg.replica_revision, rep->revision, memory_order_relaxed);
    atomic_store_explicit(&reg.replica_diverged, rep->diverged, memory_order_relaxed);
    atomic_store_explicit(&reg.replica_ready, rep->ready, memory_order_relaxed);
    atomic_store_explicit(&reg.replica_enabled, true, memory_order_release);
}

void factsd_metrics_replica_get(factsd_metrics_replica *out)
{
    memset(out, 0, sizeof *out);
    out->enabled = atomic_load_explicit(&reg.replica_enabled, memory_order_acquire);
    if (!out->enabled)
        return;
    out->ready = atomic_load_explicit(&reg.replica_ready, memory_order_relaxed);
    out->connected = atomic_load_explicit(&reg.replica_connected, memory_order_relaxed);
    out->lag_ms = atomic_load_explicit(&reg.replica_lag_ms, memory_order_relaxed);
    out->revision = atomic_load_explicit(&reg.replica_revision, memory_order_relaxed);
    out->diverged = atomic_load_explicit(&reg.replica_diverged, memory_order_relaxed);
}

void factsd_metrics_start(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ms = (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    long long zero = 0;
    atomic_compare_exchange_strong(&reg.start_ms, &zero, ms);
}

factsd_metrics_format factsd_metrics_negotiate(const char *accept)
{
    static const char *const offers[] = {"text/plain", "application/openmetrics-text"};
    return factsd_negotiate_media(accept, offers, 2) == 1 ? FACTSD_METRICS_OPENMETRICS
                                                          : FACTSD_METRICS_TEXT;
}

/* ------------------------------------------------------------ rendering */

/* The sums of every block, read once per scrape. */
struct totals {
    uint64_t requests[ROUTES][FACTSD_METRICS_METHOD_COUNT][CODES];
    uint64_t bytes[ROUTES];
    uint64_t duration[ROUTES][BUCKETS + 1];
    uint64_t duration_sum[ROUTES];
    uint64_t journal[BUCKETS + 1];
    uint64_t journal_sum;
    uint64_t journal_writes;
    uint64_t journal_errors;
    uint64_t compactions;
};

static void totals_add_block(struct totals *t, const struct block *b)
{
    for (size_t r = 0; r < ROUTES; r++) {
        for (size_t m = 0; m < FACTSD_METRICS_METHOD_COUNT; m++)
            for (size_t c = 0; c < CODES; c++)
                t->requests[r][m][c] += get(&b->requests[r][m][c]);
        t->bytes[r] += get(&b->bytes[r]);
        for (size_t i = 0; i <= BUCKETS; i++)
            t->duration[r][i] += get(&b->duration[r].buckets[i]);
        t->duration_sum[r] += get(&b->duration[r].sum_ns);
    }
    for (size_t i = 0; i <= BUCKETS; i++)
        t->journal[i] += get(&b->journal.buckets[i]);
    t->journal_sum += get(&b->journal.sum_ns);
    t->journal_writes += get(&b->journal_writes);
    t->journal_errors += get(&b->journal_errors);
    t->compactions += get(&b->compactions);
}

static void totals_read(struct totals *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_lock(&reg.lock);
    for (const struct block *b = reg.all; b != NULL; b = b->next)
        totals_add_block(t, b);
    pthread_mutex_unlock(&reg.lock);
    totals_add_block(t, &reg.overflow);
}

/* What a metric family is, for its TYPE line and its sample names. */
enum kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM
};

struct out {
    factsd_buf b;
    bool om; /* OpenMetrics */
};

/* Writes a family's HELP, TYPE and (OpenMetrics) UNIT lines. name is the
 * sample name of a counter (ending in _total), which OpenMetrics names its
 * family without; unit (NULL: none) must end name's family name. */
static void family(struct out *o, const char *name, enum kind kind, const char *unit,
                   const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    size_t n = strlen(name);
    if (o->om && kind == KIND_COUNTER && n > 6 && strcmp(name + n - 6, "_total") == 0)
        n -= 6;
    factsd_buf_printf(&o->b, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, name, help, (int)n,
                      name, types[kind]);
    if (o->om && unit != NULL)
        factsd_buf_printf(&o->b, "# UNIT %.*s %s\n", (int)n, name, unit);
}

/* Writes nanoseconds ns as seconds, exactly. */
static void put_seconds(struct out *o, uint64_t ns)
{
    factsd_buf_printf(&o->b, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
                      (unsigned long long)(ns % 1000000000u));
}

/* Writes one histogram's samples; labels is "" or `route="...",`. */
static void histogram(struct out *o, const char *name, const char *labels,
                      const uint64_t *buckets, uint64_t sum_ns)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        cum += buckets[i];
        factsd_buf_printf(&o->b, "%s_bucket{%sle=\"%s\"} %llu\n", name, labels, bucket_le[i],
                          (unsigned long long)cum);
    }
    cum += buckets[BUCKETS];
    factsd_buf_printf(&o->b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
                      (unsigned long long)cum);
    size_t ln = strlen(labels);
    if (ln > 0)
        ln--; /* the trailing comma */
    factsd_buf_printf(&o->b, "%s_count%s%.*s%s %llu\n%s_sum%s%.*s%s ", name, ln ? "{" : "",
                      (int)ln, labels, ln ? "}" : "", (unsigned long long)cum, name,
                      ln ? "{" : "", (int)ln, labels, ln ? "}" : "");
    put_seconds(o, sum_ns);
    factsd_buf_puts(&o->b, "\n");
}

static void gauge(struct out *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, KIND_GAUGE, NULL, help);
    factsd_buf_printf(&o->b, "%s %llu\n", name, (unsigned long long)v);
}

static void counter_plain(struct out *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, KIND_COUNTER, NULL, help);
    factsd_buf_printf(&o->b, "%s %llu\n", name, (unsigned long long)v);
}

/* Appends s as a label value: backslash, quote and newline escaped. */
static void put_label_value(struct out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            factsd_buf_printf(&o->b, "\\%c", *s);
        else if (*s == '\n')
            factsd_buf_puts(&o->b, "\\n");
        else
            factsd_buf_append(&o->b, s, 1);
    }
}

static bool route_used(const struct totals *t, size_t r)
{
    for (size_t m = 0; m < FACTSD_METRICS_METHOD_COUNT; m++)
        for (size_t c = 0; c < CODES; c++)
            if (t->requests[r][m][c] != 0)
                return true;
    return false;
}

static void render_http(struct out *o, const struct totals *t)
{
    static const char requests[] = "factsd_http_requests_total";
    static const char duration[] = "factsd_http_request_duration_seconds";
    static const char bytes[] = "factsd_http_response_bytes_total";
    bool any = false;
    for (size_t r = 0; r < ROUTES && !any; r++)
        any = route_used(t, r);
    if (!any)
        return; /* no series yet: the families come with the first request */
    family(o, requests, KIND_COUNTER, NULL,
           "HTTP requests answered, by route template, method and status class.");
    for (size_t r = 0; r < ROUTES; r++)
        for (size_t m = 0; m < FACTSD_METRICS_METHOD_COUNT; m++)
            for (size_t c = 0; c < CODES; c++)
                if (t->requests[r][m][c] != 0)
                    factsd_buf_printf(&o->b, "%s{route=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
                                      requests, route_labels[r], method_labels[m],
                                      code_labels[c],
                                      (unsigned long long)t->requests[r][m][c]);
    family(o, duration, KIND_HISTOGRAM, "seconds",
           "Time from a request's headers to its completion, by route template (long-polls "
           "that waited and event streams are not timed).");
    for (size_t r = 0; r < ROUTES; r++) {
        uint64_t n = 0;
        for (size_t i = 0; i <= BUCKETS; i++)
            n += t->duration[r][i];
        if (n == 0)
            continue;
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\",", route_labels[r]);
        histogram(o, duration, labels, t->duration[r], t->duration_sum[r]);
    }
    family(o, bytes, KIND_COUNTER, "bytes",
           "Response content bytes sent (as encoded; headers not counted), by route "
           "template.");
    for (size_t r = 0; r < ROUTES; r++)
        if (route_used(t, r))
            factsd_buf_printf(&o->b, "%s{route=\"%s\"} %llu\n", bytes, route_labels[r],
                              (unsigned long long)t->bytes[r]);
}

char *factsd_metrics_render(factsd_metrics_format format, const factsd_metrics_gauges *g,
                            const char *version, size_t *len)
{
    struct totals *t = malloc(sizeof *t);
    if (t == NULL)
        return NULL;
    totals_read(t);
    struct out o = {.om = format == FACTSD_METRICS_OPENMETRICS};
    factsd_buf_init(&o.b, FACTSD_METRICS_BODY_MAX);
    render_http(&o, t);
    gauge(&o, "factsd_http_connections", "Open client connections.", g->connections);
    gauge(&o, "factsd_feed_long_polls", "Long-polls of /v1/changes held waiting for a change.",
          g->long_polls);
    gauge(&o, "factsd_feed_streams", "Event streams (/v1/stream) open.", g->streams);
    gauge(&o, "factsd_feed_history_entries", "Change entries the history keeps for the feed.",
          g->history);
    gauge(&o, "factsd_dataset_revision", "The revision of the published dataset.",
          g->revision);
    counter_plain(&o, "factsd_journal_writes_total",
                  "Changes appended to the journal and synced.", t->journal_writes);
    counter_plain(&o, "factsd_journal_write_errors_total",
                  "Journal appends that failed (the change was not stored).",
                  t->journal_errors);
    family(&o, "factsd_journal_append_duration_seconds", KIND_HISTOGRAM, "seconds",
           "Time to append one change to the journal, its sync included.");
    histogram(&o, "factsd_journal_append_duration_seconds", "", t->journal, t->journal_sum);
    counter_plain(&o, "factsd_compactions_total", "Compactions that completed.",
                  t->compactions);
    free(t);

    factsd_metrics_replica rep;
    factsd_metrics_replica_get(&rep);
    if (rep.enabled) {
        family(&o, "factsd_replica_lag_seconds", KIND_GAUGE, "seconds",
               "How far the replica is behind its primary.");
        factsd_buf_printf(&o.b, "factsd_replica_lag_seconds %llu.%03llu\n",
                          (unsigned long long)(rep.lag_ms / 1000),
                          (unsigned long long)(rep.lag_ms % 1000));
        gauge(&o, "factsd_replica_connected", "Whether the replica is connected to its primary.",
              rep.connected ? 1 : 0);
    }

    long long start = atomic_load(&reg.start_ms);
    family(&o, "process_start_time_seconds", KIND_GAUGE, "seconds",
           "Start time of the process since the Unix epoch in seconds.");
    factsd_buf_printf(&o.b, "process_start_time_seconds %lld.%03lld\n", start / 1000,
                      start % 1000);
    family(&o, "factsd_build_info", KIND_GAUGE, NULL, "The version of this factsd, as a label.");
    factsd_buf_puts(&o.b, "factsd_build_info{version=\"");
    put_label_value(&o, version != NULL ? version : "");
    factsd_buf_puts(&o.b, "\"} 1\n");
    if (o.om)
        factsd_buf_puts(&o.b, "# EOF\n");
    return factsd_buf_steal(&o.b, len);
}
