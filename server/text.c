/*
 * text.c - checked text helpers (see text.h).
 */
#include "text.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool factsd_text_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (s == NULL || out == NULL)
        return false;
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return false; /* empty, '+', spaces, or anything strtoll would skip */
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool factsd_text_pct_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
        if (c == '%') {
            int hi = i + 2 < len ? hex_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || hi * 16 + lo < 0x20 || hi * 16 + lo == 0x7f)
                return false;
            i += 2;
        }
    }
    return true;
}

bool factsd_text_pct_decode(const char *src, size_t len, bool plus_space, char *dst,
                            size_t cap, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return false;
            int hi = hex_value((unsigned char)src[i + 1]);
            int lo = hex_value((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return false;
        if (o + 1 >= cap)
            return false;
        dst[o++] = (char)c;
    }
    if (cap == 0)
        return false;
    dst[o] = '\0';
    *outlen = o;
    return true;
}

bool factsd_text_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t factsd_text_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0x100000001b3ULL);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= mix64(w + 0x9e3779b97f4a7c15ULL);
        h = (h << 27) | (h >> 37);
        h = h * 5 + 0x52dce729;
    }
    uint64_t tail = 0;
    for (size_t k = 0; i + k < len; k++)
        tail |= (uint64_t)p[i + k] << (8 * k);
    h ^= mix64(tail ^ 0x27d4eb2f165667c5ULL);
    return mix64(h);
}

void factsd_buf_init(factsd_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->failed = false;
}

static bool buf_reserve(factsd_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > b->max || b->len + 1 > b->max - extra) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool factsd_buf_append(factsd_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return false;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool factsd_buf_puts(factsd_buf *b, const char *s)
{
    return factsd_buf_append(b, s, strlen(s));
}

bool factsd_buf_printf(factsd_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return false;
    }
    va_start(ap, fmt);
    int m = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (m != n) {
        b->failed = true;
        return false;
    }
    b->len += (size_t)n;
    return true;
}

bool factsd_buf_put_query_value(factsd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *run = (const unsigned char *)s;
    for (const unsigned char *p = run;; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (keep)
            continue;
        /* Unreserved bytes go out in runs, the others escaped. */
        if (p > run && !factsd_buf_append(b, run, (size_t)(p - run)))
            return false;
        if (c == '\0')
            break;
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (!factsd_buf_append(b, esc, 3))
            return false;
        run = p + 1;
    }
    return !b->failed;
}

char *factsd_buf_steal(factsd_buf *b, size_t *len)
{
    if (b->failed) {
        factsd_buf_free(b);
        return NULL;
    }
    if (b->data == NULL && !buf_reserve(b, 0)) {
        factsd_buf_free(b);
        return NULL;
    }
    b->data[b->len] = '\0';
    char *out = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return out;
}

void factsd_buf_free(factsd_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

bool factsd_text_query_next(const char *query, size_t len, size_t *pos,
                            factsd_query_piece *out)
{
    while (*pos < len) {
        const char *piece = query + *pos;
        const char *amp = memchr(piece, '&', len - *pos);
        size_t plen = amp != NULL ? (size_t)(amp - piece) : len - *pos;
        *pos += plen + 1;
        if (plen == 0)
            continue;
        const char *eq = memchr(piece, '=', plen);
        out->name = piece;
        out->name_len = eq != NULL ? (size_t)(eq - piece) : plen;
        out->has_value = eq != NULL;
        out->value = eq != NULL ? eq + 1 : piece + plen;
        out->value_len = (size_t)(piece + plen - out->value);
        return true;
    }
    return false;
}

factsd_query_step factsd_text_query_param_next(const char *query, size_t len, size_t *pos,
                                               size_t *count, factsd_query_param *p)
{
    factsd_query_piece qp;
    if (!factsd_text_query_next(query, len, pos, &qp))
        return FACTSD_QUERY_DONE;
    if (++*count > FACTSD_PARAMS_MAX)
        return FACTSD_QUERY_TOO_MANY;
    size_t dn = 0, dv = 0;
    if (!factsd_text_pct_decode(qp.name, qp.name_len, true, p->name, sizeof p->name, &dn) ||
        !factsd_text_utf8_valid(p->name, dn))
        return FACTSD_QUERY_BAD_NAME; /* (a problem names parameters in UTF-8) */
    p->value[0] = '\0';
    p->value_ok = !qp.has_value || factsd_text_pct_decode(qp.value, qp.value_len, true,
                                                          p->value, sizeof p->value, &dv);
    return FACTSD_QUERY_PARAM;
}
