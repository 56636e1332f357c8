/*
 * fuzz_request.c - the byte-level request rules (server/request_check.c):
 * the raw target, the header field lines as libmicrohttpd leaves them, the
 * Host authority and the Content-Length / Transfer-Encoding framing.
 *
 * Input layout:
 *   byte 0  bit 0: OPTIONS (else GET); bit 1: HTTP/1.1 (else HTTP/1.0);
 *           bit 2: a write method's content cap (1 MiB, else 16 KiB);
 *           bit 3: lines end in LF (else CR LF)
 *   rest    the request target up to the first LF, then header field lines,
 *           one a line ("name: value"; a CR before the LF is dropped; a line
 *           without a colon is left out, as libmicrohttpd refuses it; a line
 *           starting with a space or a tab continues the previous value, an
 *           obs-fold)
 *
 * The harness lays the request out as libmicrohttpd does, in one buffer:
 * the target, its NUL, the version, the line end as NULs, each field line
 * with NULs where its colon and line end were and the value after the
 * spaces and tabs that follow the colon, the empty line; a folded value is
 * copied after the block, as libmicrohttpd copies it into its pool. The
 * target is then copied as the server copies it (only its start when it is
 * over 2048 bytes), to a buffer of its exact size.
 *
 * Checked besides the sanitizers: the verdict and the normalised target are
 * the same for a second copy of the request; an accepted request has a
 * target of origin-form ("/..." or, for OPTIONS, "*") with no byte outside
 * 0x21-0x7e, every '%' starting an escape of a byte that is not a control
 * byte nor DEL, whose normalisation is then a no-op; at most 6144 bytes and
 * 100 field lines, no bad name, value or layout, at most one Content-Length
 * (digits only, within the cap) and Transfer-Encoding ("chunked") and not
 * both, exactly one Host under HTTP/1.1 and a valid authority; a refusal
 * has a kind among those the rules give, a detail that fits its buffer, and
 * a 414 only for a long target, a 413 only for a Content-Length of digits
 * over the cap. The name and value checks agree with the RFC 9110 grammar
 * written out here; the authority check reads no byte past its length.
 */
#include "fuzz.h"

#include "request_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <strings.h>

enum {
    INPUT_MAX = 16384,
    TARGET_MAX = 2048,       /* FACTSD_TARGET_MAX (routes.h) */
    TARGET_INLINE = 160,     /* the server's inline copy, kept for a long target */
    LINES_MAX = 256,         /* field lines laid out (the rules stop at 100) */
    CAP_READ = 16 * 1024,    /* the content a read method may carry */
    CAP_WRITE = 1024 * 1024  /* a write method's */
};

/* One field line of the input. */
struct line {
    const char *key;   /* in the laid-out buffer */
    const char *value; /* in place, or in the copies after the block */
};

/* A request laid out as libmicrohttpd leaves it. */
struct request {
    char *buf;          /* everything: target, version, field lines, copies */
    const char *version;
    const char *raw_target;
    struct line lines[LINES_MAX];
    size_t nlines;
    char *target;       /* the server's copy */
    size_t target_len;
    bool too_long;
};

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Lays the input out. Returns false when it is not a request the rules
 * ever see (no request line). */
