/*
 * request_check.h - the byte-level rules a request must pass before it is
 * routed: the framing (Content-Length, Transfer-Encoding, Host), the header
 * field lines, the request target. Pure functions over plain strings,
 * lengths and counts: no connection, no allocation, no global state, so a
 * fuzzer can call them without a daemon. The one piece that reads a
 * libmicrohttpd connection (collecting the header fields) is the caller's.
 */
#ifndef FACTSD_REQUEST_CHECK_H
#define FACTSD_REQUEST_CHECK_H

#include "problem.h"

#include <stdbool.h>
#include <stddef.h>

enum {
    FACTSD_CHECK_HEADERS_MAX_BYTES = 6144, /* header fields, names plus values */
    FACTSD_CHECK_HEADERS_MAX_COUNT = 100   /* header fields */
};

/* Whether the NUL-terminated s is an RFC 9110 token (tchar: letters,
 * digits, "!#$%&'*+-.^_`|~"): a valid field name. "" is not. */
bool factsd_check_header_name_valid(const char *s);

/* Whether the NUL-terminated s holds no control byte but HTAB, and no DEL:
 * a valid field value. */
bool factsd_check_header_value_valid(const char *s);

/* Whether the len bytes at s are a uri-host with an optional ":" port
 * (RFC 3986): an IP literal in brackets (hex digits, ':' and '.') or a
 * reg-name (unreserved, sub-delims, %-escapes), then up to 5 digits.
 * need_host refuses an empty host. s need not be NUL-terminated. */
bool factsd_check_authority_valid(const char *s, size_t len, bool need_host);

/* Brings the *len-byte target t (NUL-terminated, writable) to origin-form
 * in place: an absolute-form "http://authority..." (RFC 9112 section
 * 3.2.2; scheme in any case, a valid authority) loses its scheme and
 * authority, and a '/' is put first when what follows the authority is
 * empty or a query; *len is updated and t stays NUL-terminated. Returns
 * true for that and for "/..." (untouched) and, when options is set (an
 * OPTIONS request), "*"; false (t untouched) for any other form. */
bool factsd_check_target_normalise(char *t, size_t *len, bool options);

/* What the header field lines of one request add up to. A plain value:
 * start it with factsd_check_headers_start, feed it every field line in
 * order with factsd_check_headers_add, close it with
 * factsd_check_headers_end. */
typedef struct factsd_check_headers {
    unsigned content_length;    /* Content-Length fields */
    unsigned transfer_encoding; /* Transfer-Encoding fields */
    unsigned host;              /* Host fields */
    size_t bytes;               /* names and values, plus 4 per field */
    unsigned count;             /* fields */
    bool bad_name;              /* a field name is not a token */
    bool bad_value;             /* a field value holds a control byte */
    bool bad_layout;            /* a NUL in a field line, or an obs-fold */
    const char *line_end;       /* the NUL ending the previous field line */
} factsd_check_headers;

/* Starts s for the header block that follows the request line, whose
 * version string (NUL-terminated) is version. The layout rule reads the
 * block as libmicrohttpd leaves it, in place: each line split by NULs
 * where its CR LF and its colon were, the first field line right after
 * version's NUL (or its second NUL), the empty line after the last. So
 * version and every key and value fed to s must point into that one
 * buffer, which must outlive s. Never fails. */
void factsd_check_headers_start(factsd_check_headers *s, const char *version);

/* Adds the field line key: value (value may be NULL: a bad value) to s:
 * counts it and its bytes, the framing fields (names compared in any
 * case), and records the first rule it breaks: a name that is not a token,
 * else a value with a control byte, else (once) a line not where the
 * previous one ended (a NUL inside a line, or an obs-fold, whose value
 * libmicrohttpd copies elsewhere). Reads the bytes between the previous
 * line's end and value. Never fails. */
void factsd_check_headers_add(factsd_check_headers *s, const char *key, const char *value);

/* Ends s: the last field line must be followed by the empty line (one
 * more NUL). Reads one byte past the last value's NUL. Never fails. */
void factsd_check_headers_end(factsd_check_headers *s);

/* One request as the framing rules see it: plain values the caller fills
 * and owns. */
typedef struct factsd_check_input {
    char *target;      /* the raw target, NUL-terminated and writable (it is
                          normalised in place); NULL: it could not be read */
    size_t target_len; /* its bytes; updated by the normalisation */
    bool target_too_long; /* longer than FACTSD_TARGET_MAX (target holds its
                             start only) */
    bool target_whole; /* the string is the whole target: no NUL byte in the
                          request line cut it short */
    bool options;      /* the method is OPTIONS ("*" is a valid target) */
    bool http11;       /* the version is HTTP/1.1 (a Host is required) */
    const factsd_check_headers *headers; /* the field lines, ended */
    const char *transfer_encoding; /* its value when headers count one, else NULL */
    const char *host;              /* likewise */
    const char *content_length;    /* likewise */
    size_t content_cap; /* the request content the method may carry */
} factsd_check_input;

/* Checks rq against the rules, in a fixed order: a target that could not be
 * read or is too long (414), one with a control byte, a malformed %-escape
 * or a NUL, one that is not origin-form, an http URI or "OPTIONS *"; header
 * fields beyond FACTSD_CHECK_HEADERS_MAX_BYTES or _COUNT (431); a bad name,
 * value or line layout; several or a non-"chunked" Transfer-Encoding; a
 * Host that is not an authority; several Content-Length, or one with
 * Transfer-Encoding; an HTTP/1.1 request without a Host, or with several; a
 * Content-Length that is not a number, or beyond content_cap (413). Brings
 * rq->target to origin-form on the way (factsd_check_target_normalise).
 * Returns NULL when the request passes; otherwise sets *kind and returns
 * the detail of the first rule broken: static text, or text written into
 * buf (size bytes, at least 96 for the whole text), valid while buf is.
 * Never fails otherwise. */
const char *factsd_check_request(factsd_check_input *rq, factsd_problem_kind *kind, char *buf,
                                 size_t size);

#endif /* FACTSD_REQUEST_CHECK_H */
