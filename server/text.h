/*
 * text.h - small, checked text helpers shared by the server modules: number
 * parsing, percent-decoding and -encoding, UTF-8 checking, hashing, and a
 * growable byte buffer with a hard cap.
 */
#ifndef FACTSD_TEXT_H
#define FACTSD_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses the whole of s as a base-10 integer in [min, max] (an optional
 * leading '-' only; no spaces, no '+', no empty string). Returns true and
 * sets *out; returns false and leaves *out unchanged otherwise. s is not
 * kept. */
bool factsd_text_parse_int(const char *s, long long min, long long max, long long *out);

/* Checks that len bytes at s hold only well-formed %-escapes ("%" followed by
 * two hex digits) and no NUL, control (< 0x20) or DEL byte, raw or escaped,
 * nor a raw space or raw byte >= 0x80 (those must come %-escaped). Returns
 * true when they do. Never fails otherwise. */
bool factsd_text_pct_valid(const char *s, size_t len);

/* Percent-decodes len bytes at src into dst (room for cap bytes, always
 * NUL-terminated on success); with plus_space a '+' decodes to a space.
 * Returns true and sets *outlen; returns false (dst content unspecified)
 * when an escape is malformed, the result holds a NUL or control byte, or it
 * does not fit. */
bool factsd_text_pct_decode(const char *src, size_t len, bool plus_space, char *dst,
                            size_t cap, size_t *outlen);

/* Whether len bytes at s are well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). Never fails. */
bool factsd_text_utf8_valid(const char *s, size_t len);

/* One "name=value" piece of a raw query string, not yet decoded: pointers
 * into the query, valid as long as it is. */
typedef struct factsd_query_piece {
    const char *name;
    size_t name_len;
    const char *value; /* after '='; at the piece's end when there is none */
    size_t value_len;
    bool has_value;    /* whether the piece had a '=' */
} factsd_query_piece;

/* Steps through the raw query string (len bytes, without the '?') from
 * *pos, skipping empty pieces between '&'s. Returns true and fills *out with
 * the next piece, advancing *pos; false at the end. Never fails. */
bool factsd_text_query_next(const char *query, size_t len, size_t *pos,
                            factsd_query_piece *out);

enum {
    FACTSD_PARAM_NAME_LEN = 32,  /* bytes of a decoded parameter name, NUL included */
    FACTSD_PARAM_VALUE_LEN = 96, /* bytes of a decoded value, NUL included */
    FACTSD_PARAMS_MAX = 16       /* '&'-separated pieces looked at */
};

/* One decoded query parameter. */
typedef struct factsd_query_param {
    char name[FACTSD_PARAM_NAME_LEN];   /* decoded ('+' is a space) */
    char value[FACTSD_PARAM_VALUE_LEN]; /* decoded; "" when there was no '=' */
    bool value_ok;                      /* the value decoded and fit */
} factsd_query_param;

/* What factsd_text_query_param_next found. */
typedef enum factsd_query_step {
    FACTSD_QUERY_DONE = 0, /* no more parameters */
    FACTSD_QUERY_PARAM,    /* *p holds the next parameter */
    FACTSD_QUERY_BAD_NAME, /* a name that does not decode, fit or read as
                              UTF-8: go on */
    FACTSD_QUERY_TOO_MANY  /* more than FACTSD_PARAMS_MAX pieces: stop */
} factsd_query_step;

/* Steps through the raw query (len bytes, without the '?') from *pos,
 * counting pieces in *count (start both at 0), and decodes the next
 * parameter into *p. Never fails otherwise. */
factsd_query_step factsd_text_query_param_next(const char *query, size_t len, size_t *pos,
                                               size_t *count, factsd_query_param *p);

/* A 64-bit non-cryptographic hash of len bytes at data. Never fails. */
uint64_t factsd_text_hash64(const void *data, size_t len);

/* A growable byte buffer that refuses to grow beyond max bytes. The fields
 * are private to text.c; use the functions below. Initialise with
 * factsd_buf_init, release with factsd_buf_free or factsd_buf_steal. */
typedef struct factsd_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool failed; /* an append failed (no memory or over max); sticky */
} factsd_buf;

/* Makes b empty with a cap of max bytes (content plus a NUL). Never fails. */
void factsd_buf_init(factsd_buf *b, size_t max);

/* Appends n bytes. Returns false, marking the buffer failed, on allocation
 * failure or when the cap would be exceeded; a failed buffer refuses every
 * later append. */
bool factsd_buf_append(factsd_buf *b, const void *p, size_t n);

/* Appends the NUL-terminated string s; as factsd_buf_append. */
bool factsd_buf_puts(factsd_buf *b, const char *s);

/* Appends printf-style formatted text; as factsd_buf_append. */
bool factsd_buf_printf(factsd_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends s percent-encoded for a URL query value (unreserved characters
 * kept, everything else %XX). As factsd_buf_append. */
bool factsd_buf_put_query_value(factsd_buf *b, const char *s);

/* Returns the content (NUL-terminated, length in *len if len is not NULL)
 * and hands its ownership to the caller (free with free()); the buffer is
 * left empty. Returns NULL when the buffer failed (its memory is released)
 * or on allocation failure. */
char *factsd_buf_steal(factsd_buf *b, size_t *len);

/* Releases the content. b may be reused after factsd_buf_init. */
void factsd_buf_free(factsd_buf *b);

#endif /* FACTSD_TEXT_H */
