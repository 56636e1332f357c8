/*
 * load.c - the strict dataset loader.
 *
 * A load parses the whole document with Jansson (duplicate keys rejected),
 * checks every record against docs/dataset-format.md, resolves every
 * reference and locator, and only then builds a store. Any failure frees all
 * it made and reports the first problem with its position: line:column for
 * JSON syntax, a JSON pointer for everything else, and a stable rule id.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "load_internal.h"

/* The project namespace for record ids: id = UUIDv5(ns, "<kind>/<slug>"). */
static const uuid_t facts_namespace = {0x5f, 0xff, 0x88, 0x46, 0x3e, 0xb2, 0x49, 0x20,
                                       0x97, 0x03, 0x01, 0x5a, 0x44, 0xa3, 0x49, 0x55};

typedef bool (*record_loader)(facts_loader *, const json_t *, facts_record *);

static const char *const top_members[] = {"format", "revision", "sources", "actors",
                                          "events", "troop_estimates", NULL};
static const char *const top_required[] = {"format", "sources", "actors", "events",
                                           "troop_estimates", NULL};
static const record_loader kind_loaders[FACTS_KIND_COUNT] = {
    facts_load_source, facts_load_actor, facts_load_event, facts_load_estimate};

/* ------------------------------------------------------------ the steps */

/* Decodes the JSON string whose body starts at text[*i] (after the opening
 * quote) into out (at most size - 1 bytes, cut at a character boundary),
 * leaving *i on the closing quote. Escapes are decoded; \\uXXXX becomes
 * UTF-8 (a lone surrogate becomes U+FFFD). */
