/*
 * http_write.c - the write API's part of the request cycle (http_conn.h):
 * the decision taken from a write's headers before its content is read,
 * and the write itself once the content is in, under the writer mutex:
 * change prepared and validated (write.c), next view rendered, journal
 * appended and synced, view swapped in, change entry recorded, answer
 * sent. Also POST /v1/admin/compact.
 */
#include "http_conn.h"

#include "auth.h"
#include "feed.h"
#include "metrics.h"
#include "openapi.h"
#include "problem.h"
#include "render.h"
#include "routes.h"
#include "text.h"
#include "view.h"
#include "write.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char read_only_detail[] =
    "this server has no write token configured: it is read-only";
static const char disabled_detail[] =
    "writes are disabled until the server is restarted: the journal could not be written";

/* Whether the Content-Type value v (may be NULL) names media, ignoring
 * letter case, white space and parameters such as charset. */
static bool content_type_is(const char *v, const char *media)
{
    if (v == NULL)
        return false;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(media);
    if (strncasecmp(v, media, n) != 0)
        return false;
    v += n;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\0' || *v == ';';
}

/* Sends an empty response (204) naming the snapshot revision, with the
 * CORS headers. */
static enum MHD_Result conn_empty(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                                  unsigned status, uint64_t revision)
{
    char rev[24];
    snprintf(rev, sizeof rev, "%llu", (unsigned long long)revision);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return factsd_http_queue(k, c, method, 500, k->http->fallback);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    bool ok = MHD_add_response_header(resp, "Cache-Control", "no-cache") == MHD_YES &&
              MHD_add_response_header(resp, "X-Revision", rev) == MHD_YES &&
              factsd_cors_add_headers(resp, &k->http->cfg, origin);
    enum MHD_Result rc = ok ? factsd_http_queue(k, c, method, status, resp)
                            : factsd_http_queue(k, c, method, 500, k->http->fallback);
    MHD_destroy_response(resp);
    return rc;
}

/* Refuses a write: at once with Connection: close when content is on its
 * way (it is never read), otherwise once the request is complete so the
 * connection stays open. Returns true (*rc set when answered now). */
static bool conn_write_refuse(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                              bool has_content, factsd_problem_kind kind, const char *detail,
                              enum MHD_Result *rc)
{
    if (has_content) {
        *rc = factsd_http_problem(k, c, method, kind, detail, true);
        return true;
    }
    k->writing = true;
    k->refused = true;
    k->refuse_kind = kind;
    k->refuse_detail = detail;
    *rc = MHD_YES;
    return true;
}