static bool request_build(struct request *rq, const unsigned char *data, size_t size)
{
    memset(rq, 0, sizeof *rq);
    bool lf = (data[0] & 8) != 0;
    const char *version = (data[0] & 2) ? "HTTP/1.1" : "HTTP/1.0";
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    const char *eol = memchr(in, '\n', n);
    size_t tlen = eol != NULL ? (size_t)(eol - in) : n;
    if (tlen > 0 && in[tlen - 1] == '\r')
        tlen--;
    /* The block holds at most: the target, the version, each line with two
     * NULs, the folded copies (each byte of the input once, a space per
     * continuation), the end. */
    size_t cap = 4 * size + 64;
    rq->buf = calloc(1, cap);
    FUZZ_CHECK(rq->buf != NULL, "out of memory");
    char *o = rq->buf;
    memcpy(o, in, tlen);
    rq->raw_target = o;
    o += tlen;
    *o++ = '\0';
    memcpy(o, version, strlen(version) + 1);
    rq->version = o;
    o += strlen(version) + 1;
    if (!lf)
        *o++ = '\0';
    /* Field lines in place. Folded continuations are joined afterwards. */
    struct {
        const char *start;
        size_t len;
    } folds[LINES_MAX];
    size_t nfolds_of[LINES_MAX] = {0};
    size_t first_fold[LINES_MAX] = {0};
    size_t nfolds = 0;
    const char *p = eol != NULL ? eol + 1 : in + n;
    const char *end = in + n;
    while (p < end && rq->nlines < LINES_MAX) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t len = e != NULL ? (size_t)(e - p) : (size_t)(end - p);
        const char *next = e != NULL ? e + 1 : end;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len == 0)
            break; /* the empty line ends the block */
        if (p[0] == ' ' || p[0] == '\t') {
            if (rq->nlines > 0 && nfolds < LINES_MAX) {
                size_t i = rq->nlines - 1;
                if (nfolds_of[i] == 0)
                    first_fold[i] = nfolds;
                nfolds_of[i]++;
                folds[nfolds].start = p;
                folds[nfolds].len = len;
                nfolds++;
            }
            p = next;
            continue;
        }
        const char *colon = memchr(p, ':', len);
        if (colon == NULL) {
            p = next;
            continue;
        }
        struct line *l = &rq->lines[rq->nlines++];
        size_t klen = (size_t)(colon - p);
        memcpy(o, p, klen);
        l->key = o;
        o += klen;
        *o++ = '\0';
        const char *v = colon + 1;
        const char *vend = p + len;
        while (v < vend && (*v == ' ' || *v == '\t'))
            *o++ = *v++;
        memcpy(o, v, (size_t)(vend - v));
        l->value = o;
        o += vend - v;
        *o++ = '\0';
        if (!lf)
            *o++ = '\0';
        p = next;
    }
    /* The empty line. */
    *o++ = '\0';
    if (!lf)
        *o++ = '\0';
    /* A folded value: the value and its continuations joined by a space,
     * copied after the block. */
    for (size_t i = 0; i < rq->nlines; i++) {
        if (nfolds_of[i] == 0)
            continue;
        const char *v = rq->lines[i].value;
        size_t vlen = strlen(v);
        char *copy = o;
        memcpy(o, v, vlen);
        o += vlen;
        for (size_t f = first_fold[i]; f < first_fold[i] + nfolds_of[i]; f++) {
            const char *c = folds[f].start;
            size_t clen = folds[f].len;
            while (clen > 0 && (*c == ' ' || *c == '\t')) {
                c++;
                clen--;
            }
            *o++ = ' ';
            memcpy(o, c, clen);
            o += clen;
        }
        *o++ = '\0';
        rq->lines[i].value = copy;
    }
    FUZZ_CHECK((size_t)(o - rq->buf) <= cap, "the layout overflows its buffer");
    /* The server's copy of the target (strlen: a NUL cuts it). */
    size_t len = strlen(rq->raw_target);
    if (len > TARGET_MAX) {
        rq->too_long = true;
        len = TARGET_INLINE - 1;
    }
    rq->target = malloc(len + 1);
    FUZZ_CHECK(rq->target != NULL, "out of memory");
    memcpy(rq->target, rq->raw_target, len);
    rq->target[len] = '\0';
    rq->target_len = len;
    return true;
}

static void request_free(struct request *rq)
{
    free(rq->buf);
    free(rq->target);
}

/* The value of the first field named name, as MHD_lookup_connection_value
 * finds it. */
static const char *request_lookup(const struct request *rq, const char *name)
{
    for (size_t i = 0; i < rq->nlines; i++) {
        if (strcasecmp(rq->lines[i].key, name) == 0)
            return rq->lines[i].value;
    }
    return NULL;
}

/* What one run of the rules gave. */
struct verdict {
    const char *detail;
    char text[128];
    factsd_problem_kind kind;
    factsd_check_headers headers;
    const char *te, *host, *cl;
};

