/*
 * config.c - defaults, flags and FACTSD_* environment variables.
 */
#include "config.h"

#include "text.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: factsd [options]\n"
    "  --listen ADDR:PORT          address to listen on (default 127.0.0.1:8080;\n"
    "                              port 0 picks a free port; [::1]:PORT for IPv6)\n"
    "  --data FILE                 serve this dataset file instead of the embedded one\n"
    "  --threads N                 worker threads (default: number of CPUs)\n"
    "  --cors-origin LIST          '*' or comma-separated origins allowed to read\n"
    "                              (default *)\n"
    "  --max-connections N         open connections in all (default 1024)\n"
    "  --max-connections-per-ip N  open connections per client address, 0 = no\n"
    "                              limit (default 64)\n"
    "  --timeout SECONDS           close idle connections after this (default 15)\n"
    "  --backlog N                 listen backlog (default 512)\n"
    "  --access-log, --no-access-log\n"
    "                              one line per request on stdout (default off)\n"
    "  --journal FILE              append every write to FILE (durably) and replay\n"
    "                              it at start; without it writes live in memory only\n"
    "  --token-file FILE           the write token (mode 600 or stricter); or set\n"
    "                              FACTSD_TOKEN; without a token the API is read-only\n"
    "  --max-body BYTES            request content a write may carry (default 65536)\n"
    "  --history N                 changes kept for /v1/changes (default 10000)\n"
    "  --max-waiters N             long-polls of /v1/changes held at once (default 10000)\n"
    "  --max-streams N             event streams (/v1/stream) open at once (default 10000)\n"
    "  --heartbeat SECONDS         comment sent on an idle event stream this often\n"
    "                              (default: two thirds of --timeout)\n"
    "  --metrics-listen ADDR:PORT  serve /metrics on this address only (port 0 picks\n"
    "                              a free port) instead of the main listener\n"
    "  --follow URL                run as a read-only replica of the primary at URL\n"
    "                              (e.g. http://10.0.0.1:8080): load its snapshot,\n"
    "                              then apply its changes; no --data, --journal,\n"
    "                              token or --compact\n"
    "  --max-lag SECONDS           a replica further behind than this is not ready\n"
    "                              (/readyz answers 503; default 10)\n"
    "  --compact                   save the dataset with the journal applied to --data\n"
    "                              (atomically), start an empty journal, and exit\n"
    "  --help                      print this help and exit\n"
    "  --version                   print the version and exit\n"
    "Each option has an environment equivalent: FACTSD_LISTEN, FACTSD_DATA,\n"
    "FACTSD_THREADS, FACTSD_CORS_ORIGIN, FACTSD_MAX_CONNECTIONS,\n"
    "FACTSD_MAX_CONNECTIONS_PER_IP, FACTSD_TIMEOUT, FACTSD_BACKLOG,\n"
    "FACTSD_ACCESS_LOG (on or off), FACTSD_JOURNAL, FACTSD_TOKEN_FILE,\n"
    "FACTSD_MAX_BODY, FACTSD_HISTORY, FACTSD_MAX_WAITERS, FACTSD_MAX_STREAMS,\n"
    "FACTSD_HEARTBEAT, FACTSD_METRICS_LISTEN, FACTSD_FOLLOW, FACTSD_MAX_LAG.\n"
    "Flags win over the environment.\n"
    "SIGHUP re-reads --data and applies the journal on top.\n";

const char *factsd_config_usage(void)
{
    return usage_text;
}

void factsd_config_init(factsd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "%s", "127.0.0.1");
    cfg->port = 8080;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    if (cpus > FACTSD_CONFIG_THREADS_MAX)
        cpus = FACTSD_CONFIG_THREADS_MAX;
    cfg->threads = (unsigned)cpus;
    cfg->cors_any = true;
    cfg->max_connections = 1024;
    cfg->max_connections_per_ip = 64;
    cfg->timeout = 15;
    cfg->backlog = 512;
    cfg->access_log = false;
    cfg->max_body = FACTSD_CONFIG_BODY_DEFAULT;
    cfg->history = FACTSD_CONFIG_HISTORY_DEFAULT;
    cfg->max_waiters = FACTSD_CONFIG_WAITERS_DEFAULT;
    cfg->max_streams = FACTSD_CONFIG_WAITERS_DEFAULT;
    cfg->heartbeat = 0;
    cfg->max_lag = FACTSD_CONFIG_LAG_DEFAULT;
}

