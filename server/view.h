/*
 * view.h - one snapshot as the server publishes it: a facts_store plus every
 * representation rendered from it once (each record, each collection's first
 * page, the index, the health document, the summary, the OpenAPI
 * description). A view is immutable and reference-counted, so a new snapshot
 * can replace it atomically while requests still read the old one.
 */
#ifndef FACTSD_VIEW_H
#define FACTSD_VIEW_H

#include "config.h"
#include "render.h"

#include <facts.h>
#include <stddef.h>

/* Opaque. */
typedef struct factsd_view factsd_view;

/* Builds a view of store (the view takes its own reference). openapi
 * (openapi_len bytes of JSON) is served at /openapi.json; it and cfg must
 * outlive the view. Returns a view with one reference, or NULL with a
 * one-line reason in msg (size bytes) when memory runs out or the OpenAPI
 * bytes are not a JSON object. */
factsd_view *factsd_view_new(facts_store *store, const char *openapi, size_t openapi_len,
                             const factsd_config *cfg, char *msg, size_t size);

/* Adds a reference (thread-safe) and returns v. */
factsd_view *factsd_view_ref(factsd_view *v);

/* Drops a reference (thread-safe); the last frees the view, its
 * representations and its store reference. NULL is a no-op. */
void factsd_view_unref(factsd_view *v);

/* The snapshot. Borrowed: valid while v is referenced. */
const facts_store *factsd_view_store(const factsd_view *v);

/* The server configuration the view was built with. */
const factsd_config *factsd_view_config(const factsd_view *v);

/* The representation of one record of the view's store, or NULL when rec
 * is not one of them. Borrowed: valid while v is referenced. */
const factsd_repr *factsd_view_item(const factsd_view *v, const facts_record *rec);

/* The first page of a collection with no parameters. Borrowed. */
const factsd_repr *factsd_view_first_page(const factsd_view *v, facts_kind kind);

/* GET /v1, /healthz, /openapi.json and /v1/troop-estimates/summary with no
 * parameters. Borrowed. */
const factsd_repr *factsd_view_index(const factsd_view *v);
const factsd_repr *factsd_view_health(const factsd_view *v);
const factsd_repr *factsd_view_openapi(const factsd_view *v);
const factsd_repr *factsd_view_summary(const factsd_view *v);

/* The files of the dashboard page. */
typedef enum factsd_asset {
    FACTSD_ASSET_PAGE = 0, /* index.html */
    FACTSD_ASSET_SCRIPT,   /* app.js */
    FACTSD_ASSET_STYLE,    /* app.css */
    FACTSD_ASSET_COUNT
} factsd_asset;

/* The representation of a dashboard file. Borrowed. */
const factsd_repr *factsd_view_asset(const factsd_view *v, factsd_asset asset);

/* Assembles a page of kind's records in format: FACTSD_MEDIA_JSON gives
 * {"items","total","next","limit","revision"} (the revision of the view's
 * store), FACTSD_MEDIA_NDJSON one record a line, FACTSD_MEDIA_CSV a header
 * row and one row a record (csv.h); the records' JSON is the ready-made one.
 * Returns a NUL-terminated body owned by the caller (free()) and sets *len;
 * NULL when memory runs out. */
char *factsd_view_render_page(const factsd_view *v, const facts_page *page, size_t limit,
                              facts_kind kind, factsd_media format, size_t *len);

/* Assembles a summary body {"low","high","count","unit","items"}. Same
 * contract as factsd_view_render_page. */
char *factsd_view_render_summary(const factsd_view *v, const facts_summary *sum,
                                 const facts_page *page, size_t *len);

enum {
    FACTSD_VIEW_CACHE_ENTRIES = 256,      /* representations cached per view */
    FACTSD_VIEW_CACHE_BYTES = 1024 * 1024 /* body bytes cached per view */
};

/* The representation cached under key (len bytes: a canonical request such
 * as "/v1/events?limit=5&type=visit"), or NULL. Borrowed: valid while v is
 * referenced. Thread-safe. */
const factsd_repr *factsd_view_cache_get(const factsd_view *v, const char *key, size_t len);

/* Offers *r (a representation of a read) to the cache under key.
 * When the cache keeps it (or already holds one for key), takes ownership
 * of *r (sets it to NULL) and returns the cached representation, borrowed
 * like the view's others. When the cache is full (FACTSD_VIEW_CACHE_ENTRIES
 * or FACTSD_VIEW_CACHE_BYTES) or memory runs out, returns NULL and leaves *r
 * with the caller. Thread-safe; a view's cached representations live until
 * the view is freed. */
const factsd_repr *factsd_view_cache_put(const factsd_view *v, const char *key, size_t len,
                                         factsd_repr **r);

#endif /* FACTSD_VIEW_H */
