/*
 * problem.c - RFC 9457 problem details bodies (see problem.h).
 */
#include "problem.h"

#include <jansson.h>
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

char *factsd_problem_render(factsd_problem_kind kind, const char *detail,
                            const factsd_problem_param *params, size_t count, size_t *len)
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
    char *body = NULL;
    if (ok) {
        body = json_dumps(root, JSON_COMPACT);
        if (body != NULL)
            *len = strlen(body);
    }
    json_decref(root);
    return body;
}

factsd_repr *factsd_problem_new(factsd_problem_kind kind, const char *detail,
                                const factsd_problem_param *params, size_t count)
{
    size_t len = 0;
    char *body = factsd_problem_render(kind, detail, params, count, &len);
    return body != NULL ? factsd_repr_new(body, len, FACTSD_MEDIA_PROBLEM, NULL) : NULL;
}