unsigned factsd_config_heartbeat(const factsd_config *cfg)
{
    if (cfg->heartbeat > 0)
        return cfg->heartbeat;
    unsigned hb = cfg->timeout * 2 / 3;
    return hb > 0 ? hb : 1;
}

/* Parses "ADDR:PORT" or "[IPv6]:PORT" into host (FACTSD_CONFIG_HOST_LEN
 * bytes) and *port_out; false with a message in msg, both untouched. */
static bool listen_parse(const char *value, char *host_out, uint16_t *port_out, char *msg,
                         size_t size)
{
    char host[FACTSD_CONFIG_HOST_LEN];
    const char *colon;
    size_t hlen;
    const char *h = value;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(msg, size, "expected [IPv6]:PORT, got '%s'", value);
            return false;
        }
        h = value + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(value, ':');
        if (colon == NULL) {
            snprintf(msg, size, "expected ADDR:PORT, got '%s'", value);
            return false;
        }
        hlen = (size_t)(colon - value);
    }
    if (hlen == 0 || hlen >= sizeof host) {
        snprintf(msg, size, "expected ADDR:PORT, got '%s'", value);
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    unsigned char addr[16];
    bool v6 = value[0] == '[';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1) {
        snprintf(msg, size, "'%s' is not a numeric %s address", host, v6 ? "IPv6" : "IPv4");
        return false;
    }
    long long port;
    if (!factsd_text_parse_int(colon + 1, 0, 65535, &port)) {
        snprintf(msg, size, "expected a port from 0 to 65535, got '%s'", colon + 1);
        return false;
    }
    snprintf(host_out, FACTSD_CONFIG_HOST_LEN, "%s", host);
    *port_out = (uint16_t)port;
    return true;
}

bool factsd_config_set_listen(factsd_config *cfg, const char *value, char *msg, size_t size)
{
    return listen_parse(value, cfg->host, &cfg->port, msg, size);
}

bool factsd_config_set_metrics_listen(factsd_config *cfg, const char *value, char *msg,
                                      size_t size)
{
    if (!listen_parse(value, cfg->metrics_host, &cfg->metrics_port, msg, size))
        return false;
    cfg->metrics_listen = true;
    return true;
}

bool factsd_config_set_follow(factsd_config *cfg, const char *value, char *msg, size_t size)
{
    size_t len = strlen(value);
    size_t scheme = strncmp(value, "http://", 7) == 0    ? 7
                    : strncmp(value, "https://", 8) == 0 ? 8
                                                         : 0;
    while (len > scheme && value[len - 1] == '/')
        len--;
    if (scheme == 0 || len == scheme || len >= FACTSD_CONFIG_URL_LEN) {
        snprintf(msg, size, "expected http://HOST[:PORT][/PATH] (at most %d bytes), got '%.200s'",
                 FACTSD_CONFIG_URL_LEN - 1, value);
        return false;
    }
    for (size_t i = scheme; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '@' || c == '\\' ||
            c == '"') {
            snprintf(msg, size, "the URL '%.200s' has a byte a base URL cannot have "
                                "(space, control, ?, #, @, \\ or \")", value);
            return false;
        }
    }
    if (value[scheme] == '/' || value[scheme] == ':') {
        snprintf(msg, size, "the URL '%.200s' names no host", value);
        return false;
    }
    memcpy(cfg->follow_url, value, len);
    cfg->follow_url[len] = '\0';
    return true;
}

/* Whether the len bytes at s are an origin as browsers send it (RFC 6454):
 * scheme "://" host [":" port], nothing after; lower-cases the scheme and
 * the host in place, as browsers serialise them. */
