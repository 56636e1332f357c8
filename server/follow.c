/*
 * follow.c - a replica following its primary (see follow.h).
 *
 * One thread, one libcurl easy handle (its connection kept alive between
 * requests). Its loop: long-poll URL/v1/changes?since=OURS&wait=W; apply
 * each entry after OURS in order, checking that the record it makes is the
 * record the primary sent; take a snapshot when that cannot be done. Lag:
 * zero while the replica is caught up (its last answer's latest revision was
 * its own) and a long-poll is open within the time the primary may hold it;
 * otherwise the time since it was last caught up. Ready: a snapshot loaded,
 * not behind a primary that went backwards, and lag within --max-lag.
 */
#include "follow.h"

#include "metrics.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FACTSD_VERSION
#define FACTSD_VERSION FACTS_VERSION
#endif

enum {
    BACKOFF_FIRST_MS = 100,
    BACKOFF_MAX_MS = 5000,
    CONNECT_TIMEOUT_S = 5,
    SNAPSHOT_TIMEOUT_S = 60,
    SLICE_MS = 500,          /* a backoff wait reports the lag this often */
    LIMIT = 500,             /* changes asked for at once */
    URL_MAX = FACTSD_CONFIG_URL_LEN + 128,
    WHY_LEN = URL_MAX + CURL_ERROR_SIZE + 512 /* a reason, with a URL */
};

struct factsd_follow {
    factsd_config cfg;
    CURL *curl;
    struct curl_slist *headers;
    char curl_error[CURL_ERROR_SIZE];
    char *body;                 /* the answer being received */
    size_t body_len;
    size_t body_cap;
    bool body_too_large;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;       /* with wake: the backoff's wait */
    pthread_cond_t wake;
    atomic_bool stop;
    factsd_http *http;
    facts_store *store;         /* what the replica serves (its revision) */
    bool connected;             /* the last request got an answer */
    bool caught_up;             /* that answer's latest revision was ours */
    bool diverged;              /* the primary's snapshot is behind ours */
    long long caught_up_ms;     /* when the replica was last caught up */
    long long poll_start_ms;    /* when the current long-poll began */
    long long reported_ms;      /* when the lag was last reported */
    unsigned backoff_ms;
    char problem[WHY_LEN];          /* the reason last printed; "" when fine */
};

/* ------------------------------------------------------------- helpers */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint64_t follow_revision(const factsd_follow *f)
{
    return f->store != NULL ? facts_store_revision(f->store) : 0;
}

/* Reports lag, connection and readiness to metrics.h. */
static void follow_report(factsd_follow *f)
{
    long long now = now_ms();
    /* A long-poll the primary still holds within its wait means nothing
     * newer exists yet: caught up as of now. */
    if (f->connected && f->caught_up && f->poll_start_ms > 0 &&
        now - f->poll_start_ms <= (FACTSD_FOLLOW_WAIT + 2) * 1000LL)
        f->caught_up_ms = now;
    long long lag = f->store == NULL ? 0 : now - f->caught_up_ms;
    if (lag < 0)
        lag = 0;
    bool ready = f->store != NULL && !f->diverged && lag <= (long long)f->cfg.max_lag * 1000;
    factsd_metrics_replica rep = {
        .connected = f->connected,
        .ready = ready,
        .diverged = f->diverged,
        .lag_ms = (uint64_t)lag,
        .revision = follow_revision(f),
    };
    factsd_metrics_replica_set(&rep);
    f->reported_ms = now;
}

/* Prints "factsd: follow: <text>" once for each new problem. */
static void follow_problem(factsd_follow *f, const char *text)
{
    if (strcmp(f->problem, text) == 0)
        return;
    snprintf(f->problem, sizeof f->problem, "%s", text);
    fprintf(stderr, "factsd: follow: %s (retrying)\n", text);
}

/* Notes that things work again after a problem. */
static void follow_recovered(factsd_follow *f)
{
    f->backoff_ms = 0;
    if (f->problem[0] == '\0')
        return;
    f->problem[0] = '\0';
    fprintf(stderr, "factsd: follow: the primary %s answers again, at revision %llu here\n",
            f->cfg.follow_url, (unsigned long long)follow_revision(f));
}

