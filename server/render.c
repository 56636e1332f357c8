/*
 * render.c - representations and JSON body helpers (see render.h).
 */
#include "render.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum {
    ETAG_LEN = 19,            /* quote, 16 hex digits, quote, NUL */
    GZIP_ETAG_LEN = ETAG_LEN + 5, /* the same with "-gzip" inside */
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
    bool negotiated;   /* one of several formats: Vary: Accept */
    struct MHD_Response *shared_ok;
    struct MHD_Response *shared_not_modified;
    /* The gzip variant, when made: body, length, ETag, shared responses. */
    unsigned char *gz;
    size_t gz_len;
    char gz_etag[GZIP_ETAG_LEN];
    struct MHD_Response *gz_ok;
    struct MHD_Response *gz_not_modified;
};

/* The policy of the dashboard page: its script and style come from this
 * server only, and nothing inline runs. */
static const char page_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const char *factsd_media_type(factsd_media media)
{
    switch (media) {
    case FACTSD_MEDIA_JSON:
        return "application/json";
    case FACTSD_MEDIA_PROBLEM:
        return "application/problem+json";
    case FACTSD_MEDIA_CSV:
        return "text/csv; charset=utf-8; header=present";
    case FACTSD_MEDIA_NDJSON:
        return "application/x-ndjson";
    case FACTSD_MEDIA_HTML:
        return "text/html; charset=utf-8";
    case FACTSD_MEDIA_SCRIPT:
        return "text/javascript; charset=utf-8";
    case FACTSD_MEDIA_STYLE:
        return "text/css; charset=utf-8";
    case FACTSD_MEDIA_PROMETHEUS:
        return "text/plain; version=0.0.4; charset=utf-8";
    case FACTSD_MEDIA_OPENMETRICS:
        return "application/openmetrics-text; version=1.0.0; charset=utf-8";
    }
    return "application/octet-stream";
}

/* Whether a body of media has an ETag (and so a 304, a gzip variant). */
static bool media_tagged(factsd_media media)
{
    return media != FACTSD_MEDIA_PROBLEM;
}

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
    if (media_tagged(media)) {
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
    if (r->gz_ok != NULL)
        MHD_destroy_response(r->gz_ok);
    if (r->gz_not_modified != NULL)
        MHD_destroy_response(r->gz_not_modified);
    free(r->gz);
    free(r->body);
    free(r->link);
    free(r);
}

void factsd_repr_set_revision(factsd_repr *r, uint64_t revision)
{
    if (r != NULL && media_tagged(r->media))
        r->revision = revision;
}

void factsd_repr_set_negotiated(factsd_repr *r)
{
    if (r != NULL)
        r->negotiated = true;
}

bool factsd_repr_compress(factsd_repr *r)
{
    if (r->gz != NULL || !media_tagged(r->media) || r->len < FACTSD_GZIP_MIN)
        return true;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper; level 9, as it is paid once. */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    uLong bound = deflateBound(&z, (uLong)r->len);
    unsigned char *out = malloc(bound);
    if (out == NULL) {
        deflateEnd(&z);
        return false;
    }
    z.next_in = (Bytef *)r->body;
    z.avail_in = (uInt)r->len;
    z.next_out = out;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t n = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || n >= r->len) {
        free(out);
        return rc == Z_STREAM_END || rc == Z_OK || rc == Z_BUF_ERROR;
    }
    unsigned char *shrunk = realloc(out, n);
    r->gz = shrunk != NULL ? shrunk : out;
    r->gz_len = n;
    /* RFC 9110 §8.8.3: each content coding is its own representation, with
     * its own entity tag. */
    memcpy(r->gz_etag, r->etag, ETAG_LEN - 2);
    memcpy(r->gz_etag + ETAG_LEN - 2, "-gzip\"", 7);
    return true;
}

bool factsd_repr_has_gzip(const factsd_repr *r)
{
    return r->gz != NULL;
}

const char *factsd_repr_gzip_body(const factsd_repr *r, size_t *len)
{
    *len = r->gz_len;
    return (const char *)r->gz;
}

const char *factsd_repr_body(const factsd_repr *r, size_t *len)
{
    *len = r->len;
    return r->body;
}

const char *factsd_repr_etag(const factsd_repr *r)
{
    return media_tagged(r->media) ? r->etag : NULL;
}

const char *factsd_repr_link(const factsd_repr *r)
{
    return r->link;
}