static bool origin_normalise(char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (isalnum((unsigned char)s[i]) || (i > 0 && strchr("+-.", s[i]) != NULL)))
        i++;
    if (i == 0 || !isalpha((unsigned char)s[0]) || len - i < 4 || memcmp(s + i, "://", 3) != 0)
        return false;
    size_t host = i + 3, end = host;
    if (s[host] == '[') {
        while (end < len && s[end] != ']')
            end++;
        if (end == len || end == host + 1)
            return false;
        end++;
    } else {
        while (end < len && s[end] != ':')
            end++;
    }
    if (end == host)
        return false;
    for (size_t k = host; k < end; k++) {
        unsigned char c = (unsigned char)s[k];
        if (!isalnum(c) && strchr("-._~!$&'()+;=[]:%", c) == NULL)
            return false; /* no path, query, userinfo or fragment */
    }
    if (end < len) {
        size_t digits = len - end - 1;
        if (s[end] != ':' || digits == 0 || digits > 5)
            return false;
        for (size_t k = end + 1; k < len; k++)
            if (!isdigit((unsigned char)s[k]))
                return false;
    }
    for (size_t k = 0; k < end; k++)
        s[k] = (char)tolower((unsigned char)s[k]);
    return true;
}

bool factsd_config_set_cors(factsd_config *cfg, const char *list, char *msg, size_t size)
{
    if (strcmp(list, "*") == 0) {
        cfg->cors_any = true;
        cfg->cors_count = 0;
        return true;
    }
    char origins[FACTSD_CONFIG_ORIGINS_MAX][FACTSD_CONFIG_ORIGIN_LEN];
    size_t n = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == 0) {
            snprintf(msg, size, "an empty origin in '%s'", list);
            return false;
        }
        if (len >= FACTSD_CONFIG_ORIGIN_LEN) {
            snprintf(msg, size, "an origin longer than %d bytes",
                     FACTSD_CONFIG_ORIGIN_LEN - 1);
            return false;
        }
        if (n == FACTSD_CONFIG_ORIGINS_MAX) {
            snprintf(msg, size, "more than %d origins", FACTSD_CONFIG_ORIGINS_MAX);
            return false;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c <= 0x20 || c >= 0x7f || c == '*') {
                snprintf(msg, size, "'%.*s' is not an origin (use '*' alone for any)",
                         (int)len, p);
                return false;
            }
        }
        memcpy(origins[n], p, len);
        origins[n][len] = '\0';
        if (!origin_normalise(origins[n], len)) {
            snprintf(msg, size, "'%s' is not an origin: scheme://host[:port], no path or "
                                "trailing slash (e.g. https://example.org)", origins[n]);
            return false;
        }
        n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    cfg->cors_any = false;
    cfg->cors_count = n;
    memcpy(cfg->cors_origins, origins, sizeof origins);
    return true;
}

static bool set_unsigned(unsigned *field, const char *value, long long min, long long max,
                         char *msg, size_t size)
{
    long long v;
    if (!factsd_text_parse_int(value, min, max, &v)) {
        snprintf(msg, size, "expected an integer from %lld to %lld, got '%s'", min, max, value);
        return false;
    }
    *field = (unsigned)v;
    return true;
}

static bool set_bool(bool *field, const char *value, char *msg, size_t size)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "1") == 0 || strcmp(value, "true") == 0) {
        *field = true;
        return true;
    }
    if (strcmp(value, "off") == 0 || strcmp(value, "0") == 0 || strcmp(value, "false") == 0) {
        *field = false;
        return true;
    }
    snprintf(msg, size, "expected on or off, got '%s'", value);
    return false;
}

enum option_id {
    OPT_LISTEN,
    OPT_DATA,
    OPT_THREADS,
    OPT_CORS,
    OPT_MAXCONN,
    OPT_MAXCONN_IP,
    OPT_TIMEOUT,
    OPT_BACKLOG,
    OPT_ACCESS_LOG,
    OPT_JOURNAL,
    OPT_TOKEN_FILE,
    OPT_MAX_BODY,
    OPT_HISTORY,
    OPT_MAX_WAITERS,
    OPT_MAX_STREAMS,
    OPT_HEARTBEAT,
    OPT_METRICS_LISTEN,
    OPT_FOLLOW,
    OPT_MAX_LAG
};

struct option_spec {
    enum option_id id;
    const char *flag;
    const char *env;
};

