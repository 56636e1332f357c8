/*
 * fuzz_negotiate.c - content negotiation (server/negotiate.c): the Accept
 * value against the media types the server offers, and Accept-Encoding.
 *
 * Input layout:
 *   byte 0  the offers: 0-1 (bits 0-1) the collections' three formats in
 *           their order, 2 the metrics' two, 3 a list of up to six taken
 *           from a pool by the bits of byte 1
 *   byte 1  (with offers 3) which of the pool's types are offered
 *   rest    the Accept value up to the first NUL, the Accept-Encoding value
 *           after it; without a NUL, both are the whole rest
 *
 * Checked besides the sanitizers (each header value is handed over in a
 * buffer of exactly its size): the choice is an offer or none, the same on
 * every call and whatever the case of the letters; a chosen offer is named
 * by the header (its type/subtype, its type/ *, or * / *); an offer put first
 * with q=0 is never chosen and, while the header has room for another
 * element, leaves the choice as it was; one put first with q=1 makes the
 * choice that offer or an earlier one. gzip is never chosen without a
 * header, nor without "gzip" or "*" in it; a ", gzip;q=0" appended refuses it
 * and ", identity;q=0, gzip" appended takes it.
 */
#include "fuzz.h"

#include "negotiate.h"

#include <stdbool.h>

enum {
    INPUT_MAX = 8192, /* bytes: beyond the server's header cap */
    OFFERS_MAX = 6,
    ROOM = 60         /* list elements below which one more always counts */
};

static const char *const collection_offers[] = {"application/json", "text/csv",
                                                "application/x-ndjson"};
static const char *const metrics_offers[] = {"text/plain", "application/openmetrics-text"};
static const char *const pool[] = {"application/json", "text/csv", "application/x-ndjson",
                                   "text/plain", "application/openmetrics-text", "text/html"};

/* A copy of the n bytes at s with a NUL, in a buffer of exactly that size. */
static char *dup_exact(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    FUZZ_CHECK(d != NULL, "out of memory");
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* prefix + s + suffix, in a buffer of exactly that size. */
static char *join3(const char *prefix, const char *s, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(s), c = strlen(suffix);
    char *d = malloc(a + b + c + 1);
    FUZZ_CHECK(d != NULL, "out of memory");
    memcpy(d, prefix, a);
    memcpy(d + a, s, b);
    memcpy(d + a + b, suffix, c + 1);
    return d;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* A copy of s with every ASCII letter put in one case. */
static char *recase(const char *s, bool upper)
{
    char *d = dup_exact(s, strlen(s));
    for (char *p = d; *p != '\0'; p++)
        *p = upper ? ascii_upper(*p) : ascii_lower(*p);
    return d;
}

/* Whether needle occurs in hay, letters compared in any case. */
static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' && ascii_lower(p[i]) == ascii_lower(needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

/* Whether the list s has fewer than ROOM elements (counting commas). */
static bool has_room(const char *s)
{
    size_t commas = 0;
    for (; *s != '\0'; s++)
        commas += *s == ',';
    return commas + 1 < ROOM;
}

static void check_media(const char *accept, const char *const *offers, size_t n)
{
    int r = factsd_negotiate_media(accept, offers, n);
    FUZZ_CHECK(r >= -1 && r < (int)n, "choice %d of %zu offers", r, n);
    FUZZ_CHECK(factsd_negotiate_media(accept, offers, n) == r, "not deterministic");
    FUZZ_CHECK(factsd_negotiate_media(accept, offers, 0) == -1, "a choice among no offers");
    FUZZ_CHECK(factsd_negotiate_media(NULL, offers, n) == 0, "no header: the first offer");
    for (int upper = 0; upper < 2; upper++) {
        char *c = recase(accept, upper != 0);
        int rc = factsd_negotiate_media(c, offers, n);
        FUZZ_CHECK(rc == r, "case changes the choice: %d, %d in \"%s\"", r, rc, c);
        free(c);
    }
    if (r >= 0) {
        const char *o = offers[r];
        const char *slash = strchr(o, '/');
        char range[128];
        snprintf(range, sizeof range, "%.*s/*", (int)(slash - o), o);
        FUZZ_CHECK(contains_nocase(accept, o) || contains_nocase(accept, range) ||
                       contains_nocase(accept, "*/*"),
                   "%s chosen, but \"%s\" does not name it", o, accept);
    }
    bool room = has_room(accept);
    for (size_t i = 0; i < n; i++) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s;q=0, ", offers[i]);
        char *ex = join3(prefix, accept, "");
        int rx = factsd_negotiate_media(ex, offers, n);
        FUZZ_CHECK(rx != (int)i, "%s chosen despite q=0 first: \"%s\"", offers[i], ex);
        if (room && r != (int)i)
            FUZZ_CHECK(rx == r, "excluding %s moved the choice %d to %d: \"%s\"", offers[i], r,
                       rx, ex);
        free(ex);
        snprintf(prefix, sizeof prefix, "%s;q=1, ", offers[i]);
        char *in = join3(prefix, accept, "");
        int ri = factsd_negotiate_media(in, offers, n);
        FUZZ_CHECK(ri >= 0 && ri <= (int)i, "%s first with q=1, choice %d: \"%s\"", offers[i],
                   ri, in);
        free(in);
    }
}

static void check_gzip(const char *ae)
{
    bool g = factsd_negotiate_gzip(ae);
    FUZZ_CHECK(factsd_negotiate_gzip(ae) == g, "not deterministic");
    FUZZ_CHECK(!factsd_negotiate_gzip(NULL), "gzip without a header");
    for (int upper = 0; upper < 2; upper++) {
        char *c = recase(ae, upper != 0);
        FUZZ_CHECK(factsd_negotiate_gzip(c) == g, "case changes gzip: \"%s\"", c);
        free(c);
    }
    if (g)
        FUZZ_CHECK(contains_nocase(ae, "gzip") || strchr(ae, '*') != NULL,
                   "gzip chosen, not named: \"%s\"", ae);
    if (has_room(ae)) {
        char *off = join3("", ae, ", gzip;q=0");
        FUZZ_CHECK(!factsd_negotiate_gzip(off), "gzip despite a last gzip;q=0: \"%s\"", off);
        free(off);
        char *on = join3("", ae, ", identity;q=0, gzip");
        FUZZ_CHECK(factsd_negotiate_gzip(on), "no gzip despite a last gzip: \"%s\"", on);
        free(on);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 2 || size > INPUT_MAX)
        return 0;
    const char *const *offers;
    const char *chosen[OFFERS_MAX];
    size_t n;
    switch (data[0] & 3) {
    case 0:
    case 1:
        offers = collection_offers;
        n = sizeof collection_offers / sizeof collection_offers[0];
        break;
    case 2:
        offers = metrics_offers;
        n = sizeof metrics_offers / sizeof metrics_offers[0];
        break;
    default:
        n = 0;
        for (size_t i = 0; i < sizeof pool / sizeof pool[0]; i++) {
            if (data[1] & (1u << i))
                chosen[n++] = pool[i];
        }
        offers = chosen;
        break;
    }
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    const char *nul = memchr(text, '\0', len);
    char *accept = dup_exact(text, nul != NULL ? (size_t)(nul - text) : len);
    char *ae = nul != NULL ? dup_exact(nul + 1, len - (size_t)(nul - text) - 1)
                           : dup_exact(text, len);
    if (n > 0)
        check_media(accept, offers, n);
    else
        FUZZ_CHECK(factsd_negotiate_media(accept, offers, 0) == -1, "a choice among none");
    check_gzip(ae);
    free(accept);
    free(ae);
    return 0;
}