static void request_check(struct request *rq, const unsigned char *data, struct verdict *out)
{
    factsd_check_headers *s = &out->headers;
    factsd_check_headers_start(s, rq->version);
    for (size_t i = 0; i < rq->nlines; i++)
        factsd_check_headers_add(s, rq->lines[i].key, rq->lines[i].value);
    factsd_check_headers_end(s);
    factsd_check_input in = {
        .target = rq->target,
        .target_len = rq->target_len,
        .target_too_long = rq->too_long,
        .target_whole = rq->raw_target + strlen(rq->raw_target) + 1 == rq->version,
        .options = (data[0] & 1) != 0,
        .http11 = (data[0] & 2) != 0,
        .headers = s,
        .content_cap = (data[0] & 4) ? CAP_WRITE : CAP_READ,
    };
    if (s->transfer_encoding == 1)
        in.transfer_encoding = request_lookup(rq, "Transfer-Encoding");
    if (s->host == 1)
        in.host = request_lookup(rq, "Host");
    if (s->content_length == 1)
        in.content_length = request_lookup(rq, "Content-Length");
    out->te = in.transfer_encoding;
    out->host = in.host;
    out->cl = in.content_length;
    char buf[96];
    memset(buf, 0x5a, sizeof buf);
    out->kind = (factsd_problem_kind)-1;
    const char *d = factsd_check_request(&in, &out->kind, buf, sizeof buf);
    out->detail = d;
    out->text[0] = '\0';
    if (d != NULL) {
        if (d == buf)
            FUZZ_CHECK(fuzz_terminated(buf, sizeof buf), "a detail past its buffer");
        FUZZ_CHECK(strlen(d) > 0 && strlen(d) < sizeof out->text, "detail \"%s\"", d);
        snprintf(out->text, sizeof out->text, "%s", d);
    }
    rq->target_len = in.target_len;
}

/* The name and value rules of RFC 9110, written out. */
static void check_fields(const struct request *rq)
{
    for (size_t i = 0; i < rq->nlines; i++) {
        const char *k = rq->lines[i].key, *v = rq->lines[i].value;
        bool token = *k != '\0';
        for (const char *c = k; *c != '\0'; c++)
            token = token && is_tchar((unsigned char)*c);
        FUZZ_CHECK(factsd_check_header_name_valid(k) == token, "name \"%s\"", k);
        bool clean = true;
        for (const char *c = v; *c != '\0'; c++) {
            unsigned char b = (unsigned char)*c;
            clean = clean && !((b < 0x20 && b != '\t') || b == 0x7f);
        }
        FUZZ_CHECK(factsd_check_header_value_valid(v) == clean, "value \"%s\"", v);
    }
}

/* The authority check on the len bytes at s, from a copy without a NUL. */
static bool authority_exact(const char *s, size_t len, bool need_host)
{
    char *copy = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, s, len);
    bool ok = factsd_check_authority_valid(copy, len, need_host);
    free(copy);
    return ok;
}

static void check_authority(const char *s)
{
    size_t len = strlen(s);
    bool strict = authority_exact(s, len, true);
    bool loose = authority_exact(s, len, false);
    FUZZ_CHECK(!strict || loose, "an authority valid with a host needed only");
    FUZZ_CHECK(factsd_check_authority_valid(s, len, true) == strict, "not deterministic");
    if (!loose)
        return;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7f && strchr("\"<>\\^`{|}/?#@", c) == NULL,
                   "byte 0x%02x in the authority \"%s\"", c, s);
    }
    /* A port is up to 5 digits after the last colon (outside brackets). */
    const char *close = strrchr(s, ']');
    const char *port = strrchr(close != NULL ? close : s, ':');
    if (port != NULL && (s[0] != '[' || close != NULL)) {
        size_t plen = len - (size_t)(port + 1 - s);
        FUZZ_CHECK(plen <= 5 && strspn(port + 1, "0123456789") == plen, "port in \"%s\"", s);
    }
}

/* An accepted target: origin-form, printable ASCII, escapes of non-control
 * bytes; normalising it again changes nothing. */
