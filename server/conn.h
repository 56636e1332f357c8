/*
 * conn.h - the service's connections below the request cycle: the
 * listening socket, the acceptor thread that hands each connection to
 * libmicrohttpd's workers and keeps the connection limit, the registry of
 * open connections (each one's header deadline and whether a request is in
 * progress), and the sweeper thread that enforces the deadlines and gives
 * the held requests their time (held.h).
 *
 * The per-address limit is libmicrohttpd's (MHD_OPTION_PER_IP_CONNECTION_
 * LIMIT): a connection it refuses is closed at once and leaves the count.
 */
#ifndef FACTSD_CONN_H
#define FACTSD_CONN_H

#include "config.h"
#include "held.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The connections of one service. Opaque. */
typedef struct factsd_conns factsd_conns;

/* One open connection as the registry sees it, embedded in the
 * connection's own state. Filled by factsd_conn_add; the fields are read
 * and written through the functions below only. */
typedef struct factsd_conn {
    int fd;                     /* the connection's socket */
    atomic_llong deadline;      /* ms (CLOCK_MONOTONIC) by which the next
                                   request's headers must be in; 0: none */
    atomic_bool busy;           /* a request is between its request line and
                                   its completion */
    struct factsd_conn *prev, *next;
} factsd_conn;

/* The CLOCK_MONOTONIC time in milliseconds: the clock of every deadline
 * here and in held.h. Never fails. */
long long factsd_conn_now_ms(void);

/* Opens the listening socket of cfg's address (SO_REUSEADDR, IPv6 only for
 * an IPv6 address, cfg's backlog) and keeps cfg's connection limit and
 * timeout (copied). Returns the connections with the port it got, or NULL
 * with a one-line reason in msg (size bytes) when the address cannot be
 * bound or memory or a mutex runs out. */
factsd_conns *factsd_conn_listen(const factsd_config *cfg, char *msg, size_t size);

/* The port listened on (the one picked when cfg's port was 0). */
uint16_t factsd_conn_port(const factsd_conns *cs);

/* The connections open at this moment (handed to libmicrohttpd and not
 * yet closed). Never fails. */
size_t factsd_conn_count(const factsd_conns *cs);

/* The base URL, e.g. "http://127.0.0.1:8080" or "http://[::1]:8080";
 * valid until factsd_conn_free. */
const char *factsd_conn_url(const factsd_conns *cs);

/* Starts the acceptor thread, which accepts connections and adds them to
 * daemon (started with MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC), closing
 * at once any beyond cfg's max_connections, and the sweeper thread, which
 * every 250 ms shuts down the connections past their header deadline and
 * wakes held's due requests, and in between waits for departed held
 * clients (factsd_held_watch). daemon and held must outlive the threads.
 * Returns true, or false with a one-line reason in msg (size bytes) when a
 * thread cannot start; one started already runs until
 * factsd_conn_threads_stop. */
bool factsd_conn_threads_start(factsd_conns *cs, struct MHD_Daemon *daemon, factsd_held *held,
                               char *msg, size_t size);

/* Stops accepting: ends the acceptor thread and closes the listening
 * socket, so that new connections are refused. It tells the sweeper to end
 * as well (factsd_conn_threads_stop joins it); open connections stay open.
 * Calling it again is a no-op. Never fails. */
void factsd_conn_accept_stop(factsd_conns *cs);

/* factsd_conn_accept_stop, then waits for the sweeper thread to end. NULL
 * is a no-op. Never fails. */
void factsd_conn_threads_stop(factsd_conns *cs);

/* Stops the threads (factsd_conn_threads_stop) and frees cs. NULL is a
 * no-op. Call it only once no connection is registered any more (after the
 * daemon has stopped). */
void factsd_conn_free(factsd_conns *cs);

/* Registers c, a connection libmicrohttpd has just started on socket fd,
 * and gives its first request cfg's timeout to deliver its request line and
 * headers. c must stay valid until factsd_conn_remove. Thread-safe; never
 * fails. */
void factsd_conn_add(factsd_conns *cs, factsd_conn *c, int fd);

/* Accounts for a connection libmicrohttpd closed (the count of open
 * connections falls) and unregisters c, which the caller may then free.
 * c may be NULL (a connection whose state could not be allocated): only
 * the count falls. Call it before the socket is closed, so that the
 * sweeper never touches a reused descriptor. Thread-safe; never fails. */
void factsd_conn_remove(factsd_conns *cs, factsd_conn *c);

/* Gives c's next request cfg's timeout from now to deliver its request
 * line and headers. Thread-safe; never fails. */
void factsd_conn_deadline_start(const factsd_conns *cs, factsd_conn *c);

/* Lifts c's deadline: its request's headers are in. Thread-safe; never
 * fails. */
void factsd_conn_deadline_clear(factsd_conn *c);

/* Marks whether a request is in progress on c (from its request line to
 * its completion). Touches c only, never a counter shared by the workers.
 * Thread-safe; never fails. */
void factsd_conn_busy_set(factsd_conn *c, bool busy);

/* Whether a request is in progress on any registered connection.
 * Thread-safe; never fails. */
bool factsd_conn_busy_any(factsd_conns *cs);

#endif /* FACTSD_CONN_H */
