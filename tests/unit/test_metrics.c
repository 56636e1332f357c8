/*
 * test_metrics.c - the metrics registry and its rendering, without a
 * server: requests recorded from several threads at once (and from threads
 * that reuse the blocks of threads that exited) add up exactly; histograms
 * are cumulative, bucket bounds inclusive, +Inf equal to _count and the sum
 * exact; labels stay within their fixed sets; both formats carry their
 * own framing (OpenMetrics: family names without _total, # UNIT, # EOF);
 * the replica's metrics appear only once it reports; Accept picks the
 * format.
 *
 * usage: test_metrics
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "metrics.h"

enum {
    THREADS = 4,
    PER_THREAD = 5000,
    SAMPLES_MAX = 4096
};

static const char *const les[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                  "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                  "1.0",    "2.5",     "5.0",    "10.0",  "+Inf"};
enum { LES = sizeof les / sizeof les[0] };

/* A rendered scrape split into its samples: "name{labels}" -> value. */
struct scrape {
    char *body;
    size_t len;
    size_t n;
    const char *key[SAMPLES_MAX];
    const char *value[SAMPLES_MAX];
};

/* Renders a scrape into s (its body is cut into lines: free s->body). */
static void scrape_take(struct scrape *s, factsd_metrics_format format,
                        const factsd_metrics_gauges *g, const char *version)
{
    memset(s, 0, sizeof *s);
    s->body = factsd_metrics_render(format, g, version, &s->len);
    CHECK(s->body != NULL);
    if (s->body == NULL)
        return;
    CHECK(strlen(s->body) == s->len);
    CHECK(s->len > 0 && s->body[s->len - 1] == '\n');
    for (char *line = s->body; *line != '\0';) {
        char *end = strchr(line, '\n');
        if (end == NULL)
            break;
        *end = '\0';
        if (line[0] != '#' && s->n < SAMPLES_MAX) {
            char *space = strrchr(line, ' ');
            CHECK(space != NULL);
            if (space != NULL) {
                *space = '\0';
                s->key[s->n] = line;
                s->value[s->n] = space + 1;
                s->n++;
            }
        }
        line = end + 1;
    }
}

/* The value of sample key, or NULL when the scrape has none. */
static const char *scrape_get(const struct scrape *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->key[i], key) == 0)
            return s->value[i];
    return NULL;
}

static unsigned long long scrape_int(const struct scrape *s, const char *key)
{
    const char *v = scrape_get(s, key);
    if (v == NULL) {
        fprintf(stderr, "no sample %s\n", key);
        return (unsigned long long)-1;
    }
    return strtoull(v, NULL, 10);
}

/* Checks the histogram name{labels,le=...}: cumulative, +Inf == _count ==
 * count, _sum == sum (text). */
static void check_histogram(const struct scrape *s, const char *name, const char *labels,
                            unsigned long long count, const char *sum)
{
    char key[256];
    unsigned long long last = 0;
    for (size_t i = 0; i < LES; i++) {
        snprintf(key, sizeof key, "%s_bucket{%s%sle=\"%s\"}", name, labels,
                 labels[0] != '\0' ? "," : "", les[i]);
        unsigned long long v = scrape_int(s, key);
        CHECK(v != (unsigned long long)-1 && v >= last);
        last = v;
    }
    CHECK(last == count);
    snprintf(key, sizeof key, labels[0] != '\0' ? "%s_count{%s}" : "%s_count%s", name, labels);
    CHECK(scrape_int(s, key) == count);
    snprintf(key, sizeof key, labels[0] != '\0' ? "%s_sum{%s}" : "%s_sum%s", name, labels);
    CHECK_STR(scrape_get(s, key), sum);
}

/* Each thread: PER_THREAD GETs of an item answered 200 with 10 bytes,
 * taking 50 us, 300 us and 2 ms in turn; plus one 404 that is not timed. */
static void *recorder(void *arg)
{
    (void)arg;
    static const uint64_t ns[3] = {50000, 300000, 2000000};
    for (int i = 0; i < PER_THREAD; i++)
        factsd_metrics_request(FACTSD_ROUTE_ITEM, FACTSD_METRICS_GET, 200, 10, true, ns[i % 3]);
    factsd_metrics_request(FACTSD_ROUTE_NONE, FACTSD_METRICS_GET, 404, 0, false, 0);
    return NULL;
}