/* Waits out the next backoff step (stop wakes it), reporting the lag. */
static void follow_backoff(factsd_follow *f)
{
    f->backoff_ms = f->backoff_ms == 0 ? BACKOFF_FIRST_MS : f->backoff_ms * 2;
    if (f->backoff_ms > BACKOFF_MAX_MS)
        f->backoff_ms = BACKOFF_MAX_MS;
    long long until = now_ms() + f->backoff_ms;
    pthread_mutex_lock(&f->lock);
    while (!atomic_load(&f->stop)) {
        long long now = now_ms();
        if (now >= until)
            break;
        long long step = until - now < SLICE_MS ? until - now : SLICE_MS;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += (time_t)(step / 1000);
        t.tv_nsec += (long)(step % 1000) * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->wake, &f->lock, &t);
        pthread_mutex_unlock(&f->lock);
        follow_report(f);
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
}

/* ---------------------------------------------------------------- HTTP */

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    factsd_follow *f = cls;
    size_t len = size * n;
    if (len > FACTSD_FOLLOW_BODY_MAX - f->body_len) {
        f->body_too_large = true;
        return 0; /* aborts the transfer */
    }
    if (f->body_len + len + 1 > f->body_cap) {
        size_t cap = f->body_cap > 0 ? f->body_cap : 64 * 1024;
        while (cap < f->body_len + len + 1)
            cap *= 2;
        if (cap > FACTSD_FOLLOW_BODY_MAX + 1)
            cap = FACTSD_FOLLOW_BODY_MAX + 1;
        char *grown = realloc(f->body, cap);
        if (grown == NULL)
            return 0;
        f->body = grown;
        f->body_cap = cap;
    }
    memcpy(f->body + f->body_len, data, len);
    f->body_len += len;
    f->body[f->body_len] = '\0';
    return len;
}

static int on_progress(void *cls, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    factsd_follow *f = cls;
    if (atomic_load(&f->stop))
        return 1; /* aborts the transfer */
    if (f->http != NULL && now_ms() - f->reported_ms >= SLICE_MS)
        follow_report(f);
    return 0;
}

/* GETs the primary's path (with its query). Returns the HTTP status with
 * the content in f->body (f->body_len bytes, NUL-terminated), or 0 with the
 * reason in why (size bytes) when no answer came (or the content was too
 * large), or -1 when memory ran out. */
static long follow_get(factsd_follow *f, const char *path, long timeout_s, char *why,
                       size_t size)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s%s", f->cfg.follow_url, path);
    f->body_len = 0;
    f->body_too_large = false;
    f->curl_error[0] = '\0';
    if (curl_easy_setopt(f->curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(f->curl, CURLOPT_TIMEOUT, timeout_s) != CURLE_OK) {
        snprintf(why, size, "libcurl refused the URL %.200s", url);
        return 0;
    }
    CURLcode rc = curl_easy_perform(f->curl);
    if (rc != CURLE_OK) {
        if (f->body_too_large)
            snprintf(why, size, "%s answered with more than %d bytes", url,
                     FACTSD_FOLLOW_BODY_MAX);
        else
            snprintf(why, size, "%s: %s", url,
                     f->curl_error[0] != '\0' ? f->curl_error : curl_easy_strerror(rc));
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &status);
    if (f->body == NULL) { /* an empty answer: still a string */
        if ((f->body = malloc(1)) == NULL) {
            snprintf(why, size, "out of memory");
            return -1;
        }
        f->body[0] = '\0';
        f->body_cap = 1;
    }
    return status;
}

/* ------------------------------------------------------------ snapshot */

/* Fetches and loads the primary's snapshot. Returns the store, or NULL
 * with the reason in why and *status as follow_get returns it (200 when the
 * snapshot came but does not load). */
