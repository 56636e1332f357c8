/*
 * request_check.c - the framing, header and target rules (see
 * request_check.h).
 */
#include "request_check.h"

#include "text.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool factsd_check_header_name_valid(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL)))
            return false;
    }
    return true;
}

bool factsd_check_header_value_valid(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Checks that the field line key/value lies where libmicrohttpd parsed it,
 * in place right after the previous line: its lines end in one or two NULs
 * (CR LF), the name ends in a NUL (the colon) and only spaces and tabs lie
 * before the value. A NUL inside a line, or an obs-fold (libmicrohttpd
 * joins the continuation into a value copied elsewhere), breaks this. */
static bool header_in_place(factsd_check_headers *s, const char *key, const char *value)
{
    const char *prev = s->line_end;
    if (prev == NULL || value == NULL)
        return false;
    if (key != prev + 1 && !(key == prev + 2 && prev[1] == '\0'))
        return false;
    const char *colon = key + strlen(key);
    if ((uintptr_t)value <= (uintptr_t)colon ||
        (uintptr_t)value - (uintptr_t)colon > (uintptr_t)FACTSD_CHECK_HEADERS_MAX_BYTES)
        return false;
    for (const char *p = colon + 1; p < value; p++)
        if (*p != ' ' && *p != '\t')
            return false;
    s->line_end = value + strlen(value);
    return true;
}

bool factsd_check_authority_valid(const char *s, size_t len, bool need_host)
{
    size_t i = 0;
    if (len > 0 && s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++)
            if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
                return false;
        if (i >= len || i < 3)
            return false;
        i++;
    } else {
        for (; i < len && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                    !isxdigit((unsigned char)s[i + 2]))
                    return false;
                i += 2;
            } else if (!isalnum(c) && strchr("-._~!$&'()*+,;=", c) == NULL) {
                return false;
            }
        }
        if (i == 0 && need_host)
            return false;
    }
    if (i == len)
        return true;
    if (s[i] != ':' || len - i - 1 > 5)
        return false;
    for (i++; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool factsd_check_target_normalise(char *t, size_t *len, bool options)
{
    size_t n = *len;
    if (n > 0 && t[0] == '/')
        return true;
    if (n == 1 && t[0] == '*')
        return options;
    if (n < 7 || strncasecmp(t, "http://", 7) != 0)
        return false;
    size_t a = 7;
    while (a < n && t[a] != '/' && t[a] != '?')
        a++;
    if (!factsd_check_authority_valid(t + 7, a - 7, true))
        return false;
    size_t rest = n - a;
    size_t o = 0;
    if (rest == 0 || t[a] != '/')
        t[o++] = '/';
    memmove(t + o, t + a, rest);
    *len = o + rest;
    t[*len] = '\0';
    return true;
}

void factsd_check_headers_start(factsd_check_headers *s, const char *version)
{
    memset(s, 0, sizeof *s);
    s->line_end = version + strlen(version);
}

void factsd_check_headers_add(factsd_check_headers *s, const char *key, const char *value)
{
    s->count++;
    if (!factsd_check_header_name_valid(key))
        s->bad_name = true;
    else if (value == NULL || !factsd_check_header_value_valid(value))
        s->bad_value = true;
    else if (!s->bad_layout && !header_in_place(s, key, value))
        s->bad_layout = true;
    s->bytes += strlen(key) + (value != NULL ? strlen(value) : 0) + 4;
    if (strcasecmp(key, "Content-Length") == 0)
        s->content_length++;
    else if (strcasecmp(key, "Transfer-Encoding") == 0)
        s->transfer_encoding++;
    else if (strcasecmp(key, "Host") == 0)
        s->host++;
}

void factsd_check_headers_end(factsd_check_headers *s)
{
    /* The last line is followed by the empty line: NULs only. */
    if (s->count > 0 && s->line_end != NULL && !s->bad_layout && s->line_end[1] != '\0')
        s->bad_layout = true;
}

/* Checks a single Content-Length value v: 0 when it is a number within cap,
 * 1 when it is larger, -1 when it is not a number (or NULL). A number is
 * digits only (RFC 9110 section 8.6: 1*DIGIT), so not "-0". */
static int content_length_check(const char *v, size_t cap)
{
    long long n;
    if (v == NULL || v[0] < '0' || v[0] > '9' || !factsd_text_parse_int(v, 0, LLONG_MAX, &n))
        return -1;
    return (unsigned long long)n > cap ? 1 : 0;
}

const char *factsd_check_request(factsd_check_input *rq, factsd_problem_kind *kind, char *buf,
                                 size_t size)
{
    const factsd_check_headers *s = rq->headers;
    const char *te = rq->transfer_encoding;
    const char *host = rq->host;
    const char *detail = NULL;
    int cl;
    *kind = FACTSD_PROBLEM_MALFORMED_REQUEST;
    if (rq->target == NULL) {
        detail = "the request target could not be read";
    } else if (rq->target_too_long) {
        *kind = FACTSD_PROBLEM_URI_TOO_LONG;
        detail = "the request target is longer than 2048 bytes";
    } else if (!factsd_text_pct_valid(rq->target, rq->target_len) || !rq->target_whole) {
        detail = "the request target holds a control byte or a malformed %-escape";
    } else if (!factsd_check_target_normalise(rq->target, &rq->target_len, rq->options)) {
        detail = "the request target is not a path, an http URI or OPTIONS *";
    } else if (s->bytes > FACTSD_CHECK_HEADERS_MAX_BYTES ||
               s->count > FACTSD_CHECK_HEADERS_MAX_COUNT) {
        *kind = FACTSD_PROBLEM_HEADERS_TOO_LARGE;
        detail = "the request header fields exceed 6144 bytes or 100 fields";
    } else if (s->bad_name) {
        detail = "a header field name is not a token";
    } else if (s->bad_value) {
        detail = "a header field value holds a control byte";
    } else if (s->bad_layout) {
        detail = "a header field line holds a NUL byte or is folded (obs-fold)";
    } else if (s->transfer_encoding > 1) {
        detail = "more than one Transfer-Encoding header";
    } else if (te != NULL && strcasecmp(te, "chunked") != 0) {
        /* libmicrohttpd decodes exactly "chunked" (it drops leading
         * whitespace only); anything else it would read until close. */
        detail = "a Transfer-Encoding other than chunked";
    } else if (host != NULL && !factsd_check_authority_valid(host, strlen(host), false)) {
        detail = "the Host header is not a host with an optional port";
    } else if (s->content_length > 1) {
        detail = "more than one Content-Length header";
    } else if (s->content_length > 0 && s->transfer_encoding > 0) {
        detail = "Content-Length together with Transfer-Encoding";
    } else if (s->host == 0 && rq->http11) {
        detail = "an HTTP/1.1 request without a Host header";
    } else if (s->host > 1) {
        detail = "more than one Host header";
    } else if (s->content_length == 1 &&
               (cl = content_length_check(rq->content_length, rq->content_cap)) != 0) {
        if (cl > 0) {
            *kind = FACTSD_PROBLEM_CONTENT_TOO_LARGE;
            snprintf(buf, size, "request content is not accepted beyond %zu bytes",
                     rq->content_cap);
            detail = buf;
        } else {
            detail = "Content-Length is not a number";
        }
    }
    return detail;
}
