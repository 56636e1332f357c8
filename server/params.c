/*
 * params.c - the read API's query parameters (see params.h).
 */
#include "params.h"

#include <stdio.h>
#include <string.h>

enum {
    NAME_LEN = 32 /* decoded bytes of a parameter name */
};

static const char *const param_names[FACTSD_PARAM_COUNT] = {
    "limit", "cursor", "sort", "pretty", "actor", "type", "status",
    "kind",  "from",   "to",   "q",      "format",
};

static const char *const format_names[FACTSD_PARAMS_FORMAT_COUNT] = {"json", "csv", "ndjson"};

const char *factsd_params_name(factsd_param_id id)
{
    return (unsigned)id < FACTSD_PARAM_COUNT ? param_names[id] : NULL;
}

const char *factsd_params_format_name(factsd_params_format format)
{
    return (unsigned)format < FACTSD_PARAMS_FORMAT_COUNT ? format_names[format] : NULL;
}

static const unsigned paging_params =
    FACTSD_PARAM_BIT(FACTSD_PARAM_LIMIT) | FACTSD_PARAM_BIT(FACTSD_PARAM_CURSOR) |
    FACTSD_PARAM_BIT(FACTSD_PARAM_SORT) | FACTSD_PARAM_BIT(FACTSD_PARAM_FORMAT);

/* The filters each collection takes (what the data core applies to it). */
static unsigned filter_params(facts_kind kind)
{
    switch (kind) {
    case FACTS_KIND_SOURCE:
        return FACTSD_PARAM_BIT(FACTSD_PARAM_Q);
    case FACTS_KIND_ACTOR:
        return FACTSD_PARAM_BIT(FACTSD_PARAM_KIND) | FACTSD_PARAM_BIT(FACTSD_PARAM_Q);
    case FACTS_KIND_EVENT:
        return FACTSD_PARAM_BIT(FACTSD_PARAM_ACTOR) | FACTSD_PARAM_BIT(FACTSD_PARAM_TYPE) |
               FACTSD_PARAM_BIT(FACTSD_PARAM_STATUS) | FACTSD_PARAM_BIT(FACTSD_PARAM_FROM) |
               FACTSD_PARAM_BIT(FACTSD_PARAM_TO) | FACTSD_PARAM_BIT(FACTSD_PARAM_Q);
    case FACTS_KIND_ESTIMATE:
        return FACTSD_PARAM_BIT(FACTSD_PARAM_ACTOR) | FACTSD_PARAM_BIT(FACTSD_PARAM_KIND) |
               FACTSD_PARAM_BIT(FACTSD_PARAM_FROM) | FACTSD_PARAM_BIT(FACTSD_PARAM_TO) |
               FACTSD_PARAM_BIT(FACTSD_PARAM_Q);
    default:
        return 0;
    }
}

unsigned factsd_params_allowed(const factsd_route *r)
{
    unsigned allowed = r->id == FACTSD_ROUTE_ASSET ? 0 : FACTSD_PARAM_BIT(FACTSD_PARAM_PRETTY);
    if (r->id == FACTSD_ROUTE_COLLECTION)
        allowed |= paging_params | filter_params(r->kind);
    else if (r->id == FACTSD_ROUTE_ACTOR_SUB)
        allowed |= paging_params | (filter_params(r->kind) & ~FACTSD_PARAM_BIT(FACTSD_PARAM_ACTOR));
    else if (r->id == FACTSD_ROUTE_SUMMARY)
        allowed |= filter_params(FACTS_KIND_ESTIMATE);
    return allowed;
}

/* Copies src into dst (cap bytes) cutting only at a UTF-8 character
 * boundary; text that is not UTF-8 is replaced by "?". */
