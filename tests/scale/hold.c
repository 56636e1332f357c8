/*
 * hold.c - holds N connections on factsd's change feed, then makes one write
 * and measures how long the change takes to reach every one of them.
 *
 *   hold --port PORT [-n N] [--mode longpoll|stream] [--since REV]
 *        [--hold SECONDS | --hold-stdin] [options]    (--help lists them)
 *
 * One thread, one epoll set. The connections are opened paced (at most
 * --rate a second and --pending connecting at once, so that the server's
 * listen backlog is not overrun), each from one of --sources loopback
 * addresses 127.0.0.2, 127.0.0.3, ... so that tens of thousands of them
 * never run out of ephemeral ports. Each sends
 *   longpoll: GET /v1/changes?since=REV&wait=60
 *   stream:   GET /v1/stream (Accept: text/event-stream)
 * and counts as held when
 *   longpoll: its request is written and nothing came back for --settle ms
 *   stream:   the first chunk's ": revision N" comment arrived.
 * Then it prints "held N in S s", holds them (--hold seconds, or until a
 * line or end of file on stdin with --hold-stdin; SIGUSR1 ends either),
 * sends one POST /v1/events over a connection of its own (the token is read
 * from $FACTSD_TOKEN) and takes t0 just before the request goes out. A held
 * connection has the change when
 *   longpoll: its complete 200 response, naming the new event, arrived
 *   stream:   its first "id:" event, naming the new event, arrived.
 * It prints the delivery latency (p50, p99, max in ms from t0), the failures
 * by kind and phase, and a last "result key=value ..." line for scripts.
 *
 * Exit status: 0 when all N were held and all N had the change within
 * --deadline seconds of the write (and the write was answered 201); 1
 * otherwise; 2 on a usage or setup error.
 */
#define _GNU_SOURCE /* memmem, IP_BIND_ADDRESS_NO_PORT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    HEAD_MAX = 16 * 1024,      /* bytes of a response's status line and headers */
    BUF_MAX = 1024 * 1024,     /* bytes kept per connection before giving up */
    EVENTS_MAX = 512,          /* epoll events taken at once */
    REQUEST_MAX = 2048,
    SLUG_LEN = 64,
    SOURCES_MAX = 250,         /* 127.0.0.2 .. 127.0.0.251 */
    ERRNO_SLOTS = 160,
    STATUS_SLOTS = 600
};

/* epoll data of what is not a held connection. */
static const uint64_t ID_WRITE = UINT64_MAX - 1;
static const uint64_t ID_STDIN = UINT64_MAX - 2;
static const uint64_t ID_SIGNAL = UINT64_MAX - 3;

enum mode { MODE_LONGPOLL, MODE_STREAM };

enum state {
    ST_UNOPENED,
    ST_CONNECTING,
    ST_SENDING,
    ST_WAITING, /* request written, not yet known to be held */
    ST_HELD,
    ST_DONE,    /* the change arrived */
    ST_FAILED,
    ST_COUNT
};

enum phase { PH_OPEN, PH_HOLD, PH_WRITE, PH_COUNT };

static const char *const phase_names[PH_COUNT] = {
    "while opening", "while held, before the write", "after the write"};

enum fail_kind {
    FAIL_CONNECT,    /* socket, bind or connect failed */
    FAIL_IO,         /* send or recv failed */
    FAIL_CLOSED,     /* the server closed the connection */
    FAIL_ANSWERED,   /* a response (or an end of stream) before the write */
    FAIL_EARLY,      /* stream: a change event before the write */
    FAIL_NOT_SSE,    /* stream: a 200 that is not text/event-stream */
    FAIL_RESET,      /* stream: "event: reset" */
    FAIL_WRONG,      /* after the write: a non-200, or no trace of the write */
    FAIL_PROTOCOL,   /* not HTTP/1.1 or SSE as expected */
    FAIL_TOO_LARGE,  /* more than BUF_MAX bytes pending */
    FAIL_MEMORY,     /* an allocation failed */
    FAIL_NOT_HELD,   /* not held within --hold-timeout */
    FAIL_LATE,       /* held, but the change did not come within --deadline */
    FAIL_NO_CHANGE,  /* held, but the write failed: no change to wait for */
    FAIL_COUNT
};

static const char *const fail_names[FAIL_COUNT] = {
    "connect failed",
    "send/recv failed",
    "closed by the server",
    "answered before the write",
    "a change event before the write",
    "200 but not text/event-stream",
    "event: reset (position lost)",
    "answer without the change",
    "protocol error",
    "response too large",
    "out of memory",
    "not held in time",
    "change not delivered in time",
    "no change to deliver (the write failed)",
};

