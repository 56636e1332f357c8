/*
 * negotiate.c - Accept and Accept-Encoding with q-values (see negotiate.h).
 */
#include "negotiate.h"

#include <string.h>

enum {
    Q_ONE = 1000,  /* q-values are read in thousandths */
    NAME_MAX = 96  /* bytes of a media range or a coding name */
};

/* One element of a comma-separated list: its name (lower-cased, without
 * parameters) and its q-value. */
struct element {
    char name[NAME_MAX];
    int q;
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Reads a qvalue (RFC 9110 §12.4.2: 0[.ddd] or 1[.000]) of len bytes at s
 * into *q; false when it is not one. */
static bool parse_q(const char *s, size_t len, int *q)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1'))
        return false;
    int v = (s[0] - '0') * Q_ONE;
    if (len == 1) {
        *q = v;
        return true;
    }
    if (s[1] != '.' || len > 5)
        return false;
    int scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v += (s[i] - '0') * scale;
    }
    if (v > Q_ONE)
        return false;
    *q = v;
    return true;
}

/* Parses the element of len bytes at s; false when it is empty or does not
 * parse (a name too long, a bad q). */
static bool parse_element(const char *s, size_t len, struct element *e)
{
    while (len > 0 && is_ows(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_ows(s[len - 1]))
        len--;
    const char *semi = memchr(s, ';', len);
    size_t nlen = semi != NULL ? (size_t)(semi - s) : len;
    while (nlen > 0 && is_ows(s[nlen - 1]))
        nlen--;
    if (nlen == 0 || nlen >= sizeof e->name)
        return false;
    for (size_t i = 0; i < nlen; i++) {
        if (is_ows(s[i]) || (unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
        e->name[i] = lower(s[i]);
    }
    e->name[nlen] = '\0';
    e->q = Q_ONE;
    /* Parameters: only q counts; the others (charset, …) are read past. */
    while (semi != NULL) {
        const char *p = semi + 1;
        size_t rest = len - (size_t)(p - s);
        semi = memchr(p, ';', rest);
        size_t plen = semi != NULL ? (size_t)(semi - p) : rest;
        while (plen > 0 && is_ows(*p)) {
            p++;
            plen--;
        }
        while (plen > 0 && is_ows(p[plen - 1]))
            plen--;
        if (plen >= 2 && lower(p[0]) == 'q' && p[1] == '=') {
            if (!parse_q(p + 2, plen - 2, &e->q))
                return false;
        }
    }
    return true;
}

/* Walks the list header, calling fn on each element that parses, at most
 * FACTSD_NEGOTIATE_ELEMENTS_MAX of them. */
static void list_walk(const char *header, void (*fn)(const struct element *, void *),
                      void *ctx)
{
    const char *p = header;
    size_t seen = 0;
    while (*p != '\0' && seen < FACTSD_NEGOTIATE_ELEMENTS_MAX) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        struct element e;
        if (parse_element(p, len, &e)) {
            fn(&e, ctx);
            seen++;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
}

struct media_ctx {
    const char *const *offers;
    size_t n;
    int q[FACTSD_NEGOTIATE_ELEMENTS_MAX];
    int rank[FACTSD_NEGOTIATE_ELEMENTS_MAX]; /* specificity of the range that
                                                set q: 0 none, 1 any/any, 2
                                                type/any, 3 type/subtype */
};

static void media_element(const struct element *e, void *cls)
{
    struct media_ctx *m = cls;
    const char *slash = strchr(e->name, '/');
    if (slash == NULL)
        return;
    size_t tlen = (size_t)(slash - e->name);
    int rank;
    if (strcmp(e->name, "*/*") == 0)
        rank = 1;
    else if (strcmp(slash + 1, "*") == 0)
        rank = 2;
    else
        rank = 3;
    for (size_t i = 0; i < m->n; i++) {
        const char *o = m->offers[i];
        bool match = rank == 1 || (rank == 2 && strncmp(o, e->name, tlen + 1) == 0) ||
                     (rank == 3 && strcmp(o, e->name) == 0);
        if (match && rank > m->rank[i]) {
            m->rank[i] = rank;
            m->q[i] = e->q;
        }
    }
}

int factsd_negotiate_media(const char *accept, const char *const *offers, size_t n)
{
    if (n == 0)
        return -1;
    if (accept == NULL)
        return 0;
    if (n > FACTSD_NEGOTIATE_ELEMENTS_MAX)
        n = FACTSD_NEGOTIATE_ELEMENTS_MAX;
    struct media_ctx m = {.offers = offers, .n = n};
    list_walk(accept, media_element, &m);
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (m.rank[i] > 0 && m.q[i] > 0 && (best < 0 || m.q[i] > m.q[best]))
            best = (int)i;
    }
    return best;
}

struct coding_ctx {
    int gzip, any, identity; /* q-values, -1 = not named */
};

static void coding_element(const struct element *e, void *cls)
{
    struct coding_ctx *c = cls;
    if (strcmp(e->name, "gzip") == 0 || strcmp(e->name, "x-gzip") == 0)
        c->gzip = e->q;
    else if (strcmp(e->name, "*") == 0)
        c->any = e->q;
    else if (strcmp(e->name, "identity") == 0)
        c->identity = e->q;
}

bool factsd_negotiate_gzip(const char *ae)
{
    if (ae == NULL)
        return false;
    struct coding_ctx c = {-1, -1, -1};
    list_walk(ae, coding_element, &c);
    int gzip = c.gzip >= 0 ? c.gzip : c.any >= 0 ? c.any : 0;
    int identity = c.identity >= 0 ? c.identity : Q_ONE;
    return gzip > 0 && gzip >= identity;
}
