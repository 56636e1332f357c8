/*
 * error.c - the core's status names, error filling and formatting, and the
 * small name tables shared by the loader and the queries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *const facts_actor_kinds[] = {
    "person", "state", "government-body", "armed-force", "news-agency",
    "intelligence-community", "group", NULL};

const char *const facts_estimate_kinds[] = {"initial", "additional", NULL};

const char *const facts_event_types[] = {
    "visit", "meeting", "weapons-test", "military-exercise", "treaty-signing",
    "statement", "accusation", "threat", "warning", "troop-deployment",
    "arms-supply", "support-exchange", "appointment", "negotiation", "ceasefire",
    "diplomatic-overture", "invitation", "analysis", "tour", "cooperation", "concern",
    "armed-conflict", NULL};

const char *const facts_event_statuses[] = {
    "occurred", "confirmed", "reported", "alleged", "suspected", "speculated",
    "expected", "unlikely", "not-acknowledged", "proposed", "ongoing", NULL};

const char *const facts_dataset_members[FACTS_KIND_COUNT] = {
    "sources", "actors", "events", "troop_estimates"};

/* Query filters keep sets of these as 32-bit masks. */
_Static_assert(sizeof facts_actor_kinds / sizeof facts_actor_kinds[0] - 1 <= 32, "mask");
_Static_assert(sizeof facts_estimate_kinds / sizeof facts_estimate_kinds[0] - 1 <= 32, "mask");
_Static_assert(sizeof facts_event_types / sizeof facts_event_types[0] - 1 <= 32, "mask");
_Static_assert(sizeof facts_event_statuses / sizeof facts_event_statuses[0] - 1 <= 32, "mask");

static const char *const kind_names[FACTS_KIND_COUNT] = {
    "source", "actor", "event", "troop-estimate"};
static const char *const collection_names[FACTS_KIND_COUNT] = {
    "sources", "actors", "events", "troop-estimates"};

int facts_table_find(const char *const *table, const char *name)
{
    for (int i = 0; table[i]; i++) {
        if (strcmp(table[i], name) == 0)
            return i;
    }
    return -1;
}

const char *facts_status_name(facts_status status)
{
    switch (status) {
    case FACTS_OK: return "ok";
    case FACTS_ENOMEM: return "enomem";
    case FACTS_EIO: return "eio";
    case FACTS_ESYNTAX: return "esyntax";
    case FACTS_EINVALID: return "einvalid";
    case FACTS_ELIMIT: return "elimit";
    case FACTS_ENOTFOUND: return "enotfound";
    case FACTS_EARG: return "earg";
    case FACTS_ECONFLICT: return "econflict";
    case FACTS_ENOSPC: return "enospc";
    case FACTS_ECORRUPT: return "ecorrupt";
    case FACTS_EGONE: return "egone";
    }
    return "unknown";
}

const char *facts_kind_name(facts_kind kind)
{
    return (unsigned)kind < FACTS_KIND_COUNT ? kind_names[kind] : NULL;
}

const char *facts_kind_collection(facts_kind kind)
{
    return (unsigned)kind < FACTS_KIND_COUNT ? collection_names[kind] : NULL;
}

facts_status facts_kind_from_collection(const char *name, facts_kind *kind)
{
    if (!name)
        return FACTS_ENOTFOUND;
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        if (strcmp(collection_names[k], name) == 0) {
            *kind = (facts_kind)k;
            return FACTS_OK;
        }
    }
    return FACTS_ENOTFOUND;
}

/* Copies src into a fixed buffer, truncating; dst always NUL-terminated. */
static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Length of the UTF-8 sequence starting with byte c, 0 if c cannot start
 * one. */
static int utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

void facts_utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = utf8_seq_len(*p);
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        /* Overlong and surrogate forms of three- and four-byte sequences. */
        if (ok && n == 3)
            ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

size_t facts_utf8_length(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

void facts_error_setv(facts_error *err, facts_status status, const char *source,
                      int line, int column, const char *pointer, const char *rule,
                      const char *fmt, va_list ap)
{
    if (!err)
        return;
    err->status = status;
    copy_trunc(err->source, sizeof err->source, source);
    err->line = line;
    err->column = column;
    copy_trunc(err->pointer, sizeof err->pointer, pointer);
    copy_trunc(err->rule, sizeof err->rule, rule);
    int n = vsnprintf(err->text, sizeof err->text, fmt, ap);
    if (n < 0)
        err->text[0] = '\0';
    /* Truncation (here or by a "%.64s") may cut a character in two: the
     * fields stay valid UTF-8, so they can go into JSON as they are. */
    facts_utf8_sanitize(err->source);
    facts_utf8_sanitize(err->pointer);
    facts_utf8_sanitize(err->text);
}

void facts_error_set(facts_error *err, facts_status status, const char *source,
                     int line, int column, const char *pointer, const char *rule,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    facts_error_setv(err, status, source, line, column, pointer, rule, fmt, ap);
    va_end(ap);
}

size_t facts_error_format(const facts_error *err, char *buf, size_t size)
{
    char pos[64] = "";
    if (err->line > 0 && err->column > 0)
        snprintf(pos, sizeof pos, ":%d:%d", err->line, err->column);
    else if (err->line > 0)
        snprintf(pos, sizeof pos, ":%d", err->line);
    /* The pointer "" names the whole document: shown only with no line. */
    int show_ptr = err->pointer[0] != '\0' || err->line == 0;
    int n = snprintf(buf, size, "%s%s: %s%s%s%s%s%s",
                     err->source[0] ? err->source : "<input>", pos,
                     show_ptr ? (err->pointer[0] ? err->pointer : "(document)") : "",
                     show_ptr ? ": " : "", err->text,
                     err->rule[0] ? " [" : "", err->rule, err->rule[0] ? "]" : "");
    return n < 0 ? 0 : (size_t)n;
}

char *facts_strdup_lower(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return out;
}