static facts_store *snapshot_fetch(factsd_follow *f, long *status, char *why, size_t size)
{
    *status = follow_get(f, "/v1/snapshot", SNAPSHOT_TIMEOUT_S, why, size);
    if (*status <= 0)
        return NULL;
    if (*status != 200) {
        snprintf(why, size, "%s/v1/snapshot answered %ld: is it a factsd primary?",
                 f->cfg.follow_url, *status);
        return NULL;
    }
    facts_store *s = NULL;
    facts_error err;
    facts_status st = facts_store_load_buffer(f->body, f->body_len, "snapshot", &s, &err);
    if (st == FACTS_ENOMEM) {
        *status = -1;
        snprintf(why, size, "out of memory");
        return NULL;
    }
    if (st != FACTS_OK) {
        char text[512];
        facts_error_format(&err, text, sizeof text);
        snprintf(why, size, "the primary's snapshot does not load: %.400s", text);
        return NULL;
    }
    return s;
}

facts_store *factsd_follow_bootstrap(factsd_follow *f)
{
    char why[WHY_LEN];
    for (;;) {
        long status;
        facts_store *s = snapshot_fetch(f, &status, why, sizeof why);
        if (s != NULL) {
            f->connected = true;
            follow_recovered(f);
            return s;
        }
        if (status < 0) {
            fprintf(stderr, "factsd: follow: out of memory\n");
            return NULL;
        }
        follow_problem(f, why);
        follow_backoff(f);
    }
}

/* A fresh snapshot in place of the changes: published when it is after
 * the replica's revision; one behind it (or different at the same
 * revision) is kept out, and the replica is not ready until the primary
 * moves past it. */
static void follow_resnapshot(factsd_follow *f, const char *reason)
{
    char why[WHY_LEN];
    long status;
    facts_store *s = snapshot_fetch(f, &status, why, sizeof why);
    if (s == NULL) {
        f->connected = status > 0;
        follow_problem(f, why);
        follow_backoff(f);
        return;
    }
    f->connected = true;
    uint64_t ours = follow_revision(f), theirs = facts_store_revision(s);
    if (theirs > ours) {
        char msg[256];
        if (!factsd_http_advance(f->http, s, NULL, msg, sizeof msg)) {
            facts_store_unref(s);
            follow_problem(f, msg);
            follow_backoff(f);
            return;
        }
        fprintf(stderr, "factsd: follow: %s: took the primary's snapshot at revision %llu\n",
                reason, (unsigned long long)theirs);
        facts_store_unref(f->store);
        f->store = s;
        f->diverged = false;
        f->caught_up = true;
        f->caught_up_ms = now_ms();
        follow_recovered(f);
        follow_report(f);
        return;
    }
    bool same = theirs == ours && facts_store_same_records(s, f->store);
    facts_store_unref(s);
    if (same) {
        f->diverged = false;
        follow_backoff(f);
        return;
    }
    f->diverged = true;
    follow_report(f);
    char text[WHY_LEN];
    snprintf(text, sizeof text,
             "the primary is at revision %llu, %s this replica's %llu: serving %llu, not "
             "ready, until the primary moves past it",
             (unsigned long long)theirs, theirs == ours ? "with other records than" : "behind",
             (unsigned long long)ours, (unsigned long long)ours);
    follow_problem(f, text);
    follow_backoff(f);
}

/* ------------------------------------------------------------- changes */

typedef enum apply_result {
    APPLY_OK = 0,      /* every entry applied (or none was new) */
    APPLY_SNAPSHOT,    /* a reload, a gap or a mismatch: take a snapshot */
    APPLY_RETRY        /* no memory: poll again after a backoff */
} apply_result;

/* The entry the replica records: the primary's members, checked, in the
 * order factsd_feed_entry_new gives them. NULL when memory runs out. */
static json_t *entry_copy(const json_t *e)
{
    static const char *const members[] = {"revision", "time", "op", "collection",
                                          "id",       "slug", "record"};
    json_t *copy = json_object();
    for (size_t i = 0; copy != NULL && i < sizeof members / sizeof members[0]; i++) {
        json_t *v = json_object_get(e, members[i]);
        if (v != NULL && json_object_set(copy, members[i], v) != 0) {
            json_decref(copy);
            copy = NULL;
        }
    }
    return copy;
}

