/*
 * csv.c - records as CSV rows (see csv.h).
 */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

/* How a column's value is written. */
enum style {
    S_VALUE = 0,  /* a string, number or boolean; absent = empty */
    S_LIST,       /* a list of strings or numbers, joined with ';' */
    S_PARTIES,    /* participants: actor:role;… */
    S_EVIDENCE,   /* evidence: source:paragraph:sentence;… */
    S_JSON        /* any other nested value: compact JSON */
};

struct column {
    const char *name; /* the header: "member" or "object.member" */
    enum style style;
};

#define DATE_COLUMNS(o)                                                                \
    {o ".precision", S_VALUE}, {o ".from", S_VALUE}, {o ".to", S_VALUE},               \
        {o ".phrase", S_VALUE}, {o ".basis", S_VALUE}, { o ".note", S_VALUE }

static const struct column source_columns[] = {
    {"id", S_VALUE},       {"slug", S_VALUE},     {"title", S_VALUE},
    {"publisher", S_VALUE}, {"language", S_VALUE}, DATE_COLUMNS("published"),
    {"paragraphs", S_LIST},
};

static const struct column actor_columns[] = {
    {"id", S_VALUE},      {"slug", S_VALUE},        {"name", S_VALUE},
    {"kind", S_VALUE},    {"country", S_VALUE},     {"aliases", S_LIST},
    {"description", S_VALUE}, {"roles", S_JSON},    {"evidence", S_EVIDENCE},
};

static const struct column event_columns[] = {
    {"id", S_VALUE},
    {"slug", S_VALUE},
    {"title", S_VALUE},
    {"type", S_VALUE},
    {"status", S_VALUE},
    DATE_COLUMNS("date"),
    {"location.name", S_VALUE},
    {"location.country", S_VALUE},
    {"participants", S_PARTIES},
    {"summary", S_VALUE},
    {"hedge", S_VALUE},
    {"related_events", S_LIST},
    {"related_estimates", S_LIST},
    {"cameo", S_VALUE},
    {"acled", S_VALUE},
    {"evidence", S_EVIDENCE},
};

static const struct column estimate_columns[] = {
    {"id", S_VALUE},       {"slug", S_VALUE},     {"sender", S_VALUE},
    {"receiver", S_VALUE}, {"low", S_VALUE},      {"high", S_VALUE},
    {"unit", S_VALUE},     {"kind", S_VALUE},     DATE_COLUMNS("period"),
    {"reported_by", S_LIST}, {"certainty", S_VALUE}, {"hedge", S_VALUE},
    {"description", S_VALUE}, {"evidence", S_EVIDENCE},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct column *columns_of(facts_kind kind, size_t *n)
{
    switch (kind) {
    case FACTS_KIND_SOURCE:
        *n = COUNT(source_columns);
        return source_columns;
    case FACTS_KIND_ACTOR:
        *n = COUNT(actor_columns);
        return actor_columns;
    case FACTS_KIND_EVENT:
        *n = COUNT(event_columns);
        return event_columns;
    case FACTS_KIND_ESTIMATE:
        *n = COUNT(estimate_columns);
        return estimate_columns;
    default:
        *n = 0;
        return NULL;
    }
}

size_t factsd_csv_columns(facts_kind kind)
{
    size_t n;
    columns_of(kind, &n);
    return n;
}

const char *factsd_csv_column(facts_kind kind, size_t i)
{
    size_t n;
    const struct column *c = columns_of(kind, &n);
    return i < n ? c[i].name : NULL;
}

/* Appends one field, quoted when it must be (RFC 4180 §2.6, §2.7). */
static bool put_field(factsd_buf *b, const char *s, size_t len)
{
    if (strcspn(s, ",\"\r\n") >= len)
        return factsd_buf_append(b, s, len);
    bool ok = factsd_buf_append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; ok && p < s + len; p++) {
        if (*p == '"') {
            ok = factsd_buf_append(b, run, (size_t)(p - run + 1)) &&
                 factsd_buf_append(b, "\"", 1);
            run = p + 1;
        }
    }
    return ok && factsd_buf_append(b, run, (size_t)(s + len - run)) &&
           factsd_buf_append(b, "\"", 1);
}

