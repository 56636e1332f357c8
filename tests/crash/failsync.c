/*
 * failsync.c - an LD_PRELOAD shim for tests: fdatasync(2) and fsync(2)
 * succeed (really syncing) for the first FACTSD_FAILSYNC_AFTER calls in all,
 * then fail with EIO without syncing. Without the variable every call
 * passes through. Used to check that a write whose sync failed is never
 * acknowledged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fdatasync(int fd);
int fsync(int fd);

static atomic_long calls;

/* The next definition of name (dlsym gives an object pointer; ISO C has no
 * cast from it to a function pointer, so copy its bytes). */
static int (*next_sync(const char *name))(int)
{
    void *sym = dlsym(RTLD_NEXT, name);
    int (*fn)(int) = NULL;
    if (sym != NULL)
        memcpy(&fn, &sym, sizeof fn);
    return fn;
}

/* Whether this call must fail. */
static int failsync_due(void)
{
    const char *v = getenv("FACTSD_FAILSYNC_AFTER");
    if (v == NULL || *v == '\0')
        return 0;
    char *end = NULL;
    long after = strtol(v, &end, 10);
    if (end == v || *end != '\0' || after < 0)
        return 0;
    return atomic_fetch_add(&calls, 1) >= after;
}

int fdatasync(int fd)
{
    if (failsync_due()) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = next_sync("fdatasync");
    return real != NULL ? real(fd) : (errno = ENOSYS, -1);
}

int fsync(int fd)
{
    if (failsync_due()) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = next_sync("fsync");
    return real != NULL ? real(fd) : (errno = ENOSYS, -1);
}
