/*
 * srcaddr.c - an LD_PRELOAD shim for tests: gives the IPv4 TCP sockets a
 * program connects to a loopback address source addresses of their own,
 * turn by turn from HOSTILE_SRC_FIRST (a last octet, 127.0.0.FIRST) over
 * HOSTILE_SRC_COUNT addresses, so that one client program (slowhttptest,
 * which cannot choose its source) looks like that many clients to the
 * server's per-address limit. A socket already bound, a destination off
 * loopback, or no HOSTILE_SRC_COUNT: connect passes through unchanged. A
 * bind that fails leaves the socket as it was, and connect goes ahead.
 */
/* Not _GNU_SOURCE: with it glibc declares connect with a transparent
 * union, which this definition could not match in ISO C. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len);

static atomic_ulong turn;

/* An integer environment variable from lo to hi, or -1. */
static long env_int(const char *name, long lo, long hi)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return -1;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < lo || n > hi)
        return -1;
    return n;
}

/* Binds fd to the next source address when it is an unbound IPv4 socket
 * about to connect to 127.0.0.0/8. */
static void source_pick(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (addr == NULL || len < (socklen_t)sizeof(struct sockaddr_in) ||
        addr->sa_family != AF_INET)
        return;
    struct sockaddr_in dst;
    memcpy(&dst, addr, sizeof dst);
    if ((ntohl(dst.sin_addr.s_addr) >> 24) != 127)
        return;
    long first = env_int("HOSTILE_SRC_FIRST", 1, 254);
    long count = env_int("HOSTILE_SRC_COUNT", 1, 254);
    if (first < 0 || count < 0 || first + count > 255)
        return;
    struct sockaddr_in own;
    socklen_t olen = sizeof own;
    if (getsockname(fd, (struct sockaddr *)&own, &olen) != 0 || own.sin_port != 0 ||
        own.sin_addr.s_addr != htonl(INADDR_ANY))
        return;
    unsigned long k = atomic_fetch_add(&turn, 1) % (unsigned long)count;
    memset(&own, 0, sizeof own);
    own.sin_family = AF_INET;
    own.sin_addr.s_addr = htonl((127u << 24) | (unsigned)(first + (long)k));
    int one = 1;
    int saved = errno;
    /* The port is picked at connect, per destination: many sockets can
     * share a source address without running out of ports. */
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    (void)bind(fd, (const struct sockaddr *)&own, sizeof own);
    errno = saved;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    void *sym = dlsym(RTLD_NEXT, "connect");
    int (*real)(int, const struct sockaddr *, socklen_t) = NULL;
    if (sym == NULL) {
        errno = ENOSYS;
        return -1;
    }
    /* dlsym gives an object pointer; ISO C has no cast from it to a
     * function pointer, so copy its bytes. */
    memcpy(&real, &sym, sizeof real);
    source_pick(fd, addr, len);
    return real(fd, addr, len);
}
