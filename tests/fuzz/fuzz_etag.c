/*
 * fuzz_etag.c - the entity-tag lists of the conditional requests:
 * If-Match against a record's ETag (factsd_write_if_match, server/write.c,
 * the strong comparison) and If-None-Match against a representation
 * (factsd_repr_matches, server/render.c, the weak comparison, the ETag of
 * the identity body or of its gzip variant).
 *
 * Input layout:
 *   byte 0  bits 0-1: 0-1 a raw header value, 2-3 a list built from the
 *           rest; bits 2-3: the representation (0-1 one with a gzip variant,
 *           2 one without, 3 a problem, which has no ETag)
 *   rest    raw: the value up to the first NUL, each byte 0x01 replaced by
 *           the identity ETag and each 0x02 by the gzip one (so mutations
 *           reach the tags that match);
 *           list: elements, each one byte of kind (bits 0-2: the identity
 *           ETag, its weak form, the gzip ETag, its weak form, "*", another
 *           tag; bits 3-4: the separator after it: ",", ", ", " ,\t", ",,";
 *           bit 5: OWS before the first element) then, for another tag,
 *           a length byte (0-19) and that many bytes of its content
 *           (mapped into etagc) and a byte whose bit 0 makes it weak
 *
 * Checked besides the sanitizers (each value in a buffer of exactly its
 * size): both functions give the same answer twice; no value means a match
 * for If-Match and none for If-None-Match; If-Match matches only a value
 * that is "*" alone or names the ETag where a tag can start (at the start,
 * after a separator or a closing quote), and whatever If-Match matches,
 * If-None-Match matches too; If-None-Match matches only a value holding "*"
 * or one of the tags; a problem matches nothing. For a well-formed list both
 * answers are those of RFC 9110 written out here: If-Match, a strong tag
 * equal to the ETag, or "*" as the whole list; If-None-Match, "*" or any
 * tag, weak or strong, equal to either ETag.
 */
#include "fuzz.h"

#include "render.h"
#include "write.h"

#include <stdbool.h>

enum {
    INPUT_MAX = 8192,
    ELEMENTS_MAX = 128,
    TAG_MAX = 19
};

static factsd_repr *with_gzip, *plain, *problem;
static char gz_tag[FACTSD_WRITE_ETAG_LEN];       /* with_gzip's gzip ETag */

static factsd_repr *repr_make(const char *text, size_t repeat, factsd_media media)
{
    size_t n = strlen(text);
    char *body = malloc(n * repeat + 1);
    FUZZ_CHECK(body != NULL, "out of memory");
    for (size_t i = 0; i < repeat; i++)
        memcpy(body + i * n, text, n);
    body[n * repeat] = '\0';
    factsd_repr *r = factsd_repr_new(body, n * repeat, media, NULL);
    FUZZ_CHECK(r != NULL && factsd_repr_compress(r), "a representation");
    return r;
}

/* The gzip variant's ETag: the identity one with "-gzip" inside the
 * quotes (render.h). */
static void gzip_tag(const char *etag, char *out, size_t size)
{
    size_t n = strlen(etag);
    snprintf(out, size, "%.*s-gzip\"", (int)(n - 1), etag);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    with_gzip = repr_make("{\"title\":\"Shoigu visits Pyongyang\"},", 40, FACTSD_MEDIA_JSON);
    plain = repr_make("{\"ok\":true}", 1, FACTSD_MEDIA_JSON);
    problem = repr_make("{\"status\":412}", 1, FACTSD_MEDIA_PROBLEM);
    FUZZ_CHECK(factsd_repr_has_gzip(with_gzip) && !factsd_repr_has_gzip(plain),
               "the gzip variants");
    FUZZ_CHECK(factsd_repr_etag(problem) == NULL, "a problem has an ETag");
    gzip_tag(factsd_repr_etag(with_gzip), gz_tag, sizeof gz_tag);
    return 0;
}