static void run_threads(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, recorder, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static const char item_get_2xx[] =
    "factsd_http_requests_total{route=\"/v1/{collection}/{key}\",method=\"GET\",code=\"2xx\"}";
static const char duration[] = "factsd_http_request_duration_seconds";

static void test_empty(const factsd_metrics_gauges *g)
{
    struct scrape s;
    scrape_take(&s, FACTSD_METRICS_TEXT, g, "1.2\"x\\");
    for (size_t i = 0; i < s.n; i++)
        CHECK(strncmp(s.key[i], "factsd_http_", 12) != 0 ||
              strncmp(s.key[i], "factsd_http_connections", 23) == 0);
    CHECK(scrape_int(&s, "factsd_dataset_revision") == 42);
    CHECK(scrape_int(&s, "factsd_http_connections") == 3);
    CHECK(scrape_int(&s, "factsd_feed_long_polls") == 2);
    CHECK(scrape_int(&s, "factsd_feed_streams") == 1);
    CHECK(scrape_int(&s, "factsd_feed_history_entries") == 9);
    CHECK(scrape_int(&s, "factsd_journal_writes_total") == 0);
    CHECK(scrape_int(&s, "factsd_compactions_total") == 0);
    check_histogram(&s, "factsd_journal_append_duration_seconds", "", 0, "0.000000000");
    /* The version's quote and backslash are escaped. */
    CHECK_STR(scrape_get(&s, "factsd_build_info{version=\"1.2\\\"x\\\\\"}"), "1");
    const char *start = scrape_get(&s, "process_start_time_seconds");
    CHECK(start != NULL && strtod(start, NULL) > 1.5e9);
    CHECK(scrape_get(&s, "factsd_replica_lag_seconds") == NULL);
    free(s.body);
}

static void test_requests(const factsd_metrics_gauges *g)
{
    run_threads();
    run_threads(); /* new threads, reusing the blocks of those that exited */
    /* Labels outside the fixed sets fold into "other" and the nearest class. */
    factsd_metrics_request((factsd_route_id)999, (factsd_metrics_method)77, 99, 5, true,
                           20000000000ull);
    factsd_metrics_request(FACTSD_ROUTE_STREAM, FACTSD_METRICS_GET, 200, 1234, false, 0);
    factsd_metrics_request(FACTSD_ROUTE_METRICS, FACTSD_METRICS_HEAD, 604, 0, true, 100000);

    struct scrape s;
    scrape_take(&s, FACTSD_METRICS_TEXT, g, "0.1.0");
    const unsigned long long n = 2ull * THREADS * PER_THREAD;
    CHECK(scrape_int(&s, item_get_2xx) == n);
    CHECK(scrape_int(&s, "factsd_http_requests_total{route=\"other\",method=\"GET\","
                         "code=\"4xx\"}") == 2 * THREADS);
    CHECK(scrape_int(&s, "factsd_http_requests_total{route=\"other\",method=\"other\","
                         "code=\"1xx\"}") == 1);
    CHECK(scrape_int(&s, "factsd_http_requests_total{route=\"/v1/stream\",method=\"GET\","
                         "code=\"2xx\"}") == 1);
    CHECK(scrape_int(&s, "factsd_http_requests_total{route=\"/metrics\",method=\"HEAD\","
                         "code=\"5xx\"}") == 1);
    CHECK(scrape_int(&s, "factsd_http_response_bytes_total{route=\"/v1/{collection}/{key}\"}") ==
          10 * n);
    CHECK(scrape_int(&s, "factsd_http_response_bytes_total{route=\"/v1/stream\"}") == 1234);
    /* A third of the requests in each of the 0.0001, 0.0005 and 0.0025
     * buckets (the thread's count is not a multiple of 3: count exactly). */
    unsigned long long each[3] = {0, 0, 0};
    for (int i = 0; i < PER_THREAD; i++)
        each[i % 3] += 2 * THREADS;
    char key[256];
    snprintf(key, sizeof key, "%s_bucket{route=\"/v1/{collection}/{key}\",le=\"0.0001\"}",
             duration);
    CHECK(scrape_int(&s, key) == each[0]);
    snprintf(key, sizeof key, "%s_bucket{route=\"/v1/{collection}/{key}\",le=\"0.00025\"}",
             duration);
    CHECK(scrape_int(&s, key) == each[0]);
    snprintf(key, sizeof key, "%s_bucket{route=\"/v1/{collection}/{key}\",le=\"0.0005\"}",
             duration);
    CHECK(scrape_int(&s, key) == each[0] + each[1]);
    snprintf(key, sizeof key, "%s_bucket{route=\"/v1/{collection}/{key}\",le=\"0.0025\"}",
             duration);
    CHECK(scrape_int(&s, key) == n);
    unsigned long long sum_ns = each[0] * 50000ull + each[1] * 300000ull + each[2] * 2000000ull;
    char sum[64];
    snprintf(sum, sizeof sum, "%llu.%09llu", sum_ns / 1000000000ull, sum_ns % 1000000000ull);
    check_histogram(&s, duration, "route=\"/v1/{collection}/{key}\"", n, sum);
    /* 20 s is past the last finite bucket: only +Inf holds it. */
    snprintf(key, sizeof key, "%s_bucket{route=\"other\",le=\"10.0\"}", duration);
    CHECK(scrape_int(&s, key) == 0);
    check_histogram(&s, duration, "route=\"other\"", 1, "20.000000000");
    check_histogram(&s, duration, "route=\"/metrics\"", 1, "0.000100000");
    /* The bound is inclusive: 100 us is in le="0.0001". */
    snprintf(key, sizeof key, "%s_bucket{route=\"/metrics\",le=\"0.0001\"}", duration);
    CHECK(scrape_int(&s, key) == 1);
    /* Streams are not timed, and untouched routes have no series. */
    snprintf(key, sizeof key, "%s_count{route=\"/v1/stream\"}", duration);
    CHECK(scrape_get(&s, key) == NULL);
    CHECK(scrape_get(&s, "factsd_http_response_bytes_total{route=\"/v1\"}") == NULL);
    free(s.body);
}

static void test_journal(const factsd_metrics_gauges *g)
{
    factsd_metrics_journal_append(true, 1000000);
    factsd_metrics_journal_append(true, 3000000);
    factsd_metrics_journal_append(false, 1);
    factsd_metrics_compaction();
    struct scrape s;
    scrape_take(&s, FACTSD_METRICS_TEXT, g, "0.1.0");
    CHECK(scrape_int(&s, "factsd_journal_writes_total") == 2);
    CHECK(scrape_int(&s, "factsd_journal_write_errors_total") == 1);
    CHECK(scrape_int(&s, "factsd_compactions_total") == 1);
    check_histogram(&s, "factsd_journal_append_duration_seconds", "", 3, "0.004000001");
    CHECK(scrape_int(&s, "factsd_journal_append_duration_seconds_bucket{le=\"0.001\"}") == 2);
    CHECK(scrape_int(&s, "factsd_journal_append_duration_seconds_bucket{le=\"0.0025\"}") == 2);
    CHECK(scrape_int(&s, "factsd_journal_append_duration_seconds_bucket{le=\"0.005\"}") == 3);
    free(s.body);
}

static void test_formats(const factsd_metrics_gauges *g)
{
    size_t len = 0;
    char *text = factsd_metrics_render(FACTSD_METRICS_TEXT, g, "0.1.0", &len);
    char *om = factsd_metrics_render(FACTSD_METRICS_OPENMETRICS, g, "0.1.0", &len);
    CHECK(text != NULL && om != NULL);
    if (text == NULL || om == NULL) {
        free(text);
        free(om);
        return;
    }
    CHECK(strstr(text, "# TYPE factsd_http_requests_total counter\n") != NULL);
    CHECK(strstr(text, "# UNIT") == NULL && strstr(text, "# EOF") == NULL);
    CHECK(strstr(om, "# TYPE factsd_http_requests counter\n") != NULL);
    CHECK(strstr(om, "# TYPE factsd_http_requests_total") == NULL);
    CHECK(strstr(om, "# HELP factsd_journal_writes ") != NULL);
    CHECK(strstr(om, "# UNIT factsd_http_request_duration_seconds seconds\n") != NULL);
    CHECK(strstr(om, "# UNIT factsd_http_response_bytes bytes\n") != NULL);
    size_t n = strlen(om);
    CHECK(n > 6 && strcmp(om + n - 6, "# EOF\n") == 0);
    CHECK(strstr(om, item_get_2xx) != NULL);
    /* The samples are the same in both formats. */
    struct scrape a, b;
    scrape_take(&a, FACTSD_METRICS_TEXT, g, "0.1.0");
    scrape_take(&b, FACTSD_METRICS_OPENMETRICS, g, "0.1.0");
    CHECK(a.n == b.n && a.n > 0);
    for (size_t i = 0; i < a.n && i < b.n; i++) {
        CHECK_STR(a.key[i], b.key[i]);
        if (strcmp(a.key[i], "process_start_time_seconds") != 0)
            CHECK_STR(a.value[i], b.value[i]);
    }
    free(a.body);
    free(b.body);
    free(text);
    free(om);
}

static void test_replica(const factsd_metrics_gauges *g)
{
    factsd_metrics_replica r;
    factsd_metrics_replica_get(&r);
    CHECK(!r.enabled && !r.ready && r.lag_ms == 0);
    factsd_metrics_replica_set(&(factsd_metrics_replica){
        .connected = true, .diverged = true, .lag_ms = 1500, .revision = 7});
    factsd_metrics_replica_get(&r);
    CHECK(r.enabled && r.connected && !r.ready && r.diverged && r.lag_ms == 1500 &&
          r.revision == 7);
    struct scrape s;
    scrape_take(&s, FACTSD_METRICS_TEXT, g, "0.1.0");
    CHECK_STR(scrape_get(&s, "factsd_replica_lag_seconds"), "1.500");
    CHECK_STR(scrape_get(&s, "factsd_replica_connected"), "1");
    free(s.body);
    factsd_metrics_replica_set(&(factsd_metrics_replica){.ready = true, .revision = 9});
    factsd_metrics_replica_get(&r);
    CHECK(r.ready && !r.diverged && !r.connected && r.revision == 9);
    scrape_take(&s, FACTSD_METRICS_OPENMETRICS, g, "0.1.0");
    CHECK_STR(scrape_get(&s, "factsd_replica_lag_seconds"), "0.000");
    CHECK_STR(scrape_get(&s, "factsd_replica_connected"), "0");
    free(s.body);
    size_t len = 0;
    char *om = factsd_metrics_render(FACTSD_METRICS_OPENMETRICS, g, "0.1.0", &len);
    CHECK(om != NULL && strstr(om, "# UNIT factsd_replica_lag_seconds seconds\n") != NULL);
    free(om);
}

static void test_negotiate(void)
{
    CHECK(factsd_metrics_negotiate(NULL) == FACTSD_METRICS_TEXT);
    CHECK(factsd_metrics_negotiate("*/*") == FACTSD_METRICS_TEXT);
    CHECK(factsd_metrics_negotiate("text/plain") == FACTSD_METRICS_TEXT);
    CHECK(factsd_metrics_negotiate("application/json") == FACTSD_METRICS_TEXT);
    CHECK(factsd_metrics_negotiate(
              "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1") ==
          FACTSD_METRICS_OPENMETRICS);
    CHECK(factsd_metrics_negotiate("application/openmetrics-text") ==
          FACTSD_METRICS_OPENMETRICS);
    CHECK(factsd_metrics_negotiate("application/openmetrics-text;q=0.4, text/plain;q=0.5") ==
          FACTSD_METRICS_TEXT);
    CHECK(factsd_metrics_negotiate("application/openmetrics-text, text/plain") ==
          FACTSD_METRICS_TEXT); /* a tie goes to the text format */
}

int main(void)
{
    factsd_metrics_start();
    factsd_metrics_gauges g = {
        .revision = 42, .connections = 3, .long_polls = 2, .streams = 1, .history = 9};
    test_empty(&g);
    test_requests(&g);
    test_journal(&g);
    test_formats(&g);
    test_replica(&g);
    test_negotiate();
    return check_done("test_metrics");
}
