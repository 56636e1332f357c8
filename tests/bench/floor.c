/*
 * floor.c - the benchmark's reference point: a bare libmicrohttpd server
 * that answers every request with one ready response, the same bytes and
 * header fields factsd sends, set up as factsd sets up its daemon (poll,
 * a pool of worker threads, the same per-connection memory). No routing,
 * no checks, no snapshot: what it reaches is the most any server built on
 * this libmicrohttpd can reach on the machine, so tests/bench/run prints it
 * beside factsd and nginx to show how much of a gap the library leaves.
 *
 *   floor FILE ETAG [THREADS]
 *
 * Prints "http://127.0.0.1:PORT" (a free port) on stdout once it listens;
 * answers 304 to an If-None-Match equal to ETAG; runs until killed.
 */
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    BODY_MAX = 1 << 20,       /* bytes of the file served */
    MEMORY_LIMIT = 16 * 1024, /* as factsd's daemon */
    THREADS_MAX = 64
};

static struct MHD_Response *ok_response;
static struct MHD_Response *not_modified;
static const char *etag;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    static int seen;
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    *upload_data_size = 0;
    /* Answering on the first call would cost keep-alive (see http.c). */
    if (*req_cls == NULL) {
        *req_cls = &seen;
        return MHD_YES;
    }
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    if (inm != NULL && strcmp(inm, etag) == 0)
        return MHD_queue_response(c, MHD_HTTP_NOT_MODIFIED, not_modified);
    return MHD_queue_response(c, MHD_HTTP_OK, ok_response);
}

/* Adds factsd's header fields for a read to r; false when one fails. */
static int headers_add(struct MHD_Response *r, int with_type)
{
    static const char *const fields[][2] = {
        {"X-Revision", "1"},
        {"Cache-Control", "no-cache"},
        {"X-Content-Type-Options", "nosniff"},
        {"Access-Control-Allow-Origin", "*"},
        {"Access-Control-Expose-Headers", "ETag, Link, Location, X-Revision"},
    };
    if (with_type && MHD_add_response_header(r, "Content-Type", "application/json") != MHD_YES)
        return 0;
    if (MHD_add_response_header(r, "ETag", etag) != MHD_YES)
        return 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (MHD_add_response_header(r, fields[i][0], fields[i][1]) != MHD_YES)
            return 0;
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: floor FILE ETAG [THREADS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static char body[BODY_MAX + 1];
    if (argc < 3 || argc > 4)
        return usage();
    etag = argv[2];
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (argc == 4) {
        char *end;
        errno = 0;
        threads = strtol(argv[3], &end, 10);
        if (errno != 0 || end == argv[3] || *end != '\0' || threads < 1 ||
            threads > THREADS_MAX)
            return usage();
    }
    if (threads < 1)
        threads = 1;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        fprintf(stderr, "floor: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    size_t n = fread(body, 1, sizeof body, f);
    int bad = ferror(f) || n > BODY_MAX;
    fclose(f);
    if (bad) {
        fprintf(stderr, "floor: cannot read %s whole (at most %d bytes)\n", argv[1], BODY_MAX);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    ok_response = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_PERSISTENT);
    not_modified = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (ok_response == NULL || not_modified == NULL || !headers_add(ok_response, 1) ||
        !headers_add(not_modified, 0)) {
        fprintf(stderr, "floor: out of memory\n");
        return 1;
    }
    struct MHD_OptionItem pool[] = {
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, NULL, MHD_OPTION_ARRAY, pool, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_LIMIT, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floor: cannot start libmicrohttpd\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "floor: no port\n");
        return 1;
    }
    printf("http://127.0.0.1:%u\n", (unsigned)info->port);
    fflush(stdout);
    for (;;)
        pause();
}
