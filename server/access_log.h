/*
 * access_log.h - the access log: one line on stdout per answered request
 * (--access-log). Knows nothing of libmicrohttpd: the caller hands over the
 * peer's address and the request's raw method and target.
 */
#ifndef FACTSD_ACCESS_LOG_H
#define FACTSD_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

/* Writes one line to stdout and flushes it:
 *
 *     PEER "METHOD TARGET" STATUS ELAPSEDms
 *
 * peer (may be NULL) is the client's address, "-" when NULL or neither
 * IPv4 nor IPv6. method (not NULL) is written with every byte outside 0x21..0x7e as
 * '?', cut to 15 bytes. The len bytes at target (target may be NULL: none)
 * are written with control bytes, bytes >= 0x7f, '"' and '\' as \xHH, cut
 * to at most 255 bytes of log; truncated (the target was cut before it got
 * here) appends "...". ELAPSED is the time since t0 (CLOCK_MONOTONIC) in
 * milliseconds with three decimals. Every argument is borrowed for the
 * call only. Never fails (a line stdout refuses is lost). */
void factsd_access_log_write(const struct sockaddr *peer, const char *method,
                             const char *target, size_t len, bool truncated, unsigned status,
                             const struct timespec *t0);

#endif /* FACTSD_ACCESS_LOG_H */
