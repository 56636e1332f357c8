/*
 * negotiate.h - content negotiation: the Accept and Accept-Encoding request
 * headers (RFC 9110 §12.5), parsed with their q-values. Pure functions over
 * strings: no allocation, no state.
 */
#ifndef FACTSD_NEGOTIATE_H
#define FACTSD_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

enum {
    FACTSD_NEGOTIATE_ELEMENTS_MAX = 64 /* list elements read from one header */
};

/* Which of the n media types in offers ("type/subtype", lower case, in the
 * server's order of preference) the Accept value accept (may be NULL: no
 * header, the first offer) prefers. Each offer takes the q-value of the most
 * specific range that matches it (type/subtype, then type/any, then any/any);
 * the highest q above 0 wins, ties going to the earlier offer. Elements that
 * do not parse are skipped; elements past FACTSD_NEGOTIATE_ELEMENTS_MAX are
 * ignored. Returns the offer's index, or -1 when the header accepts none of
 * them (answer 406). Never fails otherwise. */
int factsd_negotiate_media(const char *accept, const char *const *offers, size_t n);

/* Whether a gzip-encoded body may be sent for the Accept-Encoding value ae
 * (may be NULL: no header, identity only): gzip (or x-gzip, or "*" when
 * gzip is not named) has a q above 0 and not below identity's. Never
 * fails. */
bool factsd_negotiate_gzip(const char *ae);

#endif /* FACTSD_NEGOTIATE_H */