static void copy_utf8(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    if (!factsd_text_utf8_valid(src, n)) {
        src = "?";
        n = 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void factsd_params_error(factsd_params *p, const char *name, const char *reason)
{
    for (size_t i = 0; i < p->nerrors; i++) {
        if (strcmp(p->errors[i].name, name) == 0)
            return;
    }
    if (p->nerrors == FACTSD_PROBLEM_PARAMS_MAX)
        return;
    factsd_problem_param *e = &p->errors[p->nerrors++];
    copy_utf8(e->name, sizeof e->name, name);
    copy_utf8(e->reason, sizeof e->reason, reason);
}

/* A printable version of a parameter name for error messages. */
static void printable_name(char *dst, size_t cap, const char *raw, size_t len)
{
    char tmp[NAME_LEN];
    size_t n = 0;
    if (!factsd_text_pct_decode(raw, len, true, tmp, sizeof tmp, &n)) {
        size_t k = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
        memcpy(tmp, raw, k);
        n = k;
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)tmp[i];
        dst[o++] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[o] = '\0';
    if (o == 0)
        snprintf(dst, cap, "%s", "(empty)");
}

static bool parse_bool(const char *s, bool *out)
{
    if (s[0] == '\0' || strcmp(s, "1") == 0 || strcmp(s, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* Checks one value that the server can judge alone. */
static void params_check_value(factsd_params *p, factsd_param_id id)
{
    const char *v = p->value[id];
    const char *name = param_names[id];
    long long n;
    int32_t day;
    switch (id) {
    case FACTSD_PARAM_LIMIT:
        if (!factsd_text_parse_int(v, 1, FACTS_QUERY_LIMIT_MAX, &n))
            factsd_params_error(p, name, "must be an integer from 1 to 500");
        else
            p->limit = (size_t)n;
        break;
    case FACTSD_PARAM_PRETTY:
        if (!parse_bool(v, &p->pretty))
            factsd_params_error(p, name, "must be empty, 1, true, 0 or false");
        break;
    case FACTSD_PARAM_SORT:
        if (facts_sort_parse(v, &p->sort) != FACTS_OK ||
            (!p->dated && (p->sort == FACTS_SORT_DATE_ASC || p->sort == FACTS_SORT_DATE_DESC)))
            factsd_params_error(p, name,
                         p->dated ? "must be one of date, -date, name, -name"
                                  : "must be name or -name (these records have no dates)");
        break;
    case FACTSD_PARAM_FROM:
    case FACTSD_PARAM_TO:
        if (facts_date_parse(v, id == FACTSD_PARAM_TO, &day) != FACTS_OK)
            factsd_params_error(p, name, "must be a date: YYYY, YYYY-MM or YYYY-MM-DD");
        break;
    case FACTSD_PARAM_Q:
        if (v[0] == '\0')
            factsd_params_error(p, name, "must not be empty");
        else if (strlen(v) > FACTS_QUERY_TEXT_MAX)
            factsd_params_error(p, name, "must be at most 256 bytes");
        break;
    case FACTSD_PARAM_FORMAT: {
        int found = -1;
        for (int f = 0; f < FACTSD_PARAMS_FORMAT_COUNT; f++) {
            if (strcmp(v, format_names[f]) == 0)
                found = f;
        }
        if (found < 0)
            factsd_params_error(p, name, "must be json, csv or ndjson");
        else
            p->format = (factsd_params_format)found;
        break;
    }
    case FACTSD_PARAM_CURSOR:
        if (v[0] == '\0' || strlen(v) > FACTS_CURSOR_MAX)
            factsd_params_error(p, name, "must be a cursor from a previous page");
        break;
    case FACTSD_PARAM_ACTOR:
    case FACTSD_PARAM_TYPE:
    case FACTSD_PARAM_STATUS:
    case FACTSD_PARAM_KIND:
        if (v[0] == '\0')
            factsd_params_error(p, name, "must not be empty");
        break;
    case FACTSD_PARAM_COUNT:
        break;
    }
}

void factsd_params_parse(factsd_params *p, const char *query, size_t len, unsigned allowed)
{
    memset(p->value, 0, sizeof p->value);
    p->used = 0;
    p->nerrors = 0;
    p->limit = FACTS_QUERY_LIMIT_DEFAULT;
    p->sort = FACTS_SORT_DEFAULT;
    p->pretty = false;
    p->format = 0;
    size_t pieces = 0, pos = 0;
    factsd_query_piece qp;
    while (factsd_text_query_next(query, len, &pos, &qp)) {
        if (++pieces > FACTSD_PARAMS_PIECES_MAX) {
            factsd_params_error(p, "(query)", "has more than 64 parameters");
            return;
        }
        const char *piece = qp.name, *raw_value = qp.value;
        size_t nlen = qp.name_len, vlen = qp.value_len;
        char name[NAME_LEN];
        size_t dn;
        int id = -1;
        if (factsd_text_pct_decode(piece, nlen, true, name, sizeof name, &dn)) {
            for (int k = 0; k < FACTSD_PARAM_COUNT; k++) {
                if (strcmp(name, param_names[k]) == 0)
                    id = k;
            }
        }
        if (id < 0) {
            char shown[NAME_LEN];
            printable_name(shown, sizeof shown, piece, nlen);
            factsd_params_error(p, shown, "is not a known parameter");
            continue;
        }
        if (!(allowed & FACTSD_PARAM_BIT(id))) {
            factsd_params_error(p, param_names[id], "does not apply to this resource");
            continue;
        }
        if (p->value[id] != NULL) {
            factsd_params_error(p, param_names[id], "is given more than once");
            continue;
        }
        char *dst = p->store + p->used;
        size_t room = sizeof p->store - p->used;
        size_t outlen;
        if (!factsd_text_pct_decode(raw_value, vlen, true, dst, room, &outlen)) {
            factsd_params_error(p, param_names[id],
                                "contains a control character or a bad escape");
            continue;
        }
        if (!factsd_text_utf8_valid(dst, outlen)) {
            factsd_params_error(p, param_names[id], "is not UTF-8");
            continue;
        }
        p->used += outlen + 1;
        p->value[id] = dst;
        params_check_value(p, (factsd_param_id)id);
    }
}

bool factsd_params_put_canonical(factsd_buf *b, const factsd_params *p, bool with_cursor)
{
    bool first = true;
    for (int k = 0; k < FACTSD_PARAM_COUNT; k++) {
        if ((k == FACTSD_PARAM_CURSOR && !with_cursor) || p->value[k] == NULL)
            continue;
        if (!first)
            factsd_buf_puts(b, "&");
        factsd_buf_puts(b, param_names[k]);
        factsd_buf_puts(b, "=");
        factsd_buf_put_query_value(b, p->value[k]);
        first = false;
    }
    return !b->failed;
}

char *factsd_params_canonical(const factsd_params *p)
{
    factsd_buf b;
    factsd_buf_init(&b, 4 * FACTSD_TARGET_MAX);
    factsd_params_put_canonical(&b, p, false);
    return factsd_buf_steal(&b, NULL);
}

bool factsd_params_any(const factsd_params *p)
{
    for (int k = 0; k < FACTSD_PARAM_COUNT; k++) {
        if (p->value[k] != NULL)
            return true;
    }
    return false;
}