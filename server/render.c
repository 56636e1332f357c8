/*
 * render.c - representations and JSON body helpers (see render.h).
 */
#include "render.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ETAG_LEN = 19,            /* quote, 16 hex digits, quote, NUL */
    LINK_MAX = 8192,          /* bytes of a Link header value */
    PRETTY_MAX = 64u << 20    /* bytes of an indented body */
};

struct factsd_repr {
    char *body;
    size_t len;
    factsd_media media;
    char *link;
    char etag[ETAG_LEN];
    uint64_t revision; /* X-Revision, 0 = none */
    struct MHD_Response *shared_ok;
    struct MHD_Response *shared_not_modified;
};

factsd_repr *factsd_repr_new(char *body, size_t len, factsd_media media, char *link)
{
    if (body == NULL) {
        free(link);
        return NULL;
    }
    factsd_repr *r = calloc(1, sizeof *r);
    if (r == NULL) {
        free(body);
        free(link);
        return NULL;
    }
    r->body = body;
    r->len = len;
    r->media = media;
    r->link = link;
    if (media == FACTSD_MEDIA_JSON) {
        uint64_t h = factsd_text_hash64(body, len);
        snprintf(r->etag, sizeof r->etag, "\"%016" PRIx64 "\"", h);
    }
    return r;
}

void factsd_repr_free(factsd_repr *r)
{
    if (r == NULL)
        return;
    if (r->shared_ok != NULL)
        MHD_destroy_response(r->shared_ok);
    if (r->shared_not_modified != NULL)
        MHD_destroy_response(r->shared_not_modified);
    free(r->body);
    free(r->link);
    free(r);
}

void factsd_repr_set_revision(factsd_repr *r, uint64_t revision)
{
    if (r != NULL && r->media == FACTSD_MEDIA_JSON)
        r->revision = revision;
}

const char *factsd_repr_body(const factsd_repr *r, size_t *len)
{
    *len = r->len;
    return r->body;
}

const char *factsd_repr_etag(const factsd_repr *r)
{
    return r->media == FACTSD_MEDIA_JSON ? r->etag : NULL;
}

const char *factsd_repr_link(const factsd_repr *r)
{
    return r->link;
}

bool factsd_repr_matches(const factsd_repr *r, const char *inm)
{
    if (inm == NULL || r->media != FACTSD_MEDIA_JSON)
        return false;
    const size_t elen = strlen(r->etag);
    const char *p = inm;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false; /* not an entity tag: stop, match nothing more */
        const char *end = strchr(p + 1, '"');
        if (end == NULL)
            return false;
        size_t n = (size_t)(end - p) + 1;
        if (n == elen && memcmp(p, r->etag, n) == 0)
            return true;
        p = end + 1;
    }
    return false;
}

bool factsd_cors_allowed(const factsd_config *cfg, const char *origin)
{
    if (cfg->cors_any)
        return true;
    if (origin == NULL)
        return false;
    for (size_t i = 0; i < cfg->cors_count; i++) {
        if (strcmp(cfg->cors_origins[i], origin) == 0)
            return true;
    }
    return false;
}

bool factsd_cors_add_headers(struct MHD_Response *resp, const factsd_config *cfg,
                             const char *origin)
{
    static const char expose[] = "ETag, Link, Location, X-Revision";
    if (cfg->cors_any) {
        return MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*") == MHD_YES &&
               MHD_add_response_header(resp, "Access-Control-Expose-Headers", expose) ==
                   MHD_YES;
    }
    if (MHD_add_response_header(resp, "Vary", "Origin") != MHD_YES)
        return false;
    if (!factsd_cors_allowed(cfg, origin))
        return true;
    return MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin) == MHD_YES &&
           MHD_add_response_header(resp, "Access-Control-Expose-Headers", expose) ==
               MHD_YES;
}