static void json_key_decode(const char *text, size_t len, size_t *i, char *out, size_t size)
{
    size_t o = 0;
    while (*i < len && text[*i] != '"') {
        unsigned char buf[4];
        size_t n = 1;
        char c = text[(*i)++];
        buf[0] = (unsigned char)c;
        if (c == '\\' && *i < len) {
            char e = text[(*i)++];
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *m = strchr(from, e);
            if (e == 'u') {
                unsigned long cp = 0;
                for (int k = 0; k < 4 && *i < len; k++, (*i)++) {
                    char h = text[*i];
                    cp = cp * 16 + (unsigned long)(h >= '0' && h <= '9' ? h - '0'
                                                   : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                   : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                }
                if (cp >= 0xd800 && cp <= 0xdbff && *i + 6 <= len && text[*i] == '\\' &&
                    text[*i + 1] == 'u') {
                    unsigned long lo = 0;
                    for (int k = 2; k < 6; k++) {
                        char h = text[*i + (size_t)k];
                        lo = lo * 16 + (unsigned long)(h >= '0' && h <= '9' ? h - '0'
                                                       : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                       : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
                    }
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        *i += 6;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffd;
                if (cp < 0x80) {
                    buf[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (unsigned char)(0xc0 | (cp >> 6));
                    buf[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 2;
                } else if (cp < 0x10000) {
                    buf[0] = (unsigned char)(0xe0 | (cp >> 12));
                    buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 3;
                } else {
                    buf[0] = (unsigned char)(0xf0 | (cp >> 18));
                    buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                    buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[3] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 4;
                }
            } else {
                buf[0] = (unsigned char)(m ? to[m - from] : e);
            }
        }
        if (o + n < size) {
            memcpy(out + o, buf, n);
            o += n;
        }
    }
    out[o] = '\0';
}

/* Computes the JSON pointer of the object or array that encloses byte offset
 * pos of the text (used for Jansson's duplicate-key error, which reports only
 * a position). Writes "" when pos is at the top level. Returns false when the
 * nesting there is deeper than the cap. */
static bool pointer_at(const char *text, size_t len, size_t pos, char *out, size_t outsize)
{
    struct frame {
        bool object;
        bool expect_key;
        size_t index;
        char key[FACTS_LOAD_PTR_MAX];
    };
    struct frame *stack = malloc((FACTS_DEPTH_MAX + 1) * sizeof *stack);
    int top = -1, depth = 0;
    out[0] = '\0';
    if (!stack)
        return true; /* the pointer is a courtesy: "" rather than nothing */
    if (pos > len)
        pos = len;
    for (size_t i = 0; i < pos; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            depth++;
            if (depth > FACTS_DEPTH_MAX + 1)
                continue;
            top++;
            stack[top].object = c == '{';
            stack[top].expect_key = true;
            stack[top].index = 0;
            stack[top].key[0] = '\0';
        } else if (c == '}' || c == ']') {
            if (depth-- <= FACTS_DEPTH_MAX + 1 && top >= 0)
                top--;
        } else if (c == ',' && top >= 0 && depth <= FACTS_DEPTH_MAX + 1) {
            if (stack[top].object)
                stack[top].expect_key = true;
            else
                stack[top].index++;
        } else if (c == '"') {
            i++;
            if (top >= 0 && depth <= FACTS_DEPTH_MAX + 1 && stack[top].object &&
                stack[top].expect_key) {
                json_key_decode(text, len, &i, stack[top].key, sizeof stack[top].key);
                stack[top].expect_key = false;
            } else {
                char skip[8];
                json_key_decode(text, len, &i, skip, sizeof skip);
            }
        }
    }
    if (depth > FACTS_DEPTH_MAX) {
        free(stack);
        return false;
    }
    /* Build the pointer with the same escaping as the loader's. */
    facts_loader tmp = {0};
    for (int f = 0; f < top; f++) {
        if (stack[f].object)
            facts_load_ptr_push(&tmp, stack[f].key);
        else
            facts_load_ptr_push_index(&tmp, stack[f].index);
    }
    free(stack);
    size_t n = tmp.len < outsize ? tmp.len : outsize - 1;
    memcpy(out, tmp.ptr, n);
    out[n] = '\0';
    return true;
}

static bool depth_ok(const json_t *v, int depth)
{
    if (depth > FACTS_DEPTH_MAX)
        return false;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            if (!depth_ok(c, depth + 1))
                return false;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!depth_ok(json_array_get(v, i), depth + 1))
                return false;
        }
    }
    return true;
}

/* Jansson 2.14 ignores a failed allocation while it grows a string during
 * parsing and goes on with the character dropped. The core wraps Jansson's
 * allocator once so that a parse during which any allocation failed is
 * thrown away instead of loaded with altered text. */
static json_malloc_t jansson_malloc;
static _Thread_local bool parse_alloc_failed;
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void *tracking_malloc(size_t n)
{
    void *p = jansson_malloc(n);
    if (!p)
        parse_alloc_failed = true;
    return p;
}

static void install_tracking_malloc(void)
{
    json_free_t jansson_free;
    json_get_alloc_funcs(&jansson_malloc, &jansson_free);
    json_set_alloc_funcs(tracking_malloc, jansson_free);
}

static facts_status parse_document(const char *data, size_t len, const char *name,
                                   json_t **root, facts_error *err)
{
    if (len > FACTS_FILE_MAX) {
        facts_error_set(err, FACTS_ELIMIT, name, 0, 0, "", "limit",
                        "the dataset is larger than %d bytes", FACTS_FILE_MAX);
        return FACTS_ELIMIT;
    }
    json_error_t je;
    pthread_once(&alloc_once, install_tracking_malloc);
    parse_alloc_failed = false;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (parse_alloc_failed) {
        json_decref(doc);
        facts_error_set(err, FACTS_ENOMEM, name, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    if (!doc) {
        enum json_error_code code = json_error_code(&je);
        if (code == json_error_out_of_memory) {
            facts_error_set(err, FACTS_ENOMEM, name, 0, 0, "", "memory", "out of memory");
            return FACTS_ENOMEM;
        }
        if (code == json_error_duplicate_key) {
            char ptr[FACTS_LOAD_PTR_MAX];
            if (!pointer_at(data, len, (size_t)je.position, ptr, sizeof ptr)) {
                facts_error_set(err, FACTS_ELIMIT, name, je.line, je.column, "", "limit",
                                "nesting is deeper than %d levels", FACTS_DEPTH_MAX);
                return FACTS_ELIMIT;
            }
            facts_error_set(err, FACTS_EINVALID, name, je.line, je.column, ptr,
                            "duplicate-key", "%s", je.text);
            return FACTS_EINVALID;
        }
        facts_error_set(err, FACTS_ESYNTAX, name, je.line, je.column, "", "syntax", "%s",
                        je.text);
        return FACTS_ESYNTAX;
    }
    *root = doc;
    return FACTS_OK;
}

/* The structure of every record (pass 1). */
static bool check_records(facts_loader *ld, const json_t *root, facts_store *st)
{
    if (!facts_load_expect_object(ld, root) ||
        !facts_load_check_members(ld, root, top_members, top_required))
        return false;
    size_t m = facts_load_ptr_push(ld, "format");
    const json_t *fmt = json_object_get(root, "format");
    if (!json_is_string(fmt))
        return facts_load_fail(ld, FACTS_EINVALID, "type", "expected a string");
    if (strcmp(json_string_value(fmt), FACTS_DATASET_FORMAT) != 0)
        return facts_load_fail(ld, FACTS_EINVALID, "enum", "the format must be \"%s\"",
                               FACTS_DATASET_FORMAT);
    facts_load_ptr_pop(ld, m);
    json_int_t revision = 1;
    if (!facts_load_get_int(ld, root, "revision", 1, FACTS_REVISION_MAX, &revision))
        return false;
    st->revision = (uint64_t)revision;
    bool ok = true;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        const json_t *arr = json_object_get(root, facts_dataset_members[k]);
        m = facts_load_ptr_push(ld, facts_dataset_members[k]);
        if (!json_is_array(arr))
            return facts_load_fail(ld, FACTS_EINVALID, "type", "expected an array");
        size_t n = json_array_size(arr);
        if (k == FACTS_KIND_SOURCE && n == 0)
            return facts_load_fail(ld, FACTS_EINVALID, "empty",
                                   "a dataset needs at least one source");
        if (n > FACTS_RECORDS_MAX)
            return facts_load_fail(ld, FACTS_ELIMIT, "limit", "more than %d records",
                                   FACTS_RECORDS_MAX);
        st->records[k] = calloc(n ? n : 1, sizeof(facts_record));
        if (!st->records[k])
            return facts_load_fail_oom(ld);
        st->count[k] = n;
        for (size_t i = 0; i < n; i++) {
            facts_record *r = &st->records[k][i];
            r->kind = (facts_kind)k;
            r->type = r->status = r->subkind = -1;
            size_t mi = facts_load_ptr_push_index(ld, i);
            const json_t *rec = json_array_get(arr, i);
            if (!facts_load_expect_object(ld, rec) || !kind_loaders[k](ld, rec, r)) {
                if (!facts_load_collecting(ld))
                    return false;
                ok = false;
            }
            facts_load_ptr_pop(ld, mi);
        }
        facts_load_ptr_pop(ld, m);
    }
    return ok;
}

typedef struct key_pos {
    const char *key;
    int kind;
    size_t pos;
} key_pos;

static int key_pos_cmp(const void *a, const void *b)
{
    const key_pos *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Reports the first (in document order) record whose key repeats an earlier
 * one's. by_kind: keys are unique per kind (slugs) or across kinds (ids). */
static bool check_unique(facts_loader *ld, facts_store *st, bool ids)
{
    size_t total = 0;
    for (int k = 0; k < FACTS_KIND_COUNT; k++)
        total += st->count[k];
    key_pos *keys = malloc((total ? total : 1) * sizeof *keys);
    if (!keys)
        return facts_load_fail_oom(ld);
    size_t n = 0, base = 0;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        for (size_t i = 0; i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            keys[n++] = (key_pos){ids ? r->id : r->slug, ids ? 0 : k, base + i};
        }
        base += st->count[k];
    }
    qsort(keys, n, sizeof *keys, key_pos_cmp);
    size_t worst = SIZE_MAX;
    for (size_t i = 1; i < n; i++) {
        if (keys[i].kind == keys[i - 1].kind && strcmp(keys[i].key, keys[i - 1].key) == 0 &&
            keys[i].pos < worst)
            worst = keys[i].pos;
    }
    free(keys);
    if (worst == SIZE_MAX)
        return true;
    int k = 0;
    while (worst >= st->count[k]) {
        worst -= st->count[k];
        k++;
    }
    const facts_record *r = &st->records[k][worst];
    facts_load_ptr_push(ld, facts_dataset_members[k]);
    facts_load_ptr_push_index(ld, worst);
    if (ids) {
        const json_t *arr = json_object_get(st->json, facts_dataset_members[k]);
        bool given = json_object_get(json_array_get(arr, worst), "id") != NULL;
        facts_load_ptr_push(ld, given ? "id" : "slug");
        return facts_load_fail(ld, FACTS_EINVALID, "duplicate-id", "id %s is used twice", r->id);
    }
    facts_load_ptr_push(ld, "slug");
    return facts_load_fail(ld, FACTS_EINVALID, "duplicate-slug",
                           "slug \"%.64s\" is used twice in %s",
                           r->slug, facts_dataset_members[k]);
}

/* The references and locators collected by pass 1 (pass 2). */
static bool check_references(facts_loader *ld, facts_store *st)
{
    int state = facts_table_find(facts_actor_kinds, "state");
    bool ok = true;
    for (size_t i = 0; i < ld->nrefs; i++) {
        const facts_load_ref *e = &ld->refs[i];
        const facts_record *t = facts_store_find(st, e->kind, e->slug);
        if (!t || strcmp(t->slug, e->slug) != 0)
            ok = facts_load_fail_at(ld, e->pointer, "reference", "no %s has the slug \"%.64s\"",
                                    facts_kind_name(e->kind), e->slug);
        else if (e->need_state && t->subkind != state)
            ok = facts_load_fail_at(ld, e->pointer, "reference-kind", "\"%.64s\" is not a state",
                                    e->slug);
        else
            continue;
        if (!facts_load_collecting(ld))
            return false;
    }
    for (size_t i = 0; i < ld->nlocs; i++) {
        const facts_load_loc *e = &ld->locs[i];
        const facts_record *src = facts_store_find(st, FACTS_KIND_SOURCE, e->source);
        if (!src || strcmp(src->slug, e->source) != 0)
            continue; /* reported above as a reference */
        /* Canonical JSON is not built yet: read the parsed document. */
        size_t si = (size_t)(src - st->records[FACTS_KIND_SOURCE]);
        const json_t *pars = json_object_get(
            json_array_get(json_object_get(st->json, "sources"), si), "paragraphs");
        char ptr[FACTS_LOAD_PTR_MAX];
        json_int_t sentences = 0;
        if ((size_t)e->paragraph > json_array_size(pars)) {
            snprintf(ptr, sizeof ptr, "%s/paragraph", e->pointer);
            ok = facts_load_fail_at(ld, ptr, "locator", "source \"%.64s\" has %zu paragraphs",
                                    e->source,
                                    json_array_size(pars));
        } else if (e->sentence >
                   (sentences = json_integer_value(json_array_get(pars,
                                                                  (size_t)e->paragraph - 1)))) {
            snprintf(ptr, sizeof ptr, "%s/sentence", e->pointer);
            ok = facts_load_fail_at(ld, ptr, "locator",
                                    "paragraph %" JSON_INTEGER_FORMAT " has %" JSON_INTEGER_FORMAT
                                    " sentences", e->paragraph, sentences);
        } else {
            continue;
        }
        if (!facts_load_collecting(ld))
            return false;
    }
    return ok;
}

/* Appends s, lower-cased, plus a separator to the growing buffer. */
static bool blob_add(char **buf, size_t *len, const char *s)
{
    if (!s)
        return true;
    size_t n = strlen(s);
    char *nb = realloc(*buf, *len + n + 2);
    if (!nb)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        nb[*len + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    *len += n;
    nb[(*len)++] = '\n';
    nb[*len] = '\0';
    *buf = nb;
    return true;
}

static const char *member_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Adds actor (found by slug) to r's involved actors, once. */
static bool involve(facts_store *st, facts_record *r, const char *slug)
{
    const facts_record *a = facts_store_find(st, FACTS_KIND_ACTOR, slug);
    for (size_t i = 0; i < r->n_actors; i++) {
        if (r->actors[i] == a)
            return true;
    }
    const facts_record **n = realloc(r->actors, (r->n_actors + 1) * sizeof *n);
    if (!n)
        return false;
    n[r->n_actors++] = a;
    r->actors = n;
    return true;
}

/* Builds each record's id, canonical JSON, search text and involvement
 * (pass 3: cannot fail except for memory). */
static bool build_records(facts_store *st)
{
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        const json_t *arr = json_object_get(st->json, facts_dataset_members[k]);
        for (size_t i = 0; i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            const json_t *src = json_array_get(arr, i);
            json_t *canon = json_object();
            if (!canon || json_object_set_new(canon, "id", json_string(r->id)) != 0) {
                json_decref(canon);
                return false;
            }
            const char *key;
            json_t *val;
            json_object_foreach((json_t *)src, key, val) {
                if (strcmp(key, "id") != 0 && json_object_set(canon, key, val) != 0) {
                    json_decref(canon);
                    return false;
                }
            }
            r->json = canon;
            char *blob = NULL;
            size_t len = 0;
            bool ok = blob_add(&blob, &len, r->slug) && blob_add(&blob, &len, r->name);
            const json_t *aliases = json_object_get(src, "aliases");
            for (size_t j = 0; ok && j < json_array_size(aliases); j++)
                ok = blob_add(&blob, &len, json_string_value(json_array_get(aliases, j)));
            ok = ok && blob_add(&blob, &len, member_str(src, "description")) &&
                 blob_add(&blob, &len, member_str(src, "summary")) &&
                 blob_add(&blob, &len, member_str(src, "publisher")) &&
                 blob_add(&blob, &len, member_str(json_object_get(src, "location"), "name"));
            r->search = blob;
            r->sort_name = facts_strdup_lower(r->name, FACTS_SORT_NAME_MAX);
            if (!ok || !r->sort_name)
                return false;
        }
    }
    /* Involvement needs every actor's lookup entry, built by the caller. */
    return true;
}

static bool build_involvement(facts_store *st)
{
    for (int k = FACTS_KIND_EVENT; k <= FACTS_KIND_ESTIMATE; k++) {
        for (size_t i = 0; i < st->count[k]; i++) {
            facts_record *r = &st->records[k][i];
            const json_t *j = r->json;
            if (k == FACTS_KIND_EVENT) {
                const json_t *parts = json_object_get(j, "participants");
                for (size_t p = 0; p < json_array_size(parts); p++) {
                    if (!involve(st, r, member_str(json_array_get(parts, p), "actor")))
                        return false;
                }
            } else {
                if (!involve(st, r, member_str(j, "sender")) ||
                    !involve(st, r, member_str(j, "receiver")))
                    return false;
                const json_t *by = json_object_get(j, "reported_by");
                for (size_t p = 0; p < json_array_size(by); p++) {
                    if (!involve(st, r, json_string_value(json_array_get(by, p))))
                        return false;
                }
            }
        }
    }
    return true;
}

/* The whole dataset in canonical form (records with ids). */
static json_t *build_dataset_json(const facts_store *st)
{
    json_t *doc = json_object();
    if (!doc || json_object_set_new(doc, "format", json_string(FACTS_DATASET_FORMAT)) != 0 ||
        json_object_set_new(doc, "revision", json_integer((json_int_t)st->revision)) != 0)
        goto fail;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        json_t *arr = json_array();
        if (json_object_set_new(doc, facts_dataset_members[k], arr) != 0)
            goto fail;
        for (size_t i = 0; i < st->count[k]; i++) {
            if (json_array_append(arr, st->records[k][i].json) != 0)
                goto fail;
        }
    }
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

static void loader_free(facts_loader *ld)
{
    for (size_t i = 0; i < ld->nrefs; i++)
        free(ld->refs[i].pointer);
    for (size_t i = 0; i < ld->nlocs; i++)
        free(ld->locs[i].pointer);
    free(ld->refs);
    free(ld->locs);
}

facts_status facts_store_load_buffer(const char *data, size_t len, const char *name,
                                     facts_store **out, facts_error *err)
{
    if (!name)
        name = "<input>";
    json_t *root = NULL;
    facts_status s = parse_document(data, len, name, &root, err);
    if (s != FACTS_OK)
        return s;
    return facts_store_load_root(root, name, out, err);
}

facts_status facts_store_load_root(json_t *root, const char *name, facts_store **out,
                                   facts_error *err)
{
    return facts_store_load_root_all(root, name, out, err, NULL, 0, NULL);
}

facts_status facts_store_load_root_all(json_t *root, const char *name, facts_store **out,
                                       facts_error *err, facts_error *list, size_t max,
                                       size_t *n)
{
    if (n)
        *n = 0;
    if (!depth_ok(root, 1)) {
        json_decref(root);
        facts_error_set(err, FACTS_ELIMIT, name, 0, 0, "", "limit",
                        "nesting is deeper than %d levels", FACTS_DEPTH_MAX);
        return FACTS_ELIMIT;
    }
    facts_store *st = calloc(1, sizeof *st);
    if (!st) {
        json_decref(root);
        facts_error_set(err, FACTS_ENOMEM, name, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    atomic_init(&st->refs, 1);
    st->json = root; /* the parsed document until the canonical one replaces it */
    facts_loader ld = {.err = err, .name = name, .list = list, .list_max = list ? max : 0};
    bool ok = check_records(&ld, root, st);
    if (ok) {
        /* Derived ids, so that uniqueness covers them too. */
        for (int k = 0; k < FACTS_KIND_COUNT; k++) {
            for (size_t i = 0; i < st->count[k]; i++) {
                facts_record *r = &st->records[k][i];
                if (r->id[0] == '\0') {
                    char name_buf[128];
                    int len = snprintf(name_buf, sizeof name_buf, "%s/%s",
                                       facts_kind_name(r->kind), r->slug);
                    uuid_t u;
                    uuid_generate_sha1(u, facts_namespace, name_buf, (size_t)len);
                    uuid_unparse_lower(u, r->id);
                }
            }
        }
        ok = check_unique(&ld, st, false) && check_unique(&ld, st, true);
    }
    if (ok && facts_store_build_lookup(st) != FACTS_OK)
        ok = facts_load_fail_oom(&ld);
    ok = ok && check_references(&ld, st);
    if (ok && !build_records(st))
        ok = facts_load_fail_oom(&ld);
    if (ok && !build_involvement(st))
        ok = facts_load_fail_oom(&ld);
    if (ok) {
        json_t *canon = build_dataset_json(st);
        if (!canon) {
            ok = facts_load_fail_oom(&ld);
        } else {
            json_decref(root);
            st->json = canon;
        }
    }
    /* The sort orders depend on sort names built above. */
    if (ok && facts_store_build_orders(st) != FACTS_OK)
        ok = facts_load_fail_oom(&ld);
    loader_free(&ld);
    if (!ok) {
        facts_store_unref(st);
        if (n)
            *n = ld.problems < max ? ld.problems : max;
        return ld.status;
    }
    *out = st;
    return FACTS_OK;
}

facts_status facts_store_load_file(const char *path, facts_store **out, facts_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        facts_error_set(err, FACTS_EIO, path, 0, 0, "", "io", "cannot open: %s",
                        strerror(errno));
        return FACTS_EIO;
    }
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    facts_status s = FACTS_OK;
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
        if (len > FACTS_FILE_MAX) {
            s = FACTS_ELIMIT;
            facts_error_set(err, s, path, 0, 0, "", "limit",
                            "the dataset is larger than %d bytes", FACTS_FILE_MAX);
            break;
        }
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) {
        s = FACTS_ENOMEM;
        facts_error_set(err, s, path, 0, 0, "", "memory", "out of memory");
    } else if (s == FACTS_OK && ferror(f)) {
        s = FACTS_EIO;
        facts_error_set(err, s, path, 0, 0, "", "io", "read error");
    }
    fclose(f);
    if (s == FACTS_OK)
        s = facts_store_load_buffer(buf, len, path, out, err);
    free(buf);
    return s;
}

const char *facts_embedded_dataset(size_t *len)
{
    *len = facts_embedded_data_len;
    return (const char *)facts_embedded_data;
}

facts_status facts_store_load_embedded(facts_store **out, facts_error *err)
{
    size_t len;
    const char *data = facts_embedded_dataset(&len);
    return facts_store_load_buffer(data, len, "<embedded>", out, err);
}