bool factsd_http_write_begin(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                             enum MHD_Result *rc)
{
    factsd_http *h = k->http;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    long long length = 0;
    if (cl != NULL && !factsd_text_parse_int(cl, 0, (long long)h->cfg.max_body, &length))
        length = 0; /* checked by the framing rules already */
    bool has_content = te != NULL || length > 0;
    facts_kind kind = FACTS_KIND_EVENT;
    factsd_write_route wr = factsd_route_write(factsd_http_route(k), &kind);
    k->wroute = wr;
    k->kind = kind;
    if (wr == FACTSD_WRITE_ROUTE_NONE)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_NOT_FOUND,
                                 "no resource lives at this path", rc);
    bool fits = k->method == FACTSD_METHOD_POST
                    ? (wr == FACTSD_WRITE_ROUTE_COLLECTION || wr == FACTSD_WRITE_ROUTE_COMPACT)
                    : wr == FACTSD_WRITE_ROUTE_ITEM;
    if (!fits)
        return conn_write_refuse(k, c, method, has_content,
                                 FACTSD_PROBLEM_METHOD_NOT_ALLOWED,
                                 "this resource does not answer this method", rc);
    if (h->token == NULL)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_READ_ONLY,
                                 read_only_detail, rc);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!factsd_token_check(h->token, auth))
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_UNAUTHORIZED,
                                 auth == NULL ? "writes need Authorization: Bearer <token>"
                                              : "the bearer token is not valid",
                                 rc);
    if (atomic_load(&h->writes_disabled))
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_WRITES_DISABLED,
                                 disabled_detail, rc);
    k->writing = true;
    bool needs_body = k->method == FACTSD_METHOD_PUT || k->method == FACTSD_METHOD_PATCH ||
                      (k->method == FACTSD_METHOD_POST && wr == FACTSD_WRITE_ROUTE_COLLECTION);
    if (!needs_body)
        return false;
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    bool media_ok = k->method == FACTSD_METHOD_PATCH
                        ? content_type_is(ct, "application/merge-patch+json")
                        : content_type_is(ct, "application/json");
    if (!media_ok)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_UNSUPPORTED_MEDIA_TYPE,
                                 k->method == FACTSD_METHOD_PATCH
                                     ? "PATCH takes application/merge-patch+json"
                                     : "POST and PUT take application/json",
                                 rc);
    if (cl == NULL || te != NULL)
        return conn_write_refuse(k, c, method, has_content, FACTSD_PROBLEM_LENGTH_REQUIRED,
                                 "a write needs a Content-Length (chunked content is not "
                                 "taken)",
                                 rc);
    k->body = malloc((size_t)length + 1);
    if (k->body == NULL) {
        *rc = factsd_http_problem(k, c, method, FACTSD_PROBLEM_INTERNAL,
                                  "the server ran out of memory", true);
        return true;
    }
    k->body_cap = (size_t)length;
    k->body_len = 0;
    return false;
}

void factsd_http_log_error(const char *what, const facts_error *err)
{
    char line[512];
    facts_error_format(err, line, sizeof line);
    fprintf(stderr, "factsd: %s: %s\n", what, line);
}

/* Answers a failed journal operation: 507 for a full disk (the journal is
 * back at a record boundary), otherwise 500, and writes stay disabled when
 * the journal refuses further appends. The caller holds the writer lock. */
static enum MHD_Result conn_journal_failed(factsd_http_conn *k, struct MHD_Connection *c,
                                           const char *method, facts_status st,
                                           const facts_error *err)
{
    factsd_http *h = k->http;
    factsd_http_log_error("journal", err);
    bool usable = h->journal == NULL || !facts_journal_failed(h->journal);
    if (st == FACTS_ENOSPC && usable)
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_INSUFFICIENT_STORAGE,
                                   "no room to store the change (a full disk, or a journal at its "
                                   "size cap: compact it); it was not stored",
                                   false);
    /* A refusal that wrote nothing leaves the journal sound: only this
     * change fails. */
    if (usable && st == FACTS_ELIMIT)
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_CONTENT_TOO_LARGE,
                                   "the change is larger than a journal record may be; it was not "
                                   "stored",
                                   true);
    if (usable && st != FACTS_EIO)
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_INTERNAL,
                                   "the change could not be stored", false);
    atomic_store(&h->writes_disabled, true);
    fprintf(stderr, "factsd: writes are disabled until restart; reads go on\n");
    return factsd_http_problem(
        k, c, method, FACTSD_PROBLEM_INTERNAL,
        "the change could not be made durable and was not stored; writes are "
        "disabled until the server is restarted",
        false);
}

/* Takes the writer mutex and returns true, unless writes are disabled:
 * then answers 503 (*rc set) and returns false without the mutex. */
static bool writer_enter(factsd_http_conn *k, struct MHD_Connection *c, const char *method,
                         enum MHD_Result *rc)
{
    factsd_http *h = k->http;
    pthread_mutex_lock(&h->writer);
    if (!atomic_load(&h->writes_disabled))
        return true;
    pthread_mutex_unlock(&h->writer);
    *rc = factsd_http_problem(k, c, method, FACTSD_PROBLEM_WRITES_DISABLED, disabled_detail,
                              false);
    return false;
}

