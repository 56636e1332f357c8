/*
 * readiness_test.c - /readyz through the replica hook, with the service
 * embedded as a replica would run it: ready as a standalone server; not
 * ready (503, lag_seconds, revision once it has one) while the replica
 * reports it has not loaded or caught up, while /healthz still answers;
 * ready again once it has; the replica's gauges in /metrics; and not ready
 * while the service stops. Every response is recorded and checked against
 * the OpenAPI description.
 *
 * usage: factsd-readiness-test --openapi OPENAPI.json --record FILE
 *                              --node NODE --validator SCRIPT
 */
#include "http.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <facts.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static json_t *records; /* every response, for the validator */

#define CHECK(cond, what)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL (line %d): %s\n", __LINE__, what);                          \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

struct resp {
    long status;
    char body[262144];
    size_t len;
    json_t *headers; /* lower-case name -> value */
};

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct resp *r = userp;
    size_t add = size * n;
    if (r->len + add >= sizeof r->body)
        return 0;
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct resp *r = userp;
    size_t len = size * n;
    const char *colon = memchr(data, ':', len);
    if (colon == NULL || colon == data)
        return len;
    char name[128], value[1024];
    size_t nl = (size_t)(colon - data);
    if (nl >= sizeof name)
        return len;
    for (size_t i = 0; i < nl; i++)
        name[i] = (char)(data[i] >= 'A' && data[i] <= 'Z' ? data[i] - 'A' + 'a' : data[i]);
    name[nl] = '\0';
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= sizeof value)
        return len;
    memcpy(value, v, vl);
    value[vl] = '\0';
    json_object_set_new(r->headers, name, json_string(value));
    return len;
}

/* Sends method target (on the shared handle, so the connection is kept)
 * and records the response. */
static void request(CURL *curl, const char *base, const char *method, const char *target,
                    struct resp *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, target);
    json_decref(r->headers);
    r->headers = json_object();
    r->len = 0;
    r->body[0] = '\0';
    r->status = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    if (curl_easy_perform(curl) != CURLE_OK)
        return;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    json_t *rec = json_pack("{s:s, s:s, s:I, s:O, s:s%}", "method", method, "target", target,
                            "status", (json_int_t)r->status, "headers", r->headers, "body",
                            r->body, r->len);
    if (rec == NULL || json_array_append_new(records, rec) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}

/* The value of the sample name (no labels) in a text scrape, or -1. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* Checks a 503 /readyz body: an unavailable problem, with lag_seconds and
 * revision as given (revision 0: absent; lag < 0: absent). */
static void check_not_ready(const struct resp *r, double lag, long long revision,
                            const char *detail)
{
    CHECK(r->status == 503, "not ready: 503");
    const char *ct = json_string_value(json_object_get(r->headers, "content-type"));
    CHECK(ct != NULL && strcmp(ct, "application/problem+json") == 0, "a problem document");
    json_t *v = json_loadb(r->body, r->len, 0, NULL);
    CHECK(v != NULL, "the problem is JSON");
    const char *type = json_string_value(json_object_get(v, "type"));
    CHECK(type != NULL && strcmp(type, "urn:factsd:problem:unavailable") == 0,
          "type unavailable");
    json_t *l = json_object_get(v, "lag_seconds");
    if (lag < 0)
        CHECK(l == NULL, "no lag_seconds");
    else
        CHECK(json_is_number(l) && json_number_value(l) == lag, "lag_seconds");
    json_t *rev = json_object_get(v, "revision");
    if (revision == 0)
        CHECK(rev == NULL, "no revision before a snapshot");
    else
        CHECK(json_integer_value(rev) == revision, "the replica's revision");
    const char *d = json_string_value(json_object_get(v, "detail"));
    CHECK(d != NULL && strstr(d, detail) != NULL, "the detail says why");
    json_decref(v);
}

static void check_ready(const struct resp *r, long long revision)
{
    CHECK(r->status == 200, "ready: 200");
    json_t *v = json_loadb(r->body, r->len, 0, NULL);
    const char *status = json_string_value(json_object_get(v, "status"));
    CHECK(json_is_object(v) && json_object_size(v) == 2 && status != NULL &&
              strcmp(status, "ready") == 0 &&
              json_integer_value(json_object_get(v, "revision")) == revision,
          "{\"status\":\"ready\",\"revision\":N}");
    json_decref(v);
}

struct stopper {
    factsd_http *h;
};

static void *stop_main(void *arg)
{
    struct stopper *s = arg;
    factsd_http_stop(s->h, 5000);
    return NULL;
}

/* Opens a connection to port and sends a request line and a header but not
 * the end of the headers: a request in progress. Returns the socket. */