/* Whether needle occurs in hay at a position where a tag can start. */
static bool names_at_start(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++) {
        if (strncmp(p, needle, n) == 0 &&
            (p == hay || strchr(" \t,\"", p[-1]) != NULL))
            return true;
    }
    return false;
}

/* Whether s is "*" with spaces and tabs around it only. */
static bool star_alone(const char *s)
{
    s += strspn(s, " \t");
    if (*s != '*')
        return false;
    s++;
    s += strspn(s, " \t");
    return *s == '\0';
}

/* The checks every value passes: etag is the record's ETag for If-Match,
 * r the representation for If-None-Match, gz its gzip ETag (NULL when it
 * has none). */
static void check_value(const char *v, const factsd_repr *r, const char *etag, const char *gz)
{
    bool im = factsd_write_if_match(v, etag);
    bool inm = factsd_repr_matches(r, v);
    FUZZ_CHECK(factsd_write_if_match(v, etag) == im && factsd_repr_matches(r, v) == inm,
               "not deterministic: \"%s\"", v);
    FUZZ_CHECK(!factsd_write_if_match(v, NULL), "If-Match matches a record without an ETag");
    FUZZ_CHECK(!factsd_repr_matches(problem, v), "a problem matched \"%s\"", v);
    if (im)
        FUZZ_CHECK(star_alone(v) || names_at_start(v, etag), "If-Match \"%s\" matched %s", v,
                   etag);
    const char *own = factsd_repr_etag(r);
    if (own == NULL)
        return;
    if (im && strcmp(own, etag) == 0)
        FUZZ_CHECK(inm, "If-Match matches \"%s\", If-None-Match does not", v);
    if (inm)
        FUZZ_CHECK(strchr(v, '*') != NULL || strstr(v, own) != NULL ||
                       (gz != NULL && strstr(v, gz) != NULL),
                   "If-None-Match \"%s\" matched %s", v, own);
}