static const struct option_spec options[] = {
    {OPT_LISTEN, "--listen", "FACTSD_LISTEN"},
    {OPT_DATA, "--data", "FACTSD_DATA"},
    {OPT_THREADS, "--threads", "FACTSD_THREADS"},
    {OPT_CORS, "--cors-origin", "FACTSD_CORS_ORIGIN"},
    {OPT_MAXCONN, "--max-connections", "FACTSD_MAX_CONNECTIONS"},
    {OPT_MAXCONN_IP, "--max-connections-per-ip", "FACTSD_MAX_CONNECTIONS_PER_IP"},
    {OPT_TIMEOUT, "--timeout", "FACTSD_TIMEOUT"},
    {OPT_BACKLOG, "--backlog", "FACTSD_BACKLOG"},
    {OPT_ACCESS_LOG, "--access-log", "FACTSD_ACCESS_LOG"},
    {OPT_JOURNAL, "--journal", "FACTSD_JOURNAL"},
    {OPT_TOKEN_FILE, "--token-file", "FACTSD_TOKEN_FILE"},
    {OPT_MAX_BODY, "--max-body", "FACTSD_MAX_BODY"},
    {OPT_HISTORY, "--history", "FACTSD_HISTORY"},
    {OPT_MAX_WAITERS, "--max-waiters", "FACTSD_MAX_WAITERS"},
    {OPT_MAX_STREAMS, "--max-streams", "FACTSD_MAX_STREAMS"},
    {OPT_HEARTBEAT, "--heartbeat", "FACTSD_HEARTBEAT"},
    {OPT_METRICS_LISTEN, "--metrics-listen", "FACTSD_METRICS_LISTEN"},
    {OPT_FOLLOW, "--follow", "FACTSD_FOLLOW"},
    {OPT_MAX_LAG, "--max-lag", "FACTSD_MAX_LAG"},
};

/* Copies a file name option value into field (cap bytes). */
static bool set_path(char *field, size_t cap, const char *value, char *msg, size_t size)
{
    if (value[0] == '\0' || strlen(value) >= cap) {
        snprintf(msg, size, "expected a file name of 1 to %zu bytes", cap - 1);
        return false;
    }
    snprintf(field, cap, "%s", value);
    return true;
}

/* Applies one option's value; on failure writes the reason into msg. */
static bool option_apply(factsd_config *cfg, enum option_id id, const char *value, char *msg,
                         size_t size)
{
    switch (id) {
    case OPT_LISTEN:
        return factsd_config_set_listen(cfg, value, msg, size);
    case OPT_METRICS_LISTEN:
        return factsd_config_set_metrics_listen(cfg, value, msg, size);
    case OPT_DATA:
        return set_path(cfg->data_path, sizeof cfg->data_path, value, msg, size);
    case OPT_JOURNAL:
        return set_path(cfg->journal_path, sizeof cfg->journal_path, value, msg, size);
    case OPT_TOKEN_FILE:
        return set_path(cfg->token_path, sizeof cfg->token_path, value, msg, size);
    case OPT_MAX_BODY: {
        unsigned v;
        if (!set_unsigned(&v, value, 1, FACTSD_CONFIG_BODY_MAX, msg, size))
            return false;
        cfg->max_body = v;
        return true;
    }
    case OPT_HISTORY: {
        unsigned v;
        if (!set_unsigned(&v, value, 1, FACTSD_CONFIG_HISTORY_MAX, msg, size))
            return false;
        cfg->history = v;
        return true;
    }
    case OPT_MAX_WAITERS:
        return set_unsigned(&cfg->max_waiters, value, 1, FACTSD_CONFIG_WAITERS_MAX, msg, size);
    case OPT_MAX_STREAMS:
        return set_unsigned(&cfg->max_streams, value, 1, FACTSD_CONFIG_WAITERS_MAX, msg, size);
    case OPT_HEARTBEAT:
        return set_unsigned(&cfg->heartbeat, value, 1, 3600, msg, size);
    case OPT_THREADS:
        return set_unsigned(&cfg->threads, value, 1, FACTSD_CONFIG_THREADS_MAX, msg, size);
    case OPT_CORS:
        return factsd_config_set_cors(cfg, value, msg, size);
    case OPT_MAXCONN:
        return set_unsigned(&cfg->max_connections, value, 1, FACTSD_CONFIG_CONNECTIONS_MAX, msg,
                            size);
    case OPT_MAXCONN_IP:
        return set_unsigned(&cfg->max_connections_per_ip, value, 0,
                            FACTSD_CONFIG_CONNECTIONS_MAX, msg, size);
    case OPT_TIMEOUT:
        return set_unsigned(&cfg->timeout, value, 1, 3600, msg, size);
    case OPT_BACKLOG:
        return set_unsigned(&cfg->backlog, value, 1, 65535, msg, size);
    case OPT_ACCESS_LOG:
        return set_bool(&cfg->access_log, value, msg, size);
    case OPT_FOLLOW:
        return factsd_config_set_follow(cfg, value, msg, size);
    case OPT_MAX_LAG:
        return set_unsigned(&cfg->max_lag, value, 1, 86400, msg, size);
    }
    snprintf(msg, size, "unknown option");
    return false;
}