/* POST /v1/admin/compact: saves the current dataset over --data and starts
 * an empty journal. */
static enum MHD_Result conn_compact(factsd_http_conn *k, struct MHD_Connection *c,
                                    const char *method)
{
    factsd_http *h = k->http;
    if (h->cfg.data_path[0] == '\0')
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_CONFLICT,
                                   "compaction needs --data FILE: the embedded dataset cannot be "
                                   "rewritten",
                                   false);
    enum MHD_Result rc;
    if (!writer_enter(k, c, method, &rc))
        return rc;
    factsd_view *cur = atomic_load(&h->view);
    const facts_store *store = factsd_view_store(cur);
    facts_error err;
    facts_status st = facts_store_save(store, h->cfg.data_path, &err);
    if (st != FACTS_OK) {
        factsd_http_log_error("compaction: cannot save the dataset", &err);
        pthread_mutex_unlock(&h->writer);
        return factsd_http_problem(k, c, method,
                                   st == FACTS_ENOSPC ? FACTSD_PROBLEM_INSUFFICIENT_STORAGE
                                                      : FACTSD_PROBLEM_INTERNAL,
                                   "the dataset could not be saved; nothing changed", false);
    }
    if (h->journal != NULL) {
        st = facts_journal_reset(h->journal, &err);
        if (st != FACTS_OK) {
            rc = conn_journal_failed(k, c, method, st, &err);
            pthread_mutex_unlock(&h->writer);
            return rc;
        }
    }
    uint64_t rev = facts_store_revision(store);
    pthread_mutex_unlock(&h->writer);
    factsd_metrics_compaction();
    char *body = malloc(64);
    if (body != NULL)
        snprintf(body, 64, "{\"revision\":%llu}", (unsigned long long)rev);
    factsd_repr_free(k->own);
    k->own = body != NULL ? factsd_repr_new(body, strlen(body), FACTSD_MEDIA_JSON, NULL) : NULL;
    factsd_repr_set_revision(k->own, rev);
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
    };
    return factsd_http_send(k, c, method, 200, k->own, &opts);
}