/* Applies one entry after the replica's revision. */
static apply_result entry_apply(factsd_follow *f, const json_t *e, const char **why)
{
    uint64_t ours = follow_revision(f);
    json_t *jrev = json_object_get(e, "revision");
    const char *op = json_string_value(json_object_get(e, "op"));
    if (!json_is_integer(jrev) || json_integer_value(jrev) <= 0 || op == NULL ||
        !json_is_string(json_object_get(e, "time"))) {
        *why = "a change entry without revision, time or op";
        return APPLY_SNAPSHOT;
    }
    uint64_t rev = (uint64_t)json_integer_value(jrev);
    if (rev <= ours)
        return APPLY_OK; /* already here */
    if (rev != ours + 1) {
        *why = "a gap in the primary's changes";
        return APPLY_SNAPSHOT;
    }
    if (strcmp(op, "reload") == 0) {
        *why = "the primary reloaded its dataset";
        return APPLY_SNAPSHOT;
    }
    facts_op fop = strcmp(op, "create") == 0   ? FACTS_OP_CREATE
                   : strcmp(op, "update") == 0 ? FACTS_OP_REPLACE
                   : strcmp(op, "delete") == 0 ? FACTS_OP_DELETE
                                               : (facts_op)-1;
    const char *coll = json_string_value(json_object_get(e, "collection"));
    const char *id = json_string_value(json_object_get(e, "id"));
    const json_t *record = json_object_get(e, "record");
    facts_kind kind;
    if ((int)fop < 0 || coll == NULL || id == NULL ||
        facts_kind_from_collection(coll, &kind) != FACTS_OK ||
        (fop != FACTS_OP_DELETE && !json_is_object(record))) {
        *why = "a change entry this replica cannot apply";
        return APPLY_SNAPSHOT;
    }
    facts_store *next = NULL;
    const facts_record *rec = NULL;
    facts_error err;
    facts_status st = facts_store_apply(f->store, fop, kind, fop == FACTS_OP_CREATE ? NULL : id,
                                        fop == FACTS_OP_DELETE ? NULL : record, &next, &rec,
                                        &err);
    if (st == FACTS_ENOMEM) {
        *why = "out of memory";
        return APPLY_RETRY;
    }
    if (st != FACTS_OK) {
        *why = "a change that does not apply here";
        return APPLY_SNAPSHOT;
    }
    if (fop != FACTS_OP_DELETE &&
        (rec == NULL || strcmp(facts_record_id(rec), id) != 0 ||
         !json_equal((json_t *)facts_record_json(rec), (json_t *)record))) {
        facts_store_unref(next);
        *why = "a change that made another record here than on the primary";
        return APPLY_SNAPSHOT;
    }
    json_t *copy = entry_copy(e);
    char msg[256];
    if (copy == NULL || !factsd_http_advance(f->http, next, copy, msg, sizeof msg)) {
        facts_store_unref(next);
        *why = "out of memory";
        return APPLY_RETRY;
    }
    facts_store_unref(f->store);
    f->store = next;
    return APPLY_OK;
}