factsd_config_result factsd_config_parse(factsd_config *cfg, int argc, char **argv,
                                         char *msg, size_t size)
{
    char why[512];
    const size_t nopt = sizeof options / sizeof options[0];
    bool given[sizeof options / sizeof options[0]] = {false}; /* set by a flag */
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return FACTSD_CONFIG_HELP;
        if (strcmp(arg, "--version") == 0)
            return FACTSD_CONFIG_VERSION;
        if (strcmp(arg, "--access-log") == 0 || strcmp(arg, "--no-access-log") == 0) {
            cfg->access_log = arg[2] == 'a';
            for (size_t i = 0; i < nopt; i++)
                if (options[i].id == OPT_ACCESS_LOG)
                    given[i] = true;
            continue;
        }
        if (strcmp(arg, "--compact") == 0) {
            cfg->compact = true;
            continue;
        }
        const struct option_spec *spec = NULL;
        const char *value = NULL;
        size_t flen = 0;
        for (size_t i = 0; i < nopt; i++) {
            size_t n = strlen(options[i].flag);
            if (strncmp(arg, options[i].flag, n) == 0 && (arg[n] == '\0' || arg[n] == '=')) {
                spec = &options[i];
                flen = n;
                break;
            }
        }
        if (spec == NULL) {
            snprintf(msg, size, "factsd: unknown %s '%s'",
                     arg[0] == '-' ? "flag" : "argument", arg);
            return FACTSD_CONFIG_ERROR;
        }
        if (arg[flen] == '=') {
            value = arg + flen + 1;
        } else if (a + 1 < argc) {
            value = argv[++a];
        } else {
            snprintf(msg, size, "factsd: %s needs a value", spec->flag);
            return FACTSD_CONFIG_ERROR;
        }
        if (!option_apply(cfg, spec->id, value, why, sizeof why)) {
            snprintf(msg, size, "factsd: %s: %s", spec->flag, why);
            return FACTSD_CONFIG_ERROR;
        }
        given[spec - options] = true;
    }
    /* The environment supplies only what no flag gave. */
    for (size_t i = 0; i < nopt; i++) {
        const char *v = getenv(options[i].env);
        if (v == NULL || given[i])
            continue;
        if (!option_apply(cfg, options[i].id, v, why, sizeof why)) {
            snprintf(msg, size, "factsd: %s: %s", options[i].env, why);
            return FACTSD_CONFIG_ERROR;
        }
    }
    if (cfg->follow_url[0] != '\0') {
        const char *clash = cfg->data_path[0] != '\0'      ? "--data"
                            : cfg->journal_path[0] != '\0' ? "--journal"
                            : cfg->token_path[0] != '\0'   ? "--token-file"
                            : cfg->compact                 ? "--compact"
                                                           : NULL;
        if (clash != NULL) {
            snprintf(msg, size,
                     "factsd: --follow cannot go with %s: a replica serves its primary's "
                     "data and takes no writes",
                     clash);
            return FACTSD_CONFIG_ERROR;
        }
    }
    return FACTSD_CONFIG_RUN;
}
