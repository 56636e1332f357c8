/*
 * config.h - the server's configuration: defaults, command-line flags and
 * their FACTSD_* environment equivalents.
 */
#ifndef FACTSD_CONFIG_H
#define FACTSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FACTSD_CONFIG_ORIGINS_MAX = 16,     /* origins in --cors-origin */
    FACTSD_CONFIG_ORIGIN_LEN = 256,     /* bytes of one origin */
    FACTSD_CONFIG_HOST_LEN = 64,        /* bytes of the listen address */
    FACTSD_CONFIG_PATH_LEN = 4096,      /* bytes of --data */
    FACTSD_CONFIG_THREADS_MAX = 256,
    FACTSD_CONFIG_CONNECTIONS_MAX = 100000,
    FACTSD_CONFIG_BODY_DEFAULT = 64 * 1024, /* default --max-body */
    FACTSD_CONFIG_BODY_MAX = 1024 * 1024,   /* largest --max-body */
    FACTSD_CONFIG_HISTORY_DEFAULT = 10000,  /* default --history */
    FACTSD_CONFIG_HISTORY_MAX = 1000000,    /* largest --history */
    FACTSD_CONFIG_WAITERS_DEFAULT = 10000,  /* default --max-waiters */
    FACTSD_CONFIG_WAITERS_MAX = 1000000,    /* largest --max-waiters */
    FACTSD_CONFIG_URL_LEN = 1024,           /* bytes of --follow's URL */
    FACTSD_CONFIG_LAG_DEFAULT = 10          /* default --max-lag, seconds */
};

/* A complete server configuration. A plain value: copy it freely. Fill it
 * with factsd_config_init, then change fields or call factsd_config_parse. */
typedef struct factsd_config {
    char host[FACTSD_CONFIG_HOST_LEN]; /* numeric IPv4 or IPv6 address */
    uint16_t port;                     /* 0 picks a free port */
    unsigned threads;                  /* worker threads, >= 1 */
    char data_path[FACTSD_CONFIG_PATH_LEN]; /* "" = the embedded dataset */
    bool cors_any;                     /* Access-Control-Allow-Origin: * */
    size_t cors_count;                 /* listed origins when !cors_any */
    char cors_origins[FACTSD_CONFIG_ORIGINS_MAX][FACTSD_CONFIG_ORIGIN_LEN];
    unsigned max_connections;          /* whole server */
    unsigned max_connections_per_ip;   /* 0 = no per-address limit */
    unsigned timeout;                  /* idle seconds before a connection closes */
    unsigned backlog;                  /* listen(2) backlog */
    bool access_log;                   /* one line per request on stdout */
    char journal_path[FACTSD_CONFIG_PATH_LEN]; /* "" = writes are not journalled */
    char token_path[FACTSD_CONFIG_PATH_LEN];   /* "" = token from FACTSD_TOKEN, if set */
    size_t max_body;                   /* bytes of a write's request content */
    bool compact;                      /* --compact: compact and exit */
    size_t history;                    /* changes kept for /v1/changes */
    unsigned max_waiters;              /* long-polls held at once */
    unsigned max_streams;              /* event streams open at once */
    unsigned heartbeat;                /* seconds between heartbeats on an idle
                                          stream; 0: two thirds of timeout */
    bool metrics_listen;               /* /metrics on its own listener (below)
                                          instead of the main one */
    char metrics_host[FACTSD_CONFIG_HOST_LEN]; /* its numeric address */
    uint16_t metrics_port;             /* its port; 0 picks a free one */
    char follow_url[FACTSD_CONFIG_URL_LEN]; /* "" = a primary; else the
                                          primary's base URL, no trailing
                                          slash: a read-only replica */
    unsigned max_lag;                  /* seconds a replica may lag and
                                          still be ready */
} factsd_config;

/* The outcome of factsd_config_parse. */
typedef enum factsd_config_result {
    FACTSD_CONFIG_RUN = 0,   /* start the server */
    FACTSD_CONFIG_HELP,      /* --help was given */
    FACTSD_CONFIG_VERSION,   /* --version was given */
    FACTSD_CONFIG_ERROR      /* a bad flag or value; see the message */
} factsd_config_result;

/* Fills cfg with the defaults: 127.0.0.1:8080, one thread per CPU, the
 * embedded dataset, CORS for any origin, 1024 connections, 64 per address,
 * a 15-second timeout, a backlog of 512, no access log, no journal, no token
 * file, 64 KiB request content for writes, 10000 changes of history,
 * 10000 waiting long-polls, 10000 event streams, heartbeats every two
 * thirds of the timeout, /metrics on the main listener, a primary (no
 * --follow), a replica's allowed lag 10 seconds. Never fails. */
void factsd_config_init(factsd_config *cfg);

/* The seconds between heartbeats on an idle event stream: cfg->heartbeat,
 * or two thirds of cfg->timeout (at least 1) when that is 0. */
unsigned factsd_config_heartbeat(const factsd_config *cfg);

/* Applies the flags in argv[1..argc-1] to cfg, then the FACTSD_* environment
 * variables (read with getenv) of the options no flag gave; --help and
 * --version return before any variable is read. On FACTSD_CONFIG_ERROR,
 * writes a one-line message naming the flag or variable into msg (size
 * bytes, always NUL-terminated when size > 0); cfg may then be partly
 * changed. --follow with --data, --journal, --token-file or --compact is
 * an error (a replica's data is its primary's, and it takes no writes).
 * argv is not kept. */
factsd_config_result factsd_config_parse(factsd_config *cfg, int argc, char **argv,
                                         char *msg, size_t size);

/* Parses a comma-separated origin list ("*" alone, or origins such as
 * "https://a.example") into cfg. Returns true, or false with a message in
 * msg when an origin is empty, too long, or there are too many; cfg is
 * unchanged then. */
bool factsd_config_set_cors(factsd_config *cfg, const char *list, char *msg, size_t size);

/* Parses "ADDR:PORT" (IPv4, or "[IPv6]:PORT") into cfg. Returns true, or
 * false with a message in msg; cfg is unchanged then. */
bool factsd_config_set_listen(factsd_config *cfg, const char *value, char *msg, size_t size);

/* Parses "ADDR:PORT" (as factsd_config_set_listen) into cfg's metrics
 * listener and turns it on. Returns true, or false with a message in msg;
 * cfg is unchanged then. */
bool factsd_config_set_metrics_listen(factsd_config *cfg, const char *value, char *msg,
                                      size_t size);

/* Checks that value is a primary's base URL for --follow ("http://" or
 * "https://", a host, an optional port and path, no query, fragment,
 * userinfo, space or control byte, shorter than FACTSD_CONFIG_URL_LEN) and
 * stores it without its trailing slashes. Returns true, or false with a
 * message in msg; cfg is unchanged then. */
bool factsd_config_set_follow(factsd_config *cfg, const char *value, char *msg, size_t size);

/* The usage text (static), printed by --help and after a bad flag. */
const char *factsd_config_usage(void);

#endif /* FACTSD_CONFIG_H */