static int request_begin(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
        return -1;
    static const char part[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    if (write(fd, part, sizeof part - 1) != (ssize_t)(sizeof part - 1))
        return -1;
    return fd;
}

static int validate(const char *node, const char *validator, const char *openapi,
                    const char *record)
{
    FILE *f = fopen(record, "w");
    if (f == NULL)
        return 1;
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        char *line = json_dumps(rec, JSON_COMPACT);
        if (line != NULL)
            fprintf(f, "%s\n", line);
        free(line);
    }
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        execl(node, node, validator, openapi, record, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return 1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *openapi = NULL, *record = NULL, *node = NULL, *validator = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--openapi") == 0)
            openapi = argv[i + 1];
        else if (strcmp(argv[i], "--record") == 0)
            record = argv[i + 1];
        else if (strcmp(argv[i], "--node") == 0)
            node = argv[i + 1];
        else if (strcmp(argv[i], "--validator") == 0)
            validator = argv[i + 1];
    }
    if (openapi == NULL || record == NULL || node == NULL || validator == NULL) {
        fprintf(stderr, "usage: factsd-readiness-test --openapi FILE --record FILE --node NODE "
                        "--validator SCRIPT\n");
        return 2;
    }
    records = json_array();
    facts_store *store = NULL;
    facts_error err;
    if (records == NULL || facts_store_load_embedded(&store, &err) != FACTS_OK) {
        fprintf(stderr, "cannot load the embedded dataset\n");
        return 1;
    }
    long long revision = (long long)facts_store_revision(store);
    factsd_config cfg;
    factsd_config_init(&cfg);
    cfg.port = 0;
    cfg.threads = 2;
    char msg[512];
    factsd_http *h = factsd_http_start(&cfg, store, msg, sizeof msg);
    facts_store_unref(store);
    if (h == NULL) {
        fprintf(stderr, "cannot start: %s\n", msg);
        return 1;
    }
    const char *base = factsd_http_url(h);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return 1;
    struct resp *r = calloc(1, sizeof *r);
    if (r == NULL)
        return 1;

    /* What the validator's self-test drifts: an event, a page, a 400. */
    request(curl, base, "GET", "/v1/events?limit=1", r);
    json_t *page = json_loadb(r->body, r->len, 0, NULL);
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(page, "items"), 0), "id"));
    char item[128];
    snprintf(item, sizeof item, "/v1/events/%s", id != NULL ? id : "none");
    json_decref(page);
    request(curl, base, "GET", item, r);
    CHECK(r->status == 200, "an event");
    request(curl, base, "GET", "/v1/events?bogus=1", r);

    /* Standalone: ready at once, no replica gauges. */
    request(curl, base, "GET", "/readyz", r);
    check_ready(r, revision);
    request(curl, base, "GET", "/metrics", r);
    CHECK(sample(r->body, "factsd_replica_lag_seconds") < 0, "no replica metrics standalone");

    /* A replica starting: nothing loaded, not connected. */
    factsd_metrics_replica_set(&(factsd_metrics_replica){.ready = false});
    request(curl, base, "GET", "/readyz", r);
    check_not_ready(r, 0, 0, "has not loaded a snapshot");
    request(curl, base, "HEAD", "/readyz", r);
    CHECK(r->status == 503 && r->len == 0, "HEAD /readyz: 503, no body");
    request(curl, base, "GET", "/healthz", r);
    CHECK(r->status == 200, "/healthz still answers");
    request(curl, base, "GET", "/metrics", r);
    CHECK(sample(r->body, "factsd_replica_lag_seconds") == 0 &&
              sample(r->body, "factsd_replica_connected") == 0,
          "the replica's gauges appear");

    /* Loaded, connected, 2.5 s behind. */
    factsd_metrics_replica_set(&(factsd_metrics_replica){
        .connected = true, .lag_ms = 2500, .revision = (uint64_t)revision});
    request(curl, base, "GET", "/readyz", r);
    check_not_ready(r, 2.5, revision, "has not caught up");
    request(curl, base, "GET", "/metrics", r);
    CHECK(sample(r->body, "factsd_replica_lag_seconds") == 2.5 &&
              sample(r->body, "factsd_replica_connected") == 1,
          "lag 2.5 s, connected");
    CHECK(strstr(r->body, "factsd_http_requests_total{route=\"/readyz\",method=\"GET\","
                          "code=\"5xx\"} 2\n") != NULL,
          "the 503s are counted");

    /* Diverged: its primary came back behind it. */
    factsd_metrics_replica_set(&(factsd_metrics_replica){
        .connected = true, .diverged = true, .revision = (uint64_t)revision});
    request(curl, base, "GET", "/readyz", r);
    check_not_ready(r, 0, revision, "primary's data is behind this replica's");

    /* Caught up. */
    factsd_metrics_replica_set(&(factsd_metrics_replica){
        .connected = true, .ready = true, .lag_ms = 40, .revision = (uint64_t)revision});
    request(curl, base, "GET", "/readyz", r);
    check_ready(r, revision);

    /* Stopping: a request in progress holds the stop in its grace period;
     * meanwhile the kept-alive connection asks again. */
    int fd = request_begin(factsd_http_port(h));
    CHECK(fd >= 0, "a request in progress");
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL); /* its request line is in */
    struct stopper s = {h};
    pthread_t t;
    bool stopping = pthread_create(&t, NULL, stop_main, &s) == 0;
    CHECK(stopping, "stop in a thread");
    nanosleep(&pause, NULL);
    request(curl, base, "GET", "/readyz", r);
    check_not_ready(r, 0.04, revision, "stopping");
    if (fd >= 0) {
        CHECK(write(fd, "\r\n", 2) == 2, "the request in progress ends");
        char buf[4096];
        while (read(fd, buf, sizeof buf) > 0)
            ;
        close(fd);
    }
    if (stopping)
        pthread_join(t, NULL);

    curl_easy_cleanup(curl);
    curl_global_cleanup();
    json_decref(r->headers);
    free(r);
    int rc = validate(node, validator, openapi, record);
    CHECK(rc == 0, "every response matches the OpenAPI description");
    json_decref(records);
    printf("readiness: %s\n", failures == 0 ? "ok" : "failed");
    return failures == 0 ? 0 : 1;
}