enum body_mode { BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

struct buf {
    char *p;
    size_t len, cap;
};

struct hconn {
    int fd;
    enum state state;
    size_t sent;           /* request bytes written */
    long long t_open, t_sent, t_held, t_done; /* ns, CLOCK_MONOTONIC */
    struct buf raw;        /* received, not yet decoded */
    struct buf body;       /* decoded body, not yet looked at */
    bool head_done;
    bool sse;              /* Content-Type: text/event-stream */
    bool complete;         /* the whole body is in */
    int status;
    enum body_mode body_mode;
    enum chunk_state chunk;
    unsigned long long left; /* BODY_LENGTH: body bytes to come; chunk: bytes */
};

struct opts {
    char host[INET_ADDRSTRLEN];
    struct in_addr addr;
    unsigned long port;
    unsigned long n;
    enum mode mode;
    bool have_since;
    unsigned long long since;
    unsigned long wait;        /* long-poll wait= (seconds) */
    unsigned long hold;        /* seconds to hold before the write */
    bool hold_stdin;
    unsigned long rate;        /* connections opened a second */
    unsigned long pending;     /* connects in progress at most */
    unsigned long settle_ms;
    unsigned long hold_timeout; /* seconds to get all held */
    unsigned long deadline;    /* seconds for the change to reach all */
    unsigned long sources;     /* source addresses; 0: the kernel's choice */
    const char *token_env;
};

struct run {
    struct opts o;
    int ep;
    struct hconn *conns;
    struct hconn w;            /* the write */
    char request[REQUEST_MAX];
    size_t request_len;
    char wrequest[REQUEST_MAX];
    size_t wrequest_len;
    char slug[SLUG_LEN];
    enum phase phase;
    bool write_sent;
    long long t0;              /* just before the write went out */
    long long t_write_done;
    unsigned long count[ST_COUNT];
    unsigned long fails[PH_COUNT][FAIL_COUNT];
    unsigned long errnos[ERRNO_SLOTS];
    unsigned long statuses[STATUS_SLOTS];
    long long slowest_connect; /* ns */
    bool go;                   /* the hold is over */
    bool stdin_open;
    int sigfd;
};

/* ------------------------------------------------------------- helpers */

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double ns_ms(long long ns)
{
    return (double)ns / 1e6;
}

/* Parses a whole decimal number from min to max; false on anything else. */
static bool parse_ulong(const char *s, unsigned long min, unsigned long max,
                        unsigned long *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (unsigned long)v;
    return true;
}

static bool parse_ull(const char *s, size_t len, int base, unsigned long long *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    bool digit = (tmp[0] >= '0' && tmp[0] <= '9') ||
                 (base == 16 && ((tmp[0] >= 'a' && tmp[0] <= 'f') ||
                                 (tmp[0] >= 'A' && tmp[0] <= 'F')));
    if (!digit)
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(tmp, &end, base);
    if (errno != 0 || end == tmp || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool buf_append(struct buf *b, const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (n > BUF_MAX || b->len > BUF_MAX - n)
        return false;
    if (b->len + n > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (cap < b->len + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL)
            return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return true;
}

static void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---------------------------------------------------------- connections */

static void set_state(struct run *r, struct hconn *c, enum state st)
{
    if (c != &r->w) {
        r->count[c->state]--;
        r->count[st]++;
    }
    c->state = st;
}

static void conn_close(struct hconn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    buf_free(&c->raw);
    buf_free(&c->body);
}

/* Records the failure of c (kind; err an errno or 0; status an HTTP status
 * or 0) and closes it. */
static void conn_fail(struct run *r, struct hconn *c, enum fail_kind kind, int err, int status)
{
    if (c == &r->w) {
        conn_close(c);
        c->state = ST_FAILED;
        fprintf(stderr, "hold: the write failed: %s%s%s\n", fail_names[kind],
                err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
        return;
    }
    r->fails[r->phase][kind]++;
    if (err != 0)
        r->errnos[err > 0 && err < ERRNO_SLOTS ? err : 0]++;
    if (status > 0)
        r->statuses[status < STATUS_SLOTS ? status : 0]++;
    conn_close(c);
    set_state(r, c, ST_FAILED);
}

static void conn_sent(struct run *r, struct hconn *c)
{
    c->t_sent = now_ns();
    set_state(r, c, ST_WAITING);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
    ev.data.u64 = (uint64_t)(c - r->conns);
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        conn_fail(r, c, FAIL_IO, errno, 0);
}

/* Writes what is left of the request. */
static void conn_send(struct run *r, struct hconn *c)
{
    const char *req = c == &r->w ? r->wrequest : r->request;
    size_t len = c == &r->w ? r->wrequest_len : r->request_len;
    while (c->sent < len) {
        ssize_t k = send(c->fd, req + c->sent, len - c->sent, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            conn_fail(r, c, FAIL_IO, errno, 0);
            return;
        }
        c->sent += (size_t)k;
    }
    if (c == &r->w) {
        c->state = ST_WAITING;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
        ev.data.u64 = ID_WRITE;
        if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
            conn_fail(r, c, FAIL_IO, errno, 0);
        return;
    }
    conn_sent(r, c);
}

/* Opens connection i: non-blocking socket, bound to its source address,
 * connect started. */
static void conn_open(struct run *r, size_t i)
{
    struct hconn *c = &r->conns[i];
    c->t_open = now_ns();
    set_state(r, c, ST_CONNECTING);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(r, c, FAIL_CONNECT, errno, 0);
        return;
    }
    if (r->o.sources > 0) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        /* The port is then chosen at connect time, per destination: each
         * source address has the whole ephemeral range for this server. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % r->o.sources));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0) {
            conn_fail(r, c, FAIL_CONNECT, errno, 0);
            return;
        }
    }
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)r->o.port);
    dst.sin_addr = r->o.addr;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP};
    ev.data.u64 = (uint64_t)i;
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(r, c, FAIL_CONNECT, errno, 0);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
        conn_fail(r, c, FAIL_CONNECT, errno, 0);
        return;
    }
    /* Connected or not, the first EPOLLOUT says so. */
}

/* ----------------------------------------------------------- responses */

/* Finds the value of header name in the len-byte head (status line and
 * header lines, CRLF-separated); sets *val and *vlen, or returns false. */
static bool head_value(const char *head, size_t len, const char *name, const char **val,
                       size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = head + len;
    const char *p = memchr(head, '\n', len);
    while (p != NULL && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        size_t llen = (size_t)(eol - line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *val = v;
            *vlen = (size_t)(ve - v);
            return true;
        }
        p = eol < end ? eol : NULL;
    }
    return false;
}

static bool contains_nocase(const char *s, size_t len, const char *word)
{
    size_t wlen = strlen(word);
    for (size_t i = 0; i + wlen <= len; i++)
        if (strncasecmp(s + i, word, wlen) == 0)
            return true;
    return false;
}

/* Parses the status line and headers once they are all in c->raw. Returns
 * false when c failed. */
static bool parse_head(struct run *r, struct hconn *c)
{
    const char *p = c->raw.p;
    const char *end = c->raw.len >= 4 ? memmem(p, c->raw.len, "\r\n\r\n", 4) : NULL;
    if (end == NULL) {
        if (c->raw.len > HEAD_MAX) {
            conn_fail(r, c, FAIL_PROTOCOL, 0, 0);
            return false;
        }
        return true;
    }
    size_t hlen = (size_t)(end - p) + 2; /* keep the last header's CRLF */
    unsigned long long status = 0;
    if (hlen < 14 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
        !parse_ull(p + 9, 3, 10, &status) || status < 100 || status > 599) {
        conn_fail(r, c, FAIL_PROTOCOL, 0, 0);
        return false;
    }
    c->status = (int)status;
    const char *v;
    size_t vlen;
    c->sse = head_value(p, hlen, "Content-Type", &v, &vlen) &&
             vlen >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    if (head_value(p, hlen, "Transfer-Encoding", &v, &vlen) &&
        contains_nocase(v, vlen, "chunked")) {
        c->body_mode = BODY_CHUNKED;
        c->chunk = CH_SIZE;
    } else if (head_value(p, hlen, "Content-Length", &v, &vlen)) {
        if (!parse_ull(v, vlen, 10, &c->left)) {
            conn_fail(r, c, FAIL_PROTOCOL, 0, 0);
            return false;
        }
        c->body_mode = BODY_LENGTH;
    } else {
        c->body_mode = BODY_CLOSE;
    }
    if (c->status == 204 || c->status == 304 || c->status < 200) {
        c->body_mode = BODY_LENGTH;
        c->left = 0;
    }
    c->head_done = true;
    buf_consume(&c->raw, hlen + 2);
    return true;
}

/* Moves what of the body's next c->left bytes has arrived from c->raw to
 * c->body; false (the connection failed) when the body grows too large. */
static bool body_take(struct run *r, struct hconn *c)
{
    size_t take = c->raw.len < c->left ? c->raw.len : (size_t)c->left;
    if (!buf_append(&c->body, c->raw.p, take)) {
        conn_fail(r, c, FAIL_TOO_LARGE, 0, c->status);
        return false;
    }
    buf_consume(&c->raw, take);
    c->left -= take;
    return true;
}

/* Moves the body bytes of c->raw into c->body, undoing the chunked
 * encoding; sets c->complete at the body's end. Returns false when c
 * failed. */
static bool decode_body(struct run *r, struct hconn *c)
{
    switch (c->body_mode) {
    case BODY_CLOSE:
        if (!buf_append(&c->body, c->raw.p, c->raw.len)) {
            conn_fail(r, c, FAIL_TOO_LARGE, 0, c->status);
            return false;
        }
        c->raw.len = 0;
        return true;
    case BODY_LENGTH:
        if (!body_take(r, c))
            return false;
        if (c->left == 0)
            c->complete = true;
        return true;
    case BODY_CHUNKED:
        break;
    }
    for (;;) {
        switch (c->chunk) {
        case CH_SIZE:
        case CH_TRAILER: {
            const char *eol = c->raw.len > 0 ? memchr(c->raw.p, '\n', c->raw.len) : NULL;
            if (eol == NULL) {
                if (c->raw.len > 1024) {
                    conn_fail(r, c, FAIL_PROTOCOL, 0, c->status);
                    return false;
                }
                return true;
            }
            size_t llen = (size_t)(eol - c->raw.p);
            size_t vlen = llen;
            if (vlen > 0 && c->raw.p[vlen - 1] == '\r')
                vlen--;
            if (c->chunk == CH_TRAILER) {
                buf_consume(&c->raw, llen + 1);
                if (vlen == 0) {
                    c->chunk = CH_DONE;
                    c->complete = true;
                    return true;
                }
                continue;
            }
            const char *semi = memchr(c->raw.p, ';', vlen);
            size_t hexlen = semi != NULL ? (size_t)(semi - c->raw.p) : vlen;
            while (hexlen > 0 && c->raw.p[hexlen - 1] == ' ')
                hexlen--;
            unsigned long long size;
            if (!parse_ull(c->raw.p, hexlen, 16, &size) || size > BUF_MAX) {
                conn_fail(r, c, FAIL_PROTOCOL, 0, c->status);
                return false;
            }
            buf_consume(&c->raw, llen + 1);
            c->left = size;
            c->chunk = size == 0 ? CH_TRAILER : CH_DATA;
            break;
        }
        case CH_DATA:
            if (c->raw.len == 0 || c->left == 0)
                return true;
            if (!body_take(r, c))
                return false;
            if (c->left == 0)
                c->chunk = CH_DATA_END;
            break;
        case CH_DATA_END:
            if (c->raw.len < 2)
                return true;
            if (c->raw.p[0] != '\r' || c->raw.p[1] != '\n') {
                conn_fail(r, c, FAIL_PROTOCOL, 0, c->status);
                return false;
            }
            buf_consume(&c->raw, 2);
            c->chunk = CH_SIZE;
            break;
        case CH_DONE:
            return true;
        }
    }
}

static void conn_delivered(struct run *r, struct hconn *c)
{
    c->t_done = now_ns();
    conn_close(c);
    set_state(r, c, ST_DONE);
}

/* Looks at the complete events in c->body (server-sent events, blocks
 * ending with an empty line). */
static void sse_scan(struct run *r, struct hconn *c)
{
    for (;;) {
        char *p = c->body.p;
        char *end = c->body.len >= 2 ? memmem(p, c->body.len, "\n\n", 2) : NULL;
        if (end == NULL)
            return;
        size_t blen = (size_t)(end - p) + 1;
        bool revision = false, has_id = false, has_data = false, reset = false,
             other_event = false, ours = false;
        for (size_t pos = 0; pos < blen;) {
            char *line = p + pos;
            char *eol = memchr(line, '\n', blen - pos);
            size_t llen = (size_t)(eol - line);
            pos += llen + 1;
            if (llen > 0 && line[llen - 1] == '\r')
                llen--;
            if (llen >= 10 && memcmp(line, ": revision", 10) == 0)
                revision = true;
            else if (llen >= 3 && memcmp(line, "id:", 3) == 0)
                has_id = true;
            else if (llen >= 5 && memcmp(line, "data:", 5) == 0) {
                has_data = true;
                if (memmem(line, llen, r->slug, strlen(r->slug)) != NULL)
                    ours = true;
            } else if (llen >= 6 && memcmp(line, "event:", 6) == 0) {
                const char *v = line + 6;
                size_t vlen = llen - 6;
                if (vlen > 0 && *v == ' ') {
                    v++;
                    vlen--;
                }
                if (vlen == 5 && memcmp(v, "reset", 5) == 0)
                    reset = true;
                else if (!(vlen == 7 && memcmp(v, "message", 7) == 0))
                    other_event = true;
            }
        }
        buf_consume(&c->body, blen + 1);
        if (revision && c->state == ST_WAITING) {
            c->t_held = now_ns();
            set_state(r, c, ST_HELD);
        }
        if (reset) {
            conn_fail(r, c, FAIL_RESET, 0, 0);
            return;
        }
        if (has_id && has_data && !other_event) {
            if (!r->write_sent)
                conn_fail(r, c, FAIL_EARLY, 0, 0);
            else if (ours)
                conn_delivered(r, c);
            else
                conn_fail(r, c, FAIL_WRONG, 0, c->status);
            return;
        }
    }
}

/* A complete response on a held (or to-be-held) connection. */
static void conn_answered(struct run *r, struct hconn *c)
{
    if (r->o.mode == MODE_STREAM && c->status == 200 && c->sse) {
        /* the stream ended */
        conn_fail(r, c, r->write_sent ? FAIL_CLOSED : FAIL_ANSWERED, 0, 200);
        return;
    }
    if (!r->write_sent || c->state == ST_WAITING) {
        conn_fail(r, c, FAIL_ANSWERED, 0, c->status);
        return;
    }
    bool ours = c->body.len > 0 && memmem(c->body.p, c->body.len, r->slug, strlen(r->slug));
    if (c->status == 200 && ours)
        conn_delivered(r, c);
    else
        conn_fail(r, c, FAIL_WRONG, 0, c->status);
}

/* The write's response. */
static void write_answered(struct run *r)
{
    struct hconn *c = &r->w;
    r->t_write_done = now_ns();
    if (c->status != 201) {
        fprintf(stderr, "hold: the write was answered %d: %.*s\n", c->status,
                (int)(c->body.len < 600 ? c->body.len : 600), c->body.p != NULL ? c->body.p : "");
    }
    conn_close(c);
    c->state = ST_DONE;
}

/* Handles what arrived on c. */
static void conn_process(struct run *r, struct hconn *c)
{
    if (!c->head_done) {
        if (!parse_head(r, c) || !c->head_done)
            return;
        if (c != &r->w && r->o.mode == MODE_STREAM && (c->status != 200 || !c->sse)) {
            conn_fail(r, c, c->status != 200 ? (r->write_sent && c->state == ST_HELD
                                                    ? FAIL_WRONG
                                                    : FAIL_ANSWERED)
                                             : FAIL_NOT_SSE,
                      0, c->status);
            return;
        }
    }
    if (!decode_body(r, c))
        return;
    if (c == &r->w) {
        if (c->complete)
            write_answered(r);
        return;
    }
    if (r->o.mode == MODE_STREAM) {
        sse_scan(r, c);
        if (c->state != ST_FAILED && c->state != ST_DONE && c->complete)
            conn_answered(r, c);
        return;
    }
    if (c->complete)
        conn_answered(r, c);
}

/* Reads what c has; handles it; an end of stream closes c. */
static void conn_read(struct run *r, struct hconn *c)
{
    char tmp[16384];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t k = recv(c->fd, tmp, sizeof tmp, 0);
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            conn_fail(r, c, FAIL_IO, errno, c->status);
            return;
        }
        if (k == 0) {
            if (c->head_done && c->body_mode == BODY_CLOSE) {
                c->complete = true;
                conn_process(r, c);
                if (c->state == ST_FAILED || c->state == ST_DONE)
                    return;
                if (c == &r->w)
                    return;
            }
            conn_fail(r, c, c->head_done && !r->write_sent ? FAIL_ANSWERED : FAIL_CLOSED, 0,
                      c->status);
            return;
        }
        if (!buf_append(&c->raw, tmp, (size_t)k)) {
            conn_fail(r, c, c->raw.len > BUF_MAX / 2 ? FAIL_TOO_LARGE : FAIL_MEMORY, 0,
                      c->status);
            return;
        }
        conn_process(r, c);
        if (c->fd < 0)
            return;
    }
}

/* Handles the epoll events of a held connection or of the write. */
static void conn_event(struct run *r, struct hconn *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            conn_fail(r, c, FAIL_CONNECT, err, 0);
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        long long took = now_ns() - c->t_open;
        if (took > r->slowest_connect)
            r->slowest_connect = took;
        set_state(r, c, ST_SENDING);
    }
    if (c->state == ST_SENDING && (events & EPOLLOUT)) {
        conn_send(r, c);
        if (c->fd < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(r, c);
}

/* Waits up to timeout_ms for events and handles them. */
static void loop_once(struct run *r, int timeout_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    int n = epoll_wait(r->ep, evs, EVENTS_MAX, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return;
        fprintf(stderr, "hold: epoll_wait: %s\n", strerror(errno));
        exit(2);
    }
    for (int i = 0; i < n; i++) {
        uint64_t id = evs[i].data.u64;
        if (id == ID_SIGNAL) {
            struct signalfd_siginfo si;
            if (read(r->sigfd, &si, sizeof si) > 0)
                r->go = true;
        } else if (id == ID_STDIN) {
            char line[256];
            ssize_t k = read(STDIN_FILENO, line, sizeof line);
            if (k <= 0 || memchr(line, '\n', (size_t)k) != NULL)
                r->go = true;
            if (k <= 0 || r->go) {
                epoll_ctl(r->ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
                r->stdin_open = false;
            }
        } else if (id == ID_WRITE) {
            conn_event(r, &r->w, evs[i].events);
        } else if (id < r->o.n) {
            conn_event(r, &r->conns[id], evs[i].events);
        }
    }
}

/* ----------------------------------------------------------------- setup */

/* GET /v1 over a blocking connection of its own; the X-Revision header. */
static bool fetch_revision(const struct opts *o, unsigned long long *rev)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)o->port);
    dst.sin_addr = o->addr;
    char req[256];
    int len = snprintf(req, sizeof req,
                       "GET /v1 HTTP/1.1\r\nHost: %s:%lu\r\nConnection: close\r\n\r\n",
                       o->host, o->port);
    bool ok = false;
    if (len > 0 && (size_t)len < sizeof req &&
        connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0 &&
        send(fd, req, (size_t)len, MSG_NOSIGNAL) == (ssize_t)len) {
        char resp[HEAD_MAX];
        size_t have = 0;
        const char *end = NULL;
        while (have < sizeof resp && end == NULL) {
            ssize_t k = recv(fd, resp + have, sizeof resp - have, 0);
            if (k <= 0)
                break;
            have += (size_t)k;
            end = memmem(resp, have, "\r\n\r\n", 4);
        }
        const char *v;
        size_t vlen;
        ok = end != NULL && have > 12 && memcmp(resp + 9, "200", 3) == 0 &&
             head_value(resp, (size_t)(end - resp) + 2, "X-Revision", &v, &vlen) &&
             parse_ull(v, vlen, 10, rev);
    }
    close(fd);
    return ok;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hold --port PORT [options]\n"
            "  --host ADDR          the server's IPv4 address (default 127.0.0.1)\n"
            "  --port PORT          the server's port (required)\n"
            "  -n N                 connections to hold (default 100)\n"
            "  --mode MODE          longpoll (GET /v1/changes?since=REV&wait=W) or\n"
            "                       stream (GET /v1/stream) (default longpoll)\n"
            "  --since REV          longpoll: the revision to wait after (default:\n"
            "                       the X-Revision of GET /v1)\n"
            "  --wait SECONDS       longpoll: the wait= asked (default 60)\n"
            "  --hold SECONDS       hold this long after all are held (default 0)\n"
            "  --hold-stdin         hold until a line (or end of file) on stdin\n"
            "                       (SIGUSR1 ends either hold)\n"
            "  --rate N             connections opened a second at most (default 4000)\n"
            "  --pending N          connects in progress at most (default 256)\n"
            "  --settle MS          longpoll: quiet time after a request is written\n"
            "                       before it counts as held (default 1000)\n"
            "  --hold-timeout SECONDS  all must be held within this (default 60)\n"
            "  --deadline SECONDS   the change must reach all within this (default 10)\n"
            "  --sources K          bind to 127.0.0.2 .. 127.0.0.(K+1) in turn; 0: no\n"
            "                       bind (default 16, at most %d)\n"
            "  --token-env NAME     the variable holding the write token\n"
            "                       (default FACTSD_TOKEN)\n"
            "Prints \"held N in S s\" once all are held, then the delivery figures and\n"
            "a last line \"result key=value ...\". Exit status 0: all N held and all N\n"
            "had the change in time; 1: not so; 2: usage or setup error.\n",
            SOURCES_MAX);
}

