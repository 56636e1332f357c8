/*
 * problem.c - RFC 9457 problem details bodies (see problem.h).
 */
#include "problem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct problem_info {
    unsigned status;
    const char *type;
    const char *title;
};

static const struct problem_info problem_table[FACTSD_PROBLEM_KIND_COUNT] = {
    [FACTSD_PROBLEM_INVALID_PARAMETERS] = {400, "urn:factsd:problem:invalid-parameters",
                                           "Invalid query parameters"},
    [FACTSD_PROBLEM_MALFORMED_REQUEST] = {400, "urn:factsd:problem:malformed-request",
                                          "Malformed request"},
    [FACTSD_PROBLEM_NOT_FOUND] = {404, "urn:factsd:problem:not-found", "Not found"},
    [FACTSD_PROBLEM_METHOD_NOT_ALLOWED] = {405, "urn:factsd:problem:method-not-allowed",
                                           "Method not allowed"},
    [FACTSD_PROBLEM_CONTENT_TOO_LARGE] = {413, "urn:factsd:problem:content-too-large",
                                          "Content too large"},
    [FACTSD_PROBLEM_URI_TOO_LONG] = {414, "urn:factsd:problem:uri-too-long",
                                     "Request target too long"},
    [FACTSD_PROBLEM_HEADERS_TOO_LARGE] = {431, "urn:factsd:problem:headers-too-large",
                                          "Request header fields too large"},
    [FACTSD_PROBLEM_INTERNAL] = {500, "urn:factsd:problem:internal", "Internal error"},
    [FACTSD_PROBLEM_MALFORMED_JSON] = {400, "urn:factsd:problem:malformed-json",
                                       "Malformed JSON"},
    [FACTSD_PROBLEM_UNAUTHORIZED] = {401, "urn:factsd:problem:unauthorized",
                                     "Authentication required"},
    [FACTSD_PROBLEM_READ_ONLY] = {403, "urn:factsd:problem:read-only", "Read-only server"},
    [FACTSD_PROBLEM_CONFLICT] = {409, "urn:factsd:problem:conflict", "Conflict"},
    [FACTSD_PROBLEM_LENGTH_REQUIRED] = {411, "urn:factsd:problem:length-required",
                                        "Length required"},
    [FACTSD_PROBLEM_PRECONDITION_FAILED] = {412, "urn:factsd:problem:precondition-failed",
                                            "Precondition failed"},
    [FACTSD_PROBLEM_UNSUPPORTED_MEDIA_TYPE] = {415, "urn:factsd:problem:unsupported-media-type",
                                               "Unsupported media type"},
    [FACTSD_PROBLEM_INVALID_RECORD] = {422, "urn:factsd:problem:invalid-record",
                                       "Invalid record"},
    [FACTSD_PROBLEM_WRITES_DISABLED] = {503, "urn:factsd:problem:writes-disabled",
                                        "Writes disabled"},
    [FACTSD_PROBLEM_INSUFFICIENT_STORAGE] = {507, "urn:factsd:problem:insufficient-storage",
                                             "Insufficient storage"},
    [FACTSD_PROBLEM_GONE] = {410, "urn:factsd:problem:gone", "Gone"},
    [FACTSD_PROBLEM_UNAVAILABLE] = {503, "urn:factsd:problem:unavailable",
                                    "Service unavailable"},
    [FACTSD_PROBLEM_NOT_ACCEPTABLE] = {406, "urn:factsd:problem:not-acceptable",
                                       "Not acceptable"},
};

unsigned factsd_problem_status(factsd_problem_kind kind)
{
    if ((unsigned)kind >= FACTSD_PROBLEM_KIND_COUNT)
        return 400;
    return problem_table[kind].status;
}

/* Sets obj[key] to a new string; returns false when memory runs out. */
static bool set_string(json_t *obj, const char *key, const char *value)
{
    json_t *s = json_string(value);
    return s != NULL && json_object_set_new(obj, key, s) == 0;
}