bool factsd_repr_matches(const factsd_repr *r, const char *inm)
{
    if (inm == NULL || !media_tagged(r->media))
        return false;
    const size_t elen = strlen(r->etag);
    const size_t glen = r->gz != NULL ? strlen(r->gz_etag) : 0;
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
        if ((n == elen && memcmp(p, r->etag, n) == 0) ||
            (n == glen && memcmp(p, r->gz_etag, n) == 0))
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

/* Builds a response for r (its gzip variant when gzip); origin NULL means
 * "no per-request CORS header". */
static struct MHD_Response *repr_build(const factsd_repr *r, const factsd_config *cfg,
                                       bool not_modified, bool gzip, const char *origin,
                                       const factsd_reply_opts *opts)
{
    const char *allow = opts != NULL ? opts->allow : NULL;
    bool close = opts != NULL && opts->close;
    void *body = gzip ? (void *)r->gz : (void *)r->body;
    size_t len = gzip ? r->gz_len : r->len;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        not_modified ? 0 : len, not_modified ? (void *)"" : body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return NULL;
    bool ok = true;
    if (!not_modified)
        ok = MHD_add_response_header(resp, "Content-Type", factsd_media_type(r->media)) ==
             MHD_YES;
    if (ok && gzip && !not_modified)
        ok = MHD_add_response_header(resp, "Content-Encoding", "gzip") == MHD_YES;
    if (ok && media_tagged(r->media)) {
        ok = MHD_add_response_header(resp, "ETag", gzip ? r->gz_etag : r->etag) == MHD_YES &&
             MHD_add_response_header(resp, "Vary",
                                     r->negotiated ? "Accept, Accept-Encoding"
                                                   : "Accept-Encoding") == MHD_YES;
    }
    if (ok && r->media == FACTSD_MEDIA_HTML)
        ok = MHD_add_response_header(resp, "Content-Security-Policy", page_csp) == MHD_YES &&
             MHD_add_response_header(resp, "X-Frame-Options", "DENY") == MHD_YES &&
             MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES;
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
    if (ok && opts != NULL && opts->etag != NULL && !media_tagged(r->media))
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

/* Builds the shared 200 and 304 responses of one variant of r. */
static bool share_variant(const factsd_repr *r, const factsd_config *cfg, bool gzip,
                          struct MHD_Response **ok, struct MHD_Response **nm)
{
    *ok = repr_build(r, cfg, false, gzip, NULL, NULL);
    *nm = NULL;
    if (*ok == NULL)
        return false;
    if (media_tagged(r->media)) {
        *nm = repr_build(r, cfg, true, gzip, NULL, NULL);
        if (*nm == NULL) {
            MHD_destroy_response(*ok);
            *ok = NULL;
            return false;
        }
    }
    return true;
}

bool factsd_repr_share(factsd_repr *r, const factsd_config *cfg)
{
    /* A shared representation is compressed once, here, for every request
     * that accepts gzip; without memory for it, it is sent uncompressed. */
    (void)factsd_repr_compress(r);
    struct MHD_Response *ok, *nm, *gz_ok = NULL, *gz_nm = NULL;
    if (!share_variant(r, cfg, false, &ok, &nm))
        return false;
    if (r->gz != NULL && !share_variant(r, cfg, true, &gz_ok, &gz_nm)) {
        MHD_destroy_response(ok);
        if (nm != NULL)
            MHD_destroy_response(nm);
        return false;
    }
    r->shared_ok = ok;
    r->shared_not_modified = nm;
    r->gz_ok = gz_ok;
    r->gz_not_modified = gz_nm;
    return true;
}

struct MHD_Response *factsd_repr_response(const factsd_repr *r, const factsd_config *cfg,
                                          const factsd_reply_opts *opts, bool *owned)
{
    bool per_request_cors = !cfg->cors_any && factsd_cors_allowed(cfg, opts->origin);
    bool gzip = opts->gzip && r->gz != NULL;
    if (!per_request_cors && opts->allow == NULL && !opts->close && opts->location == NULL &&
        opts->etag == NULL && opts->www_authenticate == NULL && opts->retry_after == NULL) {
        struct MHD_Response *shared =
            gzip ? (opts->not_modified ? r->gz_not_modified : r->gz_ok)
                 : (opts->not_modified ? r->shared_not_modified : r->shared_ok);
        if (shared != NULL) {
            *owned = false;
            return shared;
        }
    }
    *owned = true;
    return repr_build(r, cfg, opts->not_modified, gzip, per_request_cors ? opts->origin : NULL,
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