enum MHD_Result factsd_http_write_run(factsd_http_conn *k, struct MHD_Connection *c,
                                      const char *method)
{
    factsd_http *h = k->http;
    if (k->refused)
        return factsd_http_problem(k, c, method, k->refuse_kind, k->refuse_detail, false);
    if (k->wroute == FACTSD_WRITE_ROUTE_COMPACT)
        return conn_compact(k, c, method);
    factsd_write_op op = k->method == FACTSD_METHOD_POST    ? FACTSD_WRITE_CREATE
                         : k->method == FACTSD_METHOD_PUT   ? FACTSD_WRITE_REPLACE
                         : k->method == FACTSD_METHOD_PATCH ? FACTSD_WRITE_MERGE
                                                            : FACTSD_WRITE_DELETE;
    const char *if_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
    enum MHD_Result rc;
    if (!writer_enter(k, c, method, &rc))
        return rc;
    factsd_view *cur = atomic_load(&h->view);
    factsd_change ch;
    factsd_change_prepare(cur, op, k->kind, op == FACTSD_WRITE_CREATE ? NULL : k->route.key,
                          k->body != NULL ? k->body : "", k->body_len, if_match, &ch);
    if (ch.status != 0) {
        pthread_mutex_unlock(&h->writer);
        factsd_repr_free(k->own);
        k->own = ch.problem;
        ch.problem = NULL;
        char etag[FACTSD_WRITE_ETAG_LEN];
        snprintf(etag, sizeof etag, "%s", ch.etag);
        unsigned status = ch.status;
        factsd_change_clear(&ch);
        factsd_reply_opts opts = {
            .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
            .etag = etag[0] != '\0' ? etag : NULL,
        };
        return factsd_http_send(k, c, method, status, k->own, &opts);
    }
    if (ch.unchanged) {
        /* Nothing to write: no revision, no journal record, no change
         * entry. The answer is the record as it stands, read from the
         * current view, which the connection now holds. */
        factsd_view_unref(k->view);
        k->view = factsd_view_ref(cur);
        k->view_generation = atomic_load(&h->view_generation);
        pthread_mutex_unlock(&h->writer);
        const facts_record *rec = facts_store_find(factsd_view_store(cur), k->kind, ch.id);
        const factsd_repr *item = rec != NULL ? factsd_view_item(cur, rec) : NULL;
        factsd_change_clear(&ch);
        factsd_reply_opts opts = {
            .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        };
        return factsd_http_send(k, c, method, 200, item, &opts);
    }
    char msg[256];
    factsd_view *next = factsd_view_new(ch.next, (const char *)factsd_openapi_json,
                                        factsd_openapi_json_len, &h->cfg, msg, sizeof msg);
    if (next == NULL) {
        pthread_mutex_unlock(&h->writer);
        factsd_change_clear(&ch);
        return factsd_http_problem(k, c, method, FACTSD_PROBLEM_INTERNAL,
                                   "the server ran out of memory", false);
    }
    if (h->journal != NULL) {
        facts_error err;
        struct timespec j0, j1;
        clock_gettime(CLOCK_MONOTONIC, &j0);
        facts_status st = facts_journal_append(h->journal, facts_store_revision(ch.next),
                                               ch.payload, ch.payload_len, &err);
        clock_gettime(CLOCK_MONOTONIC, &j1);
        factsd_metrics_journal_append(st == FACTS_OK, factsd_http_elapsed_ns(&j0, &j1));
        if (st != FACTS_OK) {
            factsd_view_unref(next);
            factsd_change_clear(&ch);
            rc = conn_journal_failed(k, c, method, st, &err);
            pthread_mutex_unlock(&h->writer);
            return rc;
        }
    }
    factsd_view *prev = factsd_view_ref(cur); /* the deleted record's slug */
    factsd_http_view_swap(h, factsd_view_ref(next));
    factsd_view_unref(k->view);
    k->view = next; /* the connection's reference */
    k->view_generation = atomic_load(&h->view_generation);
    const factsd_repr *item = ch.rec != NULL ? factsd_view_item(next, ch.rec) : NULL;
    uint64_t revision = facts_store_revision(ch.next);
    const char *collection = facts_kind_collection(k->kind);
    json_t *entry;
    if (op == FACTSD_WRITE_DELETE) {
        const facts_record *gone = facts_store_find(factsd_view_store(prev), k->kind, ch.id);
        entry = factsd_feed_entry_at(ch.time, revision, "delete", collection, ch.id,
                                     gone != NULL ? facts_record_slug(gone) : NULL, NULL, 0);
    } else {
        size_t blen = 0;
        const char *body = item != NULL ? factsd_repr_body(item, &blen) : NULL;
        entry = body != NULL ? factsd_feed_entry_at(ch.time, revision,
                                                    op == FACTSD_WRITE_CREATE ? "create"
                                                                              : "update",
                                                    collection, ch.id,
                                                    facts_record_slug(ch.rec), body, blen)
                             : NULL;
    }
    factsd_held_record(h->held, revision, entry);
    pthread_mutex_unlock(&h->writer);
    factsd_view_unref(prev);

    char location[FACTSD_TARGET_MAX];
    snprintf(location, sizeof location, "/v1/%s/%s", facts_kind_collection(k->kind), ch.id);
    factsd_change_clear(&ch);
    if (op == FACTSD_WRITE_DELETE)
        return conn_empty(k, c, method, MHD_HTTP_NO_CONTENT,
                          facts_store_revision(factsd_view_store(next)));
    factsd_reply_opts opts = {
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        .location = op == FACTSD_WRITE_CREATE ? location : NULL,
    };
    return factsd_http_send(k, c, method, op == FACTSD_WRITE_CREATE ? 201 : 200, item, &opts);
}