/* Builds a response for r; origin NULL means "no per-request CORS header". */
static struct MHD_Response *repr_build(const factsd_repr *r, const factsd_config *cfg,
                                       bool not_modified, const char *origin,
                                       const factsd_reply_opts *opts)
{
    const char *allow = opts != NULL ? opts->allow : NULL;
    bool close = opts != NULL && opts->close;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        not_modified ? 0 : r->len, not_modified ? (void *)"" : (void *)r->body,
        MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return NULL;
    bool ok = true;
    if (!not_modified) {
        ok = MHD_add_response_header(resp, "Content-Type",
                                     r->media == FACTSD_MEDIA_JSON
                                         ? "application/json"
                                         : "application/problem+json") == MHD_YES;
    }
    if (ok && r->media == FACTSD_MEDIA_JSON)
        ok = MHD_add_response_header(resp, "ETag", r->etag) == MHD_YES;
    if (ok && r->revision != 0) {
        char rev[24];
        snprintf(rev, sizeof rev, "%" PRIu64, r->revision);
        ok = MHD_add_response_header(resp, "X-Revision", rev) == MHD_YES;
    }
    ok = ok && MHD_add_response_header(resp, "Cache-Control", "no-cache") == MHD_YES;
    ok = ok && MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (ok && r->link != NULL && !not_modified)
        ok = MHD_add_response_header(resp, "Link", r->link) == MHD_YES;
    if (ok && allow != NULL)
        ok = MHD_add_response_header(resp, "Allow", allow) == MHD_YES;
    if (ok && opts != NULL && opts->location != NULL)
        ok = MHD_add_response_header(resp, "Location", opts->location) == MHD_YES;
    if (ok && opts != NULL && opts->etag != NULL && r->media != FACTSD_MEDIA_JSON)
        ok = MHD_add_response_header(resp, "ETag", opts->etag) == MHD_YES;
    if (ok && opts != NULL && opts->www_authenticate != NULL)
        ok = MHD_add_response_header(resp, "WWW-Authenticate", opts->www_authenticate) ==
             MHD_YES;
    if (ok && opts != NULL && opts->retry_after != NULL)
        ok = MHD_add_response_header(resp, "Retry-After", opts->retry_after) == MHD_YES;
    if (ok && close)
        ok = MHD_add_response_header(resp, "Connection", "close") == MHD_YES;
    ok = ok && factsd_cors_add_headers(resp, cfg, origin);
    if (!ok) {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

bool factsd_repr_share(factsd_repr *r, const factsd_config *cfg)
{
    struct MHD_Response *ok = repr_build(r, cfg, false, NULL, NULL);
    if (ok == NULL)
        return false;
    struct MHD_Response *nm = NULL;
    if (r->media == FACTSD_MEDIA_JSON) {
        nm = repr_build(r, cfg, true, NULL, NULL);
        if (nm == NULL) {
            MHD_destroy_response(ok);
            return false;
        }
    }
    r->shared_ok = ok;
    r->shared_not_modified = nm;
    return true;
}

struct MHD_Response *factsd_repr_response(const factsd_repr *r, const factsd_config *cfg,
                                          const factsd_reply_opts *opts, bool *owned)
{
    bool per_request_cors = !cfg->cors_any && factsd_cors_allowed(cfg, opts->origin);
    if (!per_request_cors && opts->allow == NULL && !opts->close && opts->location == NULL &&
        opts->etag == NULL && opts->www_authenticate == NULL && opts->retry_after == NULL) {
        struct MHD_Response *shared =
            opts->not_modified ? r->shared_not_modified : r->shared_ok;
        if (shared != NULL) {
            *owned = false;
            return shared;
        }
    }
    *owned = true;
    return repr_build(r, cfg, opts->not_modified, per_request_cors ? opts->origin : NULL,
                      opts);
}

char *factsd_render_json(const json_t *v, bool pretty, size_t *len)
{
    size_t flags = pretty ? JSON_INDENT(2) : JSON_COMPACT;
    char *s = json_dumps(v, flags);
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    if (pretty) {
        char *t = realloc(s, n + 2);
        if (t == NULL) {
            free(s);
            return NULL;
        }
        s = t;
        s[n++] = '\n';
        s[n] = '\0';
    }
    *len = n;
    return s;
}

char *factsd_render_pretty(const char *body, size_t len, size_t *outlen)
{
    json_error_t jerr;
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        return NULL;
    char *s = factsd_render_json(v, true, outlen);
    json_decref(v);
    if (s != NULL && *outlen > PRETTY_MAX) {
        free(s);
        return NULL;
    }
    return s;
}

bool factsd_render_json_string(factsd_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!factsd_buf_append(b, "\"", 1))
        return false;
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20)
            continue;
        if (!factsd_buf_append(b, run, (size_t)(p - run)))
            return false;
        if (c == '\0')
            break;
        char esc[6];
        size_t n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (!factsd_buf_append(b, esc, n))
            return false;
        run = p + 1;
    }
    return factsd_buf_append(b, "\"", 1);
}

char *factsd_render_next_link(const char *path, const char *query, const char *cursor)
{
    factsd_buf b;
    factsd_buf_init(&b, LINK_MAX);
    factsd_buf_printf(&b, "<%s?", path);
    if (query != NULL && query[0] != '\0') {
        factsd_buf_puts(&b, query);
        factsd_buf_puts(&b, "&");
    }
    factsd_buf_puts(&b, "cursor=");
    factsd_buf_put_query_value(&b, cursor);
    factsd_buf_puts(&b, ">; rel=\"next\"");
    return factsd_buf_steal(&b, NULL);
}