static void check_accepted_target(const char *t, size_t len, bool options)
{
    FUZZ_CHECK(strlen(t) == len, "target length %zu, string %zu", len, strlen(t));
    FUZZ_CHECK((len > 0 && t[0] == '/') || (options && len == 1 && t[0] == '*'),
               "target \"%s\" is not origin-form", t);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "byte 0x%02x in an accepted target", c);
        if (c == '%') {
            FUZZ_CHECK(i + 2 < len && hex((unsigned char)t[i + 1]) >= 0 &&
                           hex((unsigned char)t[i + 2]) >= 0,
                       "a bad escape in \"%s\"", t);
            int b = hex((unsigned char)t[i + 1]) * 16 + hex((unsigned char)t[i + 2]);
            FUZZ_CHECK(b >= 0x20 && b != 0x7f, "%%%02X in an accepted target", b);
            i += 2;
        }
    }
    char *again = malloc(len + 1);
    FUZZ_CHECK(again != NULL, "out of memory");
    memcpy(again, t, len + 1);
    size_t alen = len;
    FUZZ_CHECK(factsd_check_target_normalise(again, &alen, options),
               "a normalised target is refused");
    FUZZ_CHECK(alen == len && memcmp(again, t, len + 1) == 0, "normalising twice changes it");
    free(again);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX)
        return 0;
    struct request a, b;
    struct verdict va, vb;
    if (!request_build(&a, data, size))
        return 0;
    FUZZ_CHECK(request_build(&b, data, size), "not deterministic");
    size_t raw_len = strlen(a.raw_target);
    request_check(&a, data, &va);
    request_check(&b, data, &vb);
    FUZZ_CHECK((va.detail == NULL) == (vb.detail == NULL) && strcmp(va.text, vb.text) == 0 &&
                   (va.detail == NULL || va.kind == vb.kind),
               "two runs differ: \"%s\", \"%s\"", va.text, vb.text);
    FUZZ_CHECK(a.target_len == b.target_len && strcmp(a.target, b.target) == 0,
               "two runs normalise differently");
    check_fields(&a);
    const char *host = request_lookup(&a, "Host");
    if (host != NULL)
        check_authority(host);
    const factsd_check_headers *s = &va.headers;
    FUZZ_CHECK(s->count == a.nlines, "%u lines counted, %zu fed", s->count, a.nlines);
    if (va.detail == NULL) {
        bool options = (data[0] & 1) != 0;
        FUZZ_CHECK(!a.too_long, "a target of %zu bytes accepted", raw_len);
        check_accepted_target(a.target, a.target_len, options);
        FUZZ_CHECK(s->bytes <= FACTSD_CHECK_HEADERS_MAX_BYTES &&
                       s->count <= FACTSD_CHECK_HEADERS_MAX_COUNT,
                   "%zu bytes, %u fields accepted", s->bytes, s->count);
        FUZZ_CHECK(!s->bad_name && !s->bad_value && !s->bad_layout, "a bad field accepted");
        FUZZ_CHECK(s->content_length <= 1 && s->transfer_encoding <= 1 &&
                       !(s->content_length && s->transfer_encoding),
                   "framing: %u Content-Length, %u Transfer-Encoding", s->content_length,
                   s->transfer_encoding);
        FUZZ_CHECK(s->host <= 1 && (s->host == 1 || !(data[0] & 2)), "%u Host fields", s->host);
        if (va.te != NULL)
            FUZZ_CHECK(strcasecmp(va.te, "chunked") == 0, "Transfer-Encoding \"%s\"", va.te);
        if (va.host != NULL)
            FUZZ_CHECK(authority_exact(va.host, strlen(va.host), false), "Host \"%s\"", va.host);
        if (va.cl != NULL) {
            size_t digits = strspn(va.cl, "0123456789");
            FUZZ_CHECK(digits > 0 && va.cl[digits] == '\0', "Content-Length \"%s\" accepted",
                       va.cl);
        }
    } else {
        switch (va.kind) {
        case FACTSD_PROBLEM_URI_TOO_LONG:
            FUZZ_CHECK(a.too_long, "414 for a target of %zu bytes", raw_len);
            break;
        case FACTSD_PROBLEM_CONTENT_TOO_LARGE:
            FUZZ_CHECK(va.cl != NULL && strspn(va.cl, "0123456789") == strlen(va.cl),
                       "413 without a Content-Length of digits");
            break;
        case FACTSD_PROBLEM_HEADERS_TOO_LARGE:
            FUZZ_CHECK(s->bytes > FACTSD_CHECK_HEADERS_MAX_BYTES ||
                           s->count > FACTSD_CHECK_HEADERS_MAX_COUNT,
                       "431 for %zu bytes, %u fields", s->bytes, s->count);
            break;
        case FACTSD_PROBLEM_MALFORMED_REQUEST:
            break;
        default:
            FUZZ_CHECK(0, "kind %d", (int)va.kind);
        }
        if (a.too_long)
            FUZZ_CHECK(va.kind == FACTSD_PROBLEM_URI_TOO_LONG, "a long target refused as \"%s\"",
                       va.text);
    }
    request_free(&a);
    request_free(&b);
    return 0;
}