/* The options that take a whole number, with their ranges. */
struct num_opt {
    const char *flag;
    unsigned long min, max;
    size_t off; /* of the unsigned long in struct opts */
};

static const struct num_opt num_opts[] = {
    {"--port", 1, 65535, offsetof(struct opts, port)},
    {"-n", 1, 1000000, offsetof(struct opts, n)},
    {"--wait", 1, 60, offsetof(struct opts, wait)},
    {"--hold", 0, 86400, offsetof(struct opts, hold)},
    {"--rate", 1, 1000000, offsetof(struct opts, rate)},
    {"--pending", 1, 1000000, offsetof(struct opts, pending)},
    {"--settle", 0, 600000, offsetof(struct opts, settle_ms)},
    {"--hold-timeout", 1, 86400, offsetof(struct opts, hold_timeout)},
    {"--deadline", 1, 3600, offsetof(struct opts, deadline)},
    {"--sources", 0, SOURCES_MAX, offsetof(struct opts, sources)},
};

static const struct num_opt *num_opt_find(const char *flag)
{
    for (size_t i = 0; i < sizeof num_opts / sizeof num_opts[0]; i++)
        if (strcmp(flag, num_opts[i].flag) == 0)
            return &num_opts[i];
    return NULL;
}

/* Parses argv into o; exits 2 on a mistake. */
static void parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->host, sizeof o->host, "%s", "127.0.0.1");
    o->n = 100;
    o->mode = MODE_LONGPOLL;
    o->wait = 60;
    o->rate = 4000;
    o->pending = 256;
    o->settle_ms = 1000;
    o->hold_timeout = 60;
    o->deadline = 10;
    o->sources = 16;
    o->token_env = "FACTSD_TOKEN";
    o->port = 0; /* required: --port sets it to 1..65535 */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const struct num_opt *num;
        bool ok = true, takes = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--hold-stdin") == 0) {
            o->hold_stdin = true;
            takes = false;
        } else if (v == NULL) {
            fprintf(stderr, "hold: %s needs a value (or is not an option)\n", a);
            exit(2);
        } else if (strcmp(a, "--host") == 0) {
            ok = strlen(v) < sizeof o->host && inet_pton(AF_INET, v, &o->addr) == 1;
            if (ok)
                snprintf(o->host, sizeof o->host, "%s", v);
        } else if ((num = num_opt_find(a)) != NULL) {
            ok = parse_ulong(v, num->min, num->max, (unsigned long *)((char *)o + num->off));
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "longpoll") == 0)
                o->mode = MODE_LONGPOLL;
            else if (strcmp(v, "stream") == 0)
                o->mode = MODE_STREAM;
            else
                ok = false;
        } else if (strcmp(a, "--since") == 0) {
            ok = v[0] >= '0' && v[0] <= '9' && parse_ull(v, strlen(v), 10, &o->since);
            o->have_since = ok;
        } else if (strcmp(a, "--token-env") == 0) {
            o->token_env = v;
        } else {
            fprintf(stderr, "hold: unknown option %s (see --help)\n", a);
            exit(2);
        }
        if (!ok) {
            fprintf(stderr, "hold: %s: '%s' is not a valid value (see --help)\n", a, v);
            exit(2);
        }
        if (takes)
            i++;
    }
    if (o->port == 0) {
        fprintf(stderr, "hold: --port is required (see --help)\n");
        exit(2);
    }
    if (inet_pton(AF_INET, o->host, &o->addr) != 1) {
        fprintf(stderr, "hold: bad --host\n");
        exit(2);
    }
}

