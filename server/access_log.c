/*
 * access_log.c - the access log line (see access_log.h).
 */
#include "access_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void factsd_access_log_write(const struct sockaddr *peer, const char *method,
                             const char *target, size_t len, bool truncated, unsigned status,
                             const struct timespec *t0)
{
    char addr[INET6_ADDRSTRLEN] = "-";
    if (peer != NULL) {
        if (peer->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)peer)->sin_addr,
                      addr, sizeof addr);
        else if (peer->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr,
                      addr, sizeof addr);
    }
    char t[256];
    size_t o = 0;
    for (size_t i = 0; target != NULL && i < len && o + 5 < sizeof t; i++) {
        unsigned char ch = (unsigned char)target[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            o += (size_t)snprintf(t + o, sizeof t - o, "\\x%02x", ch);
        else
            t[o++] = (char)ch;
    }
    if (truncated && o + 4 < sizeof t) {
        memcpy(t + o, "...", 3);
        o += 3;
    }
    t[o] = '\0';
    char m[16];
    size_t mi = 0;
    for (; method[mi] != '\0' && mi + 1 < sizeof m; mi++)
        m[mi] = (method[mi] > 0x20 && method[mi] < 0x7f) ? method[mi] : '?';
    m[mi] = '\0';
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
                (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
    fprintf(stdout, "%s \"%s %s\" %u %.3fms\n", addr, m, t, status, ms);
    fflush(stdout);
}
