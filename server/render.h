/*
 * render.h - representations: a response body with its strong ETag and
 * headers, from which MHD responses are made, plus the JSON helpers that
 * build bodies. A representation built once per snapshot is shared by every
 * request (its MHD responses are made once too); a dynamic one lives for one
 * request.
 */
#ifndef FACTSD_RENDER_H
#define FACTSD_RENDER_H

#include "config.h"
#include "text.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The media type of a representation. */
typedef enum factsd_media {
    FACTSD_MEDIA_JSON = 0, /* application/json */
    FACTSD_MEDIA_PROBLEM,  /* application/problem+json (no ETag) */
    FACTSD_MEDIA_CSV,      /* text/csv (RFC 4180, a header row) */
    FACTSD_MEDIA_NDJSON,   /* application/x-ndjson, one record a line */
    FACTSD_MEDIA_HTML,     /* text/html, sent with a Content-Security-Policy */
    FACTSD_MEDIA_SCRIPT,   /* text/javascript */
    FACTSD_MEDIA_STYLE,    /* text/css */
    FACTSD_MEDIA_PROMETHEUS, /* text/plain; version=0.0.4: a metrics scrape */
    FACTSD_MEDIA_OPENMETRICS /* application/openmetrics-text; version=1.0.0 */
} factsd_media;

/* The Content-Type header value of media. Static. Never fails. */
const char *factsd_media_type(factsd_media media);

enum {
    FACTSD_GZIP_MIN = 256 /* bytes below which a body is never compressed */
};

/* A body with its headers. Opaque. Immutable once built. */
typedef struct factsd_repr factsd_repr;

/* Makes a representation of len bytes at body (NUL-terminated). Takes
 * ownership of body and link (both freed with free(), also on failure);
 * link (NULL for none) is the Link header value. Every body but a problem
 * gets a strong ETag computed from its bytes. Returns NULL when memory runs
 * out or body is NULL. */
factsd_repr *factsd_repr_new(char *body, size_t len, factsd_media media, char *link);

/* Marks a FACTSD_MEDIA_JSON representation as read from snapshot revision
 * (sent as X-Revision; 0 = none). Call before factsd_repr_share and before
 * r is shared between threads. A problem is left alone. Never fails. */
void factsd_repr_set_revision(factsd_repr *r, uint64_t revision);

/* Marks r as one of several formats of its resource, chosen by the
 * request's Accept header (sent as Vary: Accept). Call before
 * factsd_repr_share. Never fails. */
void factsd_repr_set_negotiated(factsd_repr *r);

/* Adds r's gzip-encoded variant (RFC 1952, made once, kept beside the
 * identity body, with its own ETag: the identity one with "-gzip" inside the
 * quotes). Nothing is added for a problem, a body under FACTSD_GZIP_MIN bytes
 * or one that does not shrink. Returns false only when memory runs out (r
 * is unchanged then, and is still served, uncompressed). Idempotent; call
 * before factsd_repr_share and before r is shared between threads. */
bool factsd_repr_compress(factsd_repr *r);

/* Whether r has a gzip-encoded variant. Never fails. */
bool factsd_repr_has_gzip(const factsd_repr *r);

/* The gzip-encoded body (valid while r lives) and its length, or NULL when
 * r has none. */
const char *factsd_repr_gzip_body(const factsd_repr *r, size_t *len);

/* Prebuilds the shared 200 and 304 responses of r (used when a request needs
 * no per-request header) with the CORS policy of cfg, which must outlive r.
 * Returns false when MHD runs out of memory (r is unchanged then). Call
 * before r is shared between threads. */
bool factsd_repr_share(factsd_repr *r, const factsd_config *cfg);

/* Frees r and its shared responses (MHD keeps a response alive while a
 * connection still sends it, but the body must outlive that: free a shared
 * representation only when no request uses it). NULL is a no-op. */
void factsd_repr_free(factsd_repr *r);

/* The body (valid while r lives) and its length. */
const char *factsd_repr_body(const factsd_repr *r, size_t *len);

/* The ETag header value of the identity body including quotes, or NULL
 * for a problem. */
const char *factsd_repr_etag(const factsd_repr *r);

/* The Link header value, or NULL. */
const char *factsd_repr_link(const factsd_repr *r);

/* Whether If-None-Match value inm (may be NULL) matches the ETag of r's
 * identity body or of its gzip variant under the weak comparison RFC 9110
 * prescribes for If-None-Match ("*" matches too). Never fails. */
bool factsd_repr_matches(const factsd_repr *r, const char *inm);

/* Options of one response built from a representation. */
typedef struct factsd_reply_opts {
    bool not_modified;  /* 304 with no body instead of the body */
    const char *origin; /* the request's Origin header, or NULL */
    const char *allow;  /* an Allow header value, or NULL */
    bool close;         /* add Connection: close */
    const char *location; /* a Location header value, or NULL */
    const char *etag;     /* an ETag header for a representation that has none
                             (a 412 names the current one), or NULL */
    const char *www_authenticate; /* a WWW-Authenticate header value, or NULL */
    const char *retry_after; /* a Retry-After header value, or NULL */
    bool gzip; /* the request accepts gzip: send the gzip variant, if any */
} factsd_reply_opts;

/* Returns an MHD response for r under cfg's CORS policy (the gzip variant
 * with Content-Encoding: gzip and its ETag when opts->gzip and r has one). When the shared
 * prebuilt response fits, returns it with *owned = false (do not destroy
 * it); otherwise returns a new one with *owned = true (destroy it after
 * queueing). The body is referenced, not copied: r must outlive the
 * response's transmission. Returns NULL when memory runs out. */
struct MHD_Response *factsd_repr_response(const factsd_repr *r, const factsd_config *cfg,
                                          const factsd_reply_opts *opts, bool *owned);

/* Whether origin is allowed to read under cfg (always true for "*"; false
 * for NULL). Never fails. */
bool factsd_cors_allowed(const factsd_config *cfg, const char *origin);

/* Adds the CORS headers for a request from origin (may be NULL) to resp:
 * Access-Control-Allow-Origin and -Expose-Headers when allowed, and
 * Vary: Origin when the policy is a list. Returns false when MHD runs out of
 * memory. */
bool factsd_cors_add_headers(struct MHD_Response *resp, const factsd_config *cfg,
                             const char *origin);

/* Dumps v compactly, or indented by two spaces with a final newline when
 * pretty. Returns a NUL-terminated string owned by the caller (free()) and
 * sets *len; NULL when memory runs out. v is borrowed. */
char *factsd_render_json(const json_t *v, bool pretty, size_t *len);

/* Re-dumps the JSON body (len bytes) indented. Same contract as
 * factsd_render_json; NULL also when body is not JSON. */
char *factsd_render_pretty(const char *body, size_t len, size_t *outlen);

/* Appends s as a JSON string literal (with quotes and escapes) to b. s must
 * be UTF-8. Returns false when b fails. */
bool factsd_render_json_string(factsd_buf *b, const char *s);

/* Builds a Link header value "<path?query&cursor=C>; rel=\"next\"" where
 * query (may be "" or NULL) is an already-encoded "a=b&c=d" string. Returns
 * a string owned by the caller (free()), or NULL when memory runs out. */
char *factsd_render_next_link(const char *path, const char *query, const char *cursor);

#endif /* FACTSD_RENDER_H */