/* Raises the open-file limit to what n connections need. */
static void raise_nofile(unsigned long n)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need) {
        fprintf(stderr,
                "hold: %lu connections need %llu open files; the limit is %llu "
                "(raise the hard limit: ulimit -Hn)\n",
                n, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
        exit(2);
    }
}

/* Builds the held connections' request and the write. */
static void build_requests(struct run *r, const char *token)
{
    const struct opts *o = &r->o;
    int len;
    if (o->mode == MODE_LONGPOLL)
        len = snprintf(r->request, sizeof r->request,
                       "GET /v1/changes?since=%llu&wait=%lu HTTP/1.1\r\n"
                       "Host: %s:%lu\r\nAccept: application/json\r\n\r\n",
                       o->since, o->wait, o->host, o->port);
    else
        len = snprintf(r->request, sizeof r->request,
                       "GET /v1/stream HTTP/1.1\r\nHost: %s:%lu\r\n"
                       "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                       o->host, o->port);
    if (len <= 0 || (size_t)len >= sizeof r->request) {
        fprintf(stderr, "hold: the request does not fit\n");
        exit(2);
    }
    r->request_len = (size_t)len;

    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    len = snprintf(r->slug, sizeof r->slug, "scale-%ld-%lld-%ld", (long)getpid(),
                   (long long)t.tv_sec, t.tv_nsec);
    if (len <= 0 || (size_t)len >= sizeof r->slug) {
        fprintf(stderr, "hold: the slug does not fit\n");
        exit(2);
    }
    char body[1024];
    len = snprintf(body, sizeof body,
                   "{\"slug\":\"%s\",\"title\":\"A scale test event\",\"type\":\"meeting\","
                   "\"status\":\"reported\",\"date\":{\"precision\":\"day\","
                   "\"from\":\"2024-06-19\",\"to\":\"2024-06-19\",\"basis\":\"stated\"},"
                   "\"participants\":[{\"actor\":\"kim-jong-un\",\"role\":\"host\"}],"
                   "\"summary\":\"An event written by the scale test.\","
                   "\"evidence\":[{\"source\":\"article\",\"paragraph\":1,\"sentence\":1}]}",
                   r->slug);
    if (len <= 0 || (size_t)len >= sizeof body) {
        fprintf(stderr, "hold: the write's body does not fit\n");
        exit(2);
    }
    size_t blen = (size_t)len;
    len = snprintf(r->wrequest, sizeof r->wrequest,
                   "POST /v1/events HTTP/1.1\r\nHost: %s:%lu\r\n"
                   "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   o->host, o->port, token, blen, body);
    if (len <= 0 || (size_t)len >= sizeof r->wrequest) {
        fprintf(stderr, "hold: the write request does not fit (token too long?)\n");
        exit(2);
    }
    r->wrequest_len = (size_t)len;
}

/* ---------------------------------------------------------------- phases */

/* Marks as held the long-polls that stayed quiet for the settle time. */
static void longpoll_settle(struct run *r, long long now)
{
    long long settle = (long long)r->o.settle_ms * 1000000LL;
    for (size_t i = 0; i < r->o.n; i++) {
        struct hconn *c = &r->conns[i];
        if (c->state == ST_WAITING && c->raw.len == 0 && !c->head_done &&
            now - c->t_sent >= settle) {
            c->t_held = c->t_sent;
            set_state(r, c, ST_HELD);
        }
    }
}

/* Opens all connections, paced, and waits until each is held or failed.
 * Returns the time the last one was held (ns since t_start). */
static long long phase_open(struct run *r, long long t_start)
{
    const struct opts *o = &r->o;
    size_t next = 0;
    long long last_settle = 0;
    long long limit = t_start + (long long)o->hold_timeout * 1000000000LL;
    for (;;) {
        long long now = now_ns();
        unsigned long long allowed =
            (unsigned long long)(now - t_start) * o->rate / 1000000000ULL + 1;
        while (next < o->n && next < allowed && r->count[ST_CONNECTING] < o->pending) {
            conn_open(r, next);
            next++;
        }
        if (o->mode == MODE_LONGPOLL && now - last_settle >= 20000000LL) {
            longpoll_settle(r, now);
            last_settle = now;
        }
        unsigned long open = r->count[ST_UNOPENED] + r->count[ST_CONNECTING] +
                             r->count[ST_SENDING] + r->count[ST_WAITING];
        if (open == 0)
            break;
        if (now > limit) {
            fprintf(stderr,
                    "hold: not all held within %lu s: %lu not opened, %lu connecting, "
                    "%lu sending, %lu sent but not held\n",
                    o->hold_timeout, r->count[ST_UNOPENED], r->count[ST_CONNECTING],
                    r->count[ST_SENDING], r->count[ST_WAITING]);
            for (size_t i = 0; i < o->n; i++) {
                struct hconn *c = &r->conns[i];
                if (c->state == ST_UNOPENED || c->state == ST_CONNECTING ||
                    c->state == ST_SENDING || c->state == ST_WAITING)
                    conn_fail(r, c, FAIL_NOT_HELD, 0, 0);
            }
            break;
        }
        loop_once(r, next < o->n ? 1 : 20);
    }
    long long last = 0;
    for (size_t i = 0; i < o->n; i++) {
        const struct hconn *c = &r->conns[i];
        long long t = o->mode == MODE_LONGPOLL ? c->t_sent : c->t_held;
        if ((c->state == ST_HELD) && t - t_start > last)
            last = t - t_start;
    }
    return last;
}

/* Holds until --hold seconds passed, or a line on stdin, or SIGUSR1. */
static void phase_hold(struct run *r)
{
    long long end = now_ns() + (long long)r->o.hold * 1000000000LL;
    if (r->o.hold_stdin) {
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.u64 = ID_STDIN;
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0)
            r->stdin_open = true;
        else
            fprintf(stderr, "hold: cannot watch stdin (%s): holding %lu s\n",
                    strerror(errno), r->o.hold);
    }
    while (!r->go && r->count[ST_HELD] > 0) {
        long long now = now_ns();
        if (!r->stdin_open && now >= end)
            break;
        long long left_ms = (end - now) / 1000000 + 1;
        loop_once(r, r->stdin_open ? 200 : (int)(left_ms < 200 ? left_ms : 200));
    }
}

/* Connects the write's connection (blocking, before t0), then makes it
 * non-blocking and adds it to the epoll set. */
static bool write_connect(struct run *r)
{
    struct hconn *c = &r->w;
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "hold: socket for the write: %s\n", strerror(errno));
        return false;
    }
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)r->o.port);
    dst.sin_addr = r->o.addr;
    int flags;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP};
    ev.data.u64 = ID_WRITE;
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0 ||
        (flags = fcntl(c->fd, F_GETFL)) < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        fprintf(stderr, "hold: cannot connect for the write: %s\n", strerror(errno));
        conn_close(c);
        return false;
    }
    c->state = ST_SENDING;
    return true;
}