/* Builds the problem object; extra's members (borrowed) are added after. */
static char *problem_render(factsd_problem_kind kind, const char *detail,
                            const factsd_problem_param *params, size_t count,
                            const json_t *extra, size_t *len)
{
    if ((unsigned)kind >= FACTSD_PROBLEM_KIND_COUNT)
        kind = FACTSD_PROBLEM_INTERNAL;
    const struct problem_info *info = &problem_table[kind];
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    bool ok = set_string(root, "type", info->type) && set_string(root, "title", info->title);
    if (ok) {
        json_t *st = json_integer((json_int_t)info->status);
        ok = st != NULL && json_object_set_new(root, "status", st) == 0;
    }
    ok = ok && set_string(root, "detail", detail != NULL ? detail : info->title);
    if (ok && count > 0 && params != NULL) {
        json_t *list = json_array();
        ok = list != NULL && json_object_set_new(root, "invalid-params", list) == 0;
        if (count > FACTSD_PROBLEM_PARAMS_MAX)
            count = FACTSD_PROBLEM_PARAMS_MAX;
        for (size_t i = 0; ok && i < count; i++) {
            json_t *p = json_object();
            ok = p != NULL && json_array_append_new(list, p) == 0 &&
                 set_string(p, "name", params[i].name) &&
                 set_string(p, "reason", params[i].reason);
        }
    }
    if (ok && extra != NULL) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)extra, key, value) {
            if (ok && json_object_get(root, key) == NULL)
                ok = json_object_set(root, key, value) == 0;
        }
    }
    char *body = NULL;
    if (ok) {
        body = json_dumps(root, JSON_COMPACT);
        if (body != NULL)
            *len = strlen(body);
    }
    json_decref(root);
    return body;
}

char *factsd_problem_render(factsd_problem_kind kind, const char *detail,
                            const factsd_problem_param *params, size_t count, size_t *len)
{
    return problem_render(kind, detail, params, count, NULL, len);
}

factsd_repr *factsd_problem_new_ext(factsd_problem_kind kind, const char *detail, json_t *extra)
{
    size_t len = 0;
    char *body = problem_render(kind, detail, NULL, 0, extra, &len);
    json_decref(extra);
    return body != NULL ? factsd_repr_new(body, len, FACTSD_MEDIA_PROBLEM, NULL) : NULL;
}

factsd_repr *factsd_problem_new(factsd_problem_kind kind, const char *detail,
                                const factsd_problem_param *params, size_t count)
{
    size_t len = 0;
    char *body = factsd_problem_render(kind, detail, params, count, &len);
    return body != NULL ? factsd_repr_new(body, len, FACTSD_MEDIA_PROBLEM, NULL) : NULL;
}

size_t factsd_problem_param_add(factsd_problem_param *bad, size_t cap, size_t n,
                                const char *name, const char *reason)
{
    if (n < cap) {
        snprintf(bad[n].name, sizeof bad[n].name, "%s", name);
        snprintf(bad[n].reason, sizeof bad[n].reason, "%s", reason);
    }
    return n + 1;
}

bool factsd_problem_query_next(const char *query, size_t len, size_t *pos, size_t *count,
                               factsd_query_param *p, factsd_problem_param *bad, size_t cap,
                               size_t *nbad)
{
    for (;;) {
        switch (factsd_text_query_param_next(query, len, pos, count, p)) {
        case FACTSD_QUERY_PARAM:
            return true;
        case FACTSD_QUERY_BAD_NAME:
            *nbad = factsd_problem_param_add(bad, cap, *nbad, "query",
                                             "a parameter name is not valid");
            continue;
        case FACTSD_QUERY_TOO_MANY:
            *nbad = factsd_problem_param_add(bad, cap, *nbad, "query", "too many parameters");
            return false;
        case FACTSD_QUERY_DONE:
            return false;
        }
        return false;
    }
}