/* One long-poll of the primary's changes, applied. */
static void follow_poll(factsd_follow *f)
{
    char path[128], why[WHY_LEN];
    /* Only a replica known to be caught up waits: after a failure or with
     * changes outstanding the primary answers at once. */
    int wait = f->connected && f->caught_up ? FACTSD_FOLLOW_WAIT : 0;
    snprintf(path, sizeof path, "/v1/changes?since=%llu&wait=%d&limit=%d",
             (unsigned long long)follow_revision(f), wait, LIMIT);
    f->poll_start_ms = wait > 0 ? now_ms() : 0;
    long status = follow_get(f, path, wait + 10, why, sizeof why);
    f->poll_start_ms = 0;
    if (atomic_load(&f->stop))
        return;
    if (status < 0) {
        follow_problem(f, why);
        follow_backoff(f);
        return;
    }
    if (status == 0) {
        f->connected = false;
        f->caught_up = false;
        follow_report(f);
        follow_problem(f, why);
        follow_backoff(f);
        return;
    }
    f->connected = true;
    if (status == 410) {
        f->caught_up = false;
        follow_resnapshot(f, "this replica's revision left the primary's history");
        return;
    }
    if (status != 200) {
        snprintf(why, sizeof why, "%s/v1/changes answered %ld", f->cfg.follow_url, status);
        follow_problem(f, why);
        follow_backoff(f);
        return;
    }
    json_error_t jerr;
    json_t *answer = json_loadb(f->body, f->body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *changes = json_object_get(answer, "changes");
    json_t *latest = json_object_get(answer, "revision");
    if (!json_is_array(changes) || !json_is_integer(latest)) {
        json_decref(answer);
        snprintf(why, sizeof why, "%s/v1/changes answered something that is not a change list",
                 f->cfg.follow_url);
        follow_problem(f, why);
        follow_backoff(f);
        return;
    }
    const char *reason = NULL;
    apply_result r = APPLY_OK;
    for (size_t i = 0; r == APPLY_OK && i < json_array_size(changes); i++)
        r = entry_apply(f, json_array_get(changes, i), &reason);
    uint64_t theirs = (uint64_t)json_integer_value(latest);
    json_decref(answer);
    if (r == APPLY_SNAPSHOT) {
        f->caught_up = false;
        follow_resnapshot(f, reason);
        return;
    }
    if (r == APPLY_RETRY) {
        follow_problem(f, reason);
        follow_backoff(f);
        return;
    }
    if (follow_revision(f) >= theirs) {
        f->caught_up = true;
        f->caught_up_ms = now_ms();
    } else {
        f->caught_up = false;
    }
    follow_recovered(f);
    follow_report(f);
}

static void *follow_main(void *cls)
{
    factsd_follow *f = cls;
    while (!atomic_load(&f->stop))
        follow_poll(f);
    return NULL;
}

/* -------------------------------------------------------------- public */

factsd_follow *factsd_follow_new(const factsd_config *cfg, char *msg, size_t size)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(msg, size, "libcurl cannot start");
        return NULL;
    }
    factsd_follow *f = calloc(1, sizeof *f);
    if (f == NULL) {
        curl_global_cleanup();
        snprintf(msg, size, "out of memory");
        return NULL;
    }
    f->cfg = *cfg;
    atomic_init(&f->stop, false);
    pthread_condattr_t ca;
    bool ok = false;
    if (pthread_condattr_init(&ca) == 0) {
        ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&f->wake, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (ok && pthread_mutex_init(&f->lock, NULL) != 0) {
        pthread_cond_destroy(&f->wake);
        ok = false;
    }
    if (!ok) {
        free(f);
        curl_global_cleanup();
        snprintf(msg, size, "cannot create a condition variable");
        return NULL;
    }
    f->curl = curl_easy_init();
    f->headers = curl_slist_append(NULL, "Accept: application/json");
    if (f->curl == NULL || f->headers == NULL) {
        factsd_follow_free(f);
        snprintf(msg, size, "out of memory");
        return NULL;
    }
    CURL *c = f->curl;
    bool set = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S) ==
                   CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_USERAGENT, "factsd/" FACTSD_VERSION " replica") ==
                   CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_HTTPHEADER, f->headers) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_WRITEDATA, f) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_XFERINFODATA, f) == CURLE_OK &&
               curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->curl_error) == CURLE_OK;
    if (!set) {
        factsd_follow_free(f);
        snprintf(msg, size, "libcurl lacks an option factsd needs (7.85 or later is)");
        return NULL;
    }
    factsd_metrics_replica_set(&(factsd_metrics_replica){.ready = false});
    return f;
}

bool factsd_follow_start(factsd_follow *f, factsd_http *h, facts_store *store, char *msg,
                         size_t size)
{
    f->http = h;
    f->store = facts_store_ref(store);
    f->connected = true;
    f->caught_up = true;
    f->caught_up_ms = now_ms();
    follow_report(f);
    if (pthread_create(&f->thread, NULL, follow_main, f) != 0) {
        snprintf(msg, size, "cannot start the thread that follows the primary");
        return false;
    }
    f->thread_started = true;
    return true;
}

void factsd_follow_free(factsd_follow *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    atomic_store(&f->stop, true);
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
    if (f->thread_started)
        pthread_join(f->thread, NULL);
    if (f->curl != NULL)
        curl_easy_cleanup(f->curl);
    curl_slist_free_all(f->headers);
    facts_store_unref(f->store);
    free(f->body);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f);
    curl_global_cleanup();
}