/* Sends the write (t0 just before) and waits until every held connection
 * has the change or failed, and the write is answered, or the deadline. */
static void phase_write(struct run *r)
{
    r->phase = PH_WRITE;
    r->t0 = now_ns();
    r->write_sent = true;
    conn_send(r, &r->w);
    long long limit = r->t0 + (long long)r->o.deadline * 1000000000LL;
    bool no_change = false;
    for (;;) {
        bool write_open = r->w.state == ST_SENDING || r->w.state == ST_WAITING;
        no_change = r->w.state == ST_FAILED || (r->w.state == ST_DONE && r->w.status != 201);
        if ((r->count[ST_HELD] == 0 && !write_open) || no_change)
            break;
        if (now_ns() > limit)
            break;
        loop_once(r, 50);
    }
    for (size_t i = 0; i < r->o.n; i++)
        if (r->conns[i].state == ST_HELD)
            conn_fail(r, &r->conns[i], no_change ? FAIL_NO_CHANGE : FAIL_LATE, 0, 0);
    if (r->w.state == ST_SENDING || r->w.state == ST_WAITING) {
        fprintf(stderr, "hold: the write was not answered within %lu s\n", r->o.deadline);
        conn_close(&r->w);
        r->w.state = ST_FAILED;
    }
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile p (0..100] of the n sorted values. */
static long long percentile(const long long *v, size_t n, unsigned p)
{
    size_t rank = (n * p + 99) / 100;
    return v[rank > 0 ? rank - 1 : 0];
}

static unsigned long fails_total(const struct run *r)
{
    unsigned long t = 0;
    for (int ph = 0; ph < PH_COUNT; ph++)
        for (int k = 0; k < FAIL_COUNT; k++)
            t += r->fails[ph][k];
    return t;
}

/* Prints the failures by phase and kind, the statuses and the errors. */
static void report_failures(const struct run *r)
{
    for (int ph = 0; ph < PH_COUNT; ph++)
        for (int k = 0; k < FAIL_COUNT; k++)
            if (r->fails[ph][k] > 0)
                printf("failed %s: %lu %s\n", phase_names[ph], r->fails[ph][k], fail_names[k]);
    for (int s = 0; s < STATUS_SLOTS; s++)
        if (r->statuses[s] > 0)
            printf("  status %d: %lu\n", s, r->statuses[s]);
    for (int e = 0; e < ERRNO_SLOTS; e++)
        if (r->errnos[e] > 0)
            printf("  error %s: %lu\n", e == 0 ? "(other)" : strerror(e), r->errnos[e]);
    if (r->o.mode == MODE_STREAM && r->statuses[404] > 0)
        printf("stream: the server answered 404 to GET /v1/stream: it does not serve "
               "the stream (yet?)\n");
}

int main(int argc, char **argv)
{
    static struct run run;
    struct run *r = &run;
    parse_args(argc, argv, &r->o);
    const struct opts *o = &r->o;
    const char *token = getenv(o->token_env);
    if (token == NULL || token[0] == '\0') {
        fprintf(stderr, "hold: set %s to the server's write token\n", o->token_env);
        return 2;
    }
    for (const char *t = token; *t; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f) {
            fprintf(stderr, "hold: %s holds a character a header cannot carry\n",
                    o->token_env);
            return 2;
        }
    raise_nofile(o->n);
    signal(SIGPIPE, SIG_IGN);
    if (o->mode == MODE_LONGPOLL && !o->have_since) {
        if (!fetch_revision(o, &r->o.since)) {
            fprintf(stderr, "hold: cannot read the revision (X-Revision of GET /v1) from "
                            "%s:%lu\n", o->host, o->port);
            return 2;
        }
    }
    build_requests(r, token);

    r->conns = calloc(o->n, sizeof *r->conns);
    if (r->conns == NULL) {
        fprintf(stderr, "hold: out of memory for %lu connections\n", o->n);
        return 2;
    }
    for (size_t i = 0; i < o->n; i++)
        r->conns[i].fd = -1;
    r->count[ST_UNOPENED] = o->n;
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (r->ep < 0) {
        fprintf(stderr, "hold: epoll_create1: %s\n", strerror(errno));
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    r->sigfd = -1;
    if (sigprocmask(SIG_BLOCK, &set, NULL) == 0)
        r->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r->sigfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.u64 = ID_SIGNAL;
        epoll_ctl(r->ep, EPOLL_CTL_ADD, r->sigfd, &ev);
    }

    if (o->mode == MODE_LONGPOLL)
        printf("mode longpoll: %lu connections, since=%llu wait=%lu, %lu sources, "
               "rate %lu/s, settle %lu ms\n",
               o->n, o->since, o->wait, o->sources, o->rate, o->settle_ms);
    else
        printf("mode stream: %lu connections, %lu sources, rate %lu/s\n", o->n, o->sources,
               o->rate);
    fflush(stdout);

    r->phase = PH_OPEN;
    long long t_start = now_ns();
    long long took = phase_open(r, t_start);
    unsigned long held = r->count[ST_HELD];
    printf("slowest connect %.1f ms%s\n", ns_ms(r->slowest_connect),
           r->slowest_connect >= 1000000000LL ? " (a SYN was retransmitted: backlog overrun?)"
                                              : "");
    printf("held %lu in %.3f s%s\n", held, (double)took / 1e9,
           o->mode == MODE_LONGPOLL ? " (until the last request was written)" : "");
    fflush(stdout);

    unsigned long delivered = 0;
    size_t nlat = 0;
    long long *lat = NULL;
    if (held > 0) {
        r->phase = PH_HOLD;
        phase_hold(r);
        unsigned long still = r->count[ST_HELD];
        if (still < held)
            printf("%lu of %lu still held at the write\n", still, held);
        if (still > 0 && write_connect(r)) {
            phase_write(r);
        } else if (still > 0) {
            r->phase = PH_WRITE;
            for (size_t i = 0; i < o->n; i++)
                if (r->conns[i].state == ST_HELD)
                    conn_fail(r, &r->conns[i], FAIL_NO_CHANGE, 0, 0);
        }
        delivered = r->count[ST_DONE];
        lat = malloc((delivered > 0 ? delivered : 1) * sizeof *lat);
        if (lat == NULL) {
            fprintf(stderr, "hold: out of memory\n");
            return 2;
        }
        for (size_t i = 0; i < o->n; i++)
            if (r->conns[i].state == ST_DONE)
                lat[nlat++] = r->conns[i].t_done - r->t0;
        qsort(lat, nlat, sizeof *lat, cmp_ll);
    } else {
        printf("nothing held: no write made\n");
    }

    int write_status = r->w.state == ST_DONE ? r->w.status : 0;
    double write_ms = r->w.state == ST_DONE ? ns_ms(r->t_write_done - r->t0) : -1;
    if (r->write_sent)
        printf("write: %d in %.1f ms\n", write_status, write_ms);
    unsigned long failures = fails_total(r);
    printf("delivered %lu of %lu, failures %lu\n", delivered, o->n, failures);
    report_failures(r);
    double p50 = nlat > 0 ? ns_ms(percentile(lat, nlat, 50)) : -1;
    double p99 = nlat > 0 ? ns_ms(percentile(lat, nlat, 99)) : -1;
    double max = nlat > 0 ? ns_ms(lat[nlat - 1]) : -1;
    double min = nlat > 0 ? ns_ms(lat[0]) : -1;
    if (nlat > 0)
        printf("delivery latency ms: min %.1f p50 %.1f p99 %.1f max %.1f\n", min, p50, p99,
               max);
    printf("result mode=%s n=%lu held=%lu hold_s=%.3f delivered=%lu failures=%lu "
           "min_ms=%.1f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f write_status=%d write_ms=%.1f "
           "slowest_connect_ms=%.1f\n",
           o->mode == MODE_LONGPOLL ? "longpoll" : "stream", o->n, held, (double)took / 1e9,
           delivered, failures, min, p50, p99, max, write_status, write_ms,
           ns_ms(r->slowest_connect));
    fflush(stdout);
    free(lat);
    for (size_t i = 0; i < o->n; i++)
        conn_close(&r->conns[i]);
    free(r->conns);
    close(r->ep);
    bool ok = held == o->n && delivered == o->n && write_status == 201;
    return ok ? 0 : 1;
}
