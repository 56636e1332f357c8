/*
 * embed_test.c - the HTTP service embedded in a host program: start it on
 * port 0 with the embedded dataset, publish another snapshot while a client
 * keeps its connection open, and stop it.
 */
#include "http.h"

#include <curl/curl.h>
#include <facts.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, what)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL (line %d): %s\n", __LINE__, what);                          \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

struct body {
    char data[65536];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct body *b = userp;
    size_t add = size * n;
    if (b->len + add >= sizeof b->data)
        return 0;
    memcpy(b->data + b->len, data, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* GETs url/healthz on the shared handle and returns the number of events
 * it reports (-1 on failure). */
static long healthz_events(CURL *curl, const char *base)
{
    char url[256];
    snprintf(url, sizeof url, "%s/healthz", base);
    struct body b = {.len = 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(curl) != CURLE_OK)
        return -1;
    json_t *v = json_loadb(b.data, b.len, 0, NULL);
    json_t *n = json_object_get(json_object_get(v, "counts"), "events");
    long events = json_is_integer(n) ? (long)json_integer_value(n) : -1;
    json_decref(v);
    return events;
}

int main(void)
{
    static const char small[] =
        "{\"format\":\"factsd-dataset/1\",\"sources\":[{\"slug\":\"note\",\"title\":\"A note\","
        "\"publisher\":\"example.org\",\"language\":\"en\",\"published\":{\"precision\":"
        "\"unknown\",\"basis\":\"unknown\"},\"paragraphs\":[1]}],\"actors\":[],\"events\":[],"
        "\"troop_estimates\":[]}";
    facts_store *embedded = NULL, *other = NULL;
    facts_error err;
    if (facts_store_load_embedded(&embedded, &err) != FACTS_OK ||
        facts_store_load_buffer(small, sizeof small - 1, "small", &other, &err) != FACTS_OK) {
        char text[512];
        facts_error_format(&err, text, sizeof text);
        fprintf(stderr, "cannot load a dataset: %s\n", text);
        return 1;
    }
    factsd_config cfg;
    factsd_config_init(&cfg);
    cfg.port = 0;
    cfg.threads = 2;
    char msg[512];
    factsd_http *h = factsd_http_start(&cfg, embedded, msg, sizeof msg);
    facts_store_unref(embedded);
    if (h == NULL) {
        fprintf(stderr, "cannot start: %s\n", msg);
        return 1;
    }
    CHECK(factsd_http_port(h) != 0, "port 0 picks a port");
    CHECK(strncmp(factsd_http_url(h), "http://127.0.0.1:", 17) == 0, "the URL names the address");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return 1;
    long before = healthz_events(curl, factsd_http_url(h));
    CHECK(before > 0, "the embedded dataset has events");
    long connections_before = 0;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connections_before);

    CHECK(factsd_http_publish(h, other, msg, sizeof msg), "publish another snapshot");
    facts_store_unref(other);
    long after = healthz_events(curl, factsd_http_url(h));
    long new_connections = -1;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &new_connections);
    CHECK(after == 0, "the kept-alive connection reads the new snapshot");
    CHECK(new_connections == 0, "the second request reused the connection");

    curl_easy_cleanup(curl);
    curl_global_cleanup();
    factsd_http_stop(h, 1000);
    printf("embedding: %s\n", failures == 0 ? "ok" : "failed");
    return failures == 0 ? 0 : 1;
}