/* Appends a scalar's text to t (a field being assembled): a string as it
 * is, a number or boolean as in JSON. */
static bool put_scalar(factsd_buf *t, const json_t *v)
{
    if (json_is_string(v))
        return factsd_buf_append(t, json_string_value(v), json_string_length(v));
    if (json_is_integer(v))
        return factsd_buf_printf(t, "%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return factsd_buf_printf(t, "%.17g", json_real_value(v));
    if (json_is_true(v))
        return factsd_buf_puts(t, "true");
    if (json_is_false(v))
        return factsd_buf_puts(t, "false");
    return true; /* null */
}

/* Appends the members of each object in list, joined with ':' within an
 * object and ';' between them. */
static bool put_joined(factsd_buf *t, const json_t *list, const char *const *members,
                       size_t n)
{
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item) {
        if (i > 0 && !factsd_buf_puts(t, ";"))
            return false;
        for (size_t m = 0; m < n; m++) {
            if ((m > 0 && !factsd_buf_puts(t, ":")) ||
                !put_scalar(t, json_object_get(item, members[m])))
                return false;
        }
    }
    return true;
}

/* The value of the column named name in rec's JSON ("a" or "a.b"). */
static const json_t *column_value(const json_t *obj, const char *name)
{
    const char *dot = strchr(name, '.');
    if (dot == NULL)
        return json_object_get(obj, name);
    char head[32];
    size_t n = (size_t)(dot - name);
    if (n >= sizeof head)
        return NULL;
    memcpy(head, name, n);
    head[n] = '\0';
    return json_object_get(json_object_get(obj, head), dot + 1);
}

/* Assembles one column's field text into t. */
static bool field_text(factsd_buf *t, const struct column *c, const json_t *v)
{
    static const char *const parties[] = {"actor", "role"};
    static const char *const evidence[] = {"source", "paragraph", "sentence"};
    if (v == NULL)
        return true;
    switch (c->style) {
    case S_VALUE:
        return put_scalar(t, v);
    case S_LIST: {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            if ((i > 0 && !factsd_buf_puts(t, ";")) || !put_scalar(t, item))
                return false;
        }
        return true;
    }
    case S_PARTIES:
        return put_joined(t, v, parties, COUNT(parties));
    case S_EVIDENCE:
        return put_joined(t, v, evidence, COUNT(evidence));
    case S_JSON: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        bool ok = s != NULL && factsd_buf_puts(t, s);
        free(s);
        return ok;
    }
    }
    return false;
}

bool factsd_csv_header(factsd_buf *b, facts_kind kind)
{
    size_t n;
    const struct column *c = columns_of(kind, &n);
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && !factsd_buf_append(b, ",", 1)) || !factsd_buf_puts(b, c[i].name))
            return false;
    }
    return factsd_buf_append(b, "\r\n", 2);
}

enum {
    FIELD_MAX = 1u << 20 /* bytes of one field */
};

bool factsd_csv_row(factsd_buf *b, const facts_record *rec)
{
    size_t n;
    const struct column *c = columns_of(facts_record_kind(rec), &n);
    const json_t *obj = facts_record_json(rec);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *v = column_value(obj, c[i].name);
        factsd_buf t;
        factsd_buf_init(&t, FIELD_MAX);
        /* The guard's apostrophe goes first; it is dropped again when the
         * field does not need it. Only text is guarded: a number is never a
         * formula. */
        ok = factsd_buf_append(&t, "'", 1) && field_text(&t, &c[i], v);
        size_t len = 0;
        char *s = factsd_buf_steal(&t, &len);
        if (!ok || s == NULL) {
            free(s);
            return false;
        }
        bool text = json_is_string(v) || (v != NULL && c[i].style != S_VALUE);
        bool guard = text && len > 1 && strchr("=+-@\t\r", s[1]) != NULL;
        ok = (i == 0 || factsd_buf_append(b, ",", 1)) &&
             put_field(b, guard ? s : s + 1, guard ? len : len - 1);
        free(s);
    }
    return ok && factsd_buf_append(b, "\r\n", 2);
}