/* A copy of the n bytes at s with a NUL, in a buffer of exactly that size. */
static char *dup_exact(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    FUZZ_CHECK(d != NULL, "out of memory");
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void fuzz_raw(const unsigned char *in, size_t len, const factsd_repr *r,
                     const char *etag, const char *gz)
{
    const unsigned char *nul = memchr(in, '\0', len);
    if (nul != NULL)
        len = (size_t)(nul - in);
    size_t out = 0;
    for (size_t i = 0; i < len; i++)
        out += in[i] == 1 ? strlen(etag) : in[i] == 2 ? strlen(gz_tag) : 1;
    char *v = malloc(out + 1);
    FUZZ_CHECK(v != NULL, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *t = in[i] == 1 ? etag : in[i] == 2 ? gz_tag : NULL;
        if (t != NULL) {
            memcpy(v + o, t, strlen(t));
            o += strlen(t);
        } else {
            v[o++] = (char)in[i];
        }
    }
    v[o] = '\0';
    check_value(v, r, etag, gz);
    free(v);
}

/* One element of a built list. */
struct element {
    char text[64]; /* as written: W/"..." or "*" */
    bool weak;
    bool star;
};

static void fuzz_list(const unsigned char *in, size_t len, const factsd_repr *r,
                      const char *etag, const char *gz)
{
    static const char *const seps[] = {",", ", ", " ,\t", ",,"};
    struct element els[ELEMENTS_MAX];
    size_t n = 0, i = 0;
    bool lead = len > 0 && (in[0] & 0x20);
    const char *sep[ELEMENTS_MAX];
    while (i < len && n < ELEMENTS_MAX) {
        unsigned kind = in[i] & 7;
        sep[n] = seps[(in[i] >> 3) & 3];
        i++;
        struct element *e = &els[n];
        e->weak = false;
        e->star = false;
        switch (kind % 6) {
        case 0:
        case 1:
            e->weak = kind == 1;
            snprintf(e->text, sizeof e->text, "%s%s", e->weak ? "W/" : "", etag);
            break;
        case 2:
        case 3:
            e->weak = kind == 3;
            snprintf(e->text, sizeof e->text, "%s%s", e->weak ? "W/" : "", gz_tag);
            break;
        case 4:
            e->star = true;
            snprintf(e->text, sizeof e->text, "*");
            break;
        default: {
            size_t tl = i < len ? in[i++] % (TAG_MAX + 1) : 0;
            char tag[TAG_MAX + 1];
            size_t t = 0;
            for (; t < tl && i < len; t++, i++) {
                unsigned char c = in[i] % 93; /* etagc: 0x21, 0x23-0x7e */
                tag[t] = (char)(c == 0 ? 0x21 : c + 0x22);
            }
            tag[t] = '\0';
            e->weak = i < len && (in[i++] & 1);
            snprintf(e->text, sizeof e->text, "%s\"%s\"", e->weak ? "W/" : "", tag);
            break;
        }
        }
        n++;
    }
    if (n == 0)
        return;
    size_t total = 2;
    for (size_t k = 0; k < n; k++)
        total += strlen(els[k].text) + strlen(sep[k]);
    char *v = malloc(total + 1);
    FUZZ_CHECK(v != NULL, "out of memory");
    size_t o = 0;
    if (lead) {
        v[o++] = ' ';
        v[o++] = '\t';
    }
    for (size_t k = 0; k < n; k++) {
        size_t tl = strlen(els[k].text);
        memcpy(v + o, els[k].text, tl);
        o += tl;
        if (k + 1 < n) {
            memcpy(v + o, sep[k], strlen(sep[k]));
            o += strlen(sep[k]);
        }
    }
    v[o] = '\0';
    /* RFC 9110 section 13.1.1 and 13.1.2, element by element. */
    bool im = false, inm = false;
    for (size_t k = 0; k < n; k++) {
        const struct element *e = &els[k];
        const char *opaque = e->weak ? e->text + 2 : e->text;
        if (e->star) {
            inm = true;
            if (!im) {
                im = n == 1;
                break; /* "*" stands alone: the list ends here for If-Match */
            }
        } else {
            if (!im && !e->weak && strcmp(opaque, etag) == 0)
                im = true;
            if (strcmp(opaque, etag) == 0 || (gz != NULL && strcmp(opaque, gz) == 0))
                inm = true;
        }
    }
    for (size_t k = 0; k < n && !inm; k++)
        inm = els[k].star;
    if (factsd_repr_etag(r) == NULL)
        inm = false; /* a problem is never a 304 */
    FUZZ_CHECK(factsd_write_if_match(v, etag) == im, "If-Match \"%s\" against %s: want %d", v,
               etag, im);
    FUZZ_CHECK(factsd_repr_matches(r, v) == inm, "If-None-Match \"%s\" against %s: want %d", v,
               etag, inm);
    check_value(v, r, etag, gz);
    free(v);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX)
        return 0;
    const factsd_repr *r;
    const char *gz;
    switch ((data[0] >> 2) & 3) {
    case 0:
    case 1:
        r = with_gzip;
        gz = gz_tag;
        break;
    case 2:
        r = plain;
        gz = NULL;
        break;
    default:
        r = problem;
        gz = NULL;
        break;
    }
    const char *etag = factsd_repr_etag(r);
    FUZZ_CHECK(factsd_write_if_match(NULL, etag), "no If-Match must match");
    FUZZ_CHECK(!factsd_repr_matches(r, NULL), "no If-None-Match must not match");
    /* A problem's checks use the identity ETag of the plain body as the
     * record's. */
    const char *record = etag != NULL ? etag : factsd_repr_etag(plain);
    const char *rgz = etag != NULL ? gz : NULL;
    if ((data[0] & 3) < 2) {
        char *copy = dup_exact((const char *)data + 1, size - 1);
        fuzz_raw((const unsigned char *)copy, size - 1, r, record, rgz);
        free(copy);
    } else {
        fuzz_list(data + 1, size - 1, r, record, rgz);
    }
    return 0;
}
