/*
 * stream.h - the server-sent event stream's pieces that need no connection:
 * the GET /v1/stream query and the event producer that turns the change
 * history into text/event-stream bytes.
 *
 * A producer never copies a change's JSON: it holds a reference to the
 * history entry and writes it out piecewise, so a reader that drains slowly
 * costs the server one entry reference and a few hundred bytes, whatever
 * the size of the records.
 */
#ifndef FACTSD_STREAM_H
#define FACTSD_STREAM_H

#include "problem.h"

#include <facts.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FACTSD_STREAM_RETRY_MS = 2000, /* the reconnection delay a client is told */
    FACTSD_STREAM_LINE = 512       /* bytes of one literal piece (a prefix, a
                                      reset event, a heartbeat) */
};

/* The parameters of one GET /v1/stream. */
typedef struct factsd_stream_query {
    bool resume;        /* a Last-Event-ID (header or query) was given */
    uint64_t last;      /* its revision */
    unsigned kinds;     /* bit (1 << facts_kind) per collection wanted; 0: all */
} factsd_stream_query;

/* Parses the len-byte query (after '?'; may be empty) of GET /v1/stream
 * and the request's Last-Event-ID header (may be NULL) into *q: collection
 * (a comma-separated list of collection names), last-event-id (a revision;
 * the header wins when both are given, since a browser reconnecting sends
 * the header with the query it first used), pretty (accepted, ignored).
 * Returns the number of offending parameters written to bad (at most cap;
 * 0: *q is valid). Never fails otherwise. */
size_t factsd_stream_query_parse(const char *query, size_t len, const char *header,
                                 factsd_stream_query *q, factsd_problem_param *bad,
                                 size_t cap);

/* Why a producer stopped short of its next event. */
typedef enum factsd_stream_state {
    FACTSD_STREAM_MORE = 0, /* bytes were written, or more can be */
    FACTSD_STREAM_IDLE,     /* caught up: nothing to send before the next
                               change or heartbeat */
    FACTSD_STREAM_END       /* the stream is over (after a mid-stream reset) */
} factsd_stream_state;

/* One stream's position and the event it is writing. A plain value: fill it
 * with factsd_stream_init, release with factsd_stream_release. */
typedef struct factsd_stream {
    uint64_t cursor;           /* the last revision sent or skipped */
    unsigned kinds;            /* as in factsd_stream_query */
    bool started;              /* the preamble is out */
    bool ending;               /* end once the current event is out */
    bool heartbeat_due;        /* send a heartbeat when nothing else is due */
    bool sent_event;           /* a change or reset went out */
    uint64_t sent_id;          /* the last id written */
    char lit[FACTSD_STREAM_LINE]; /* a literal piece being written */
    size_t lit_len, lit_off;
    facts_history_entry *entry; /* the change being written, or NULL */
    size_t entry_off;
    size_t tail_off;           /* bytes of the "\n\n" after the entry written */
} factsd_stream;

/* Starts a stream at revision cursor (the client's Last-Event-ID, or the
 * latest revision for a new client) with the collection mask kinds. Never
 * fails. */
void factsd_stream_init(factsd_stream *s, uint64_t cursor, unsigned kinds);

/* Drops the entry reference s may hold. */
void factsd_stream_release(factsd_stream *s);

/* Writes up to max bytes of the stream into buf from history h and sets
 * *n to the count. In order: the preamble ("retry:", an id line with the
 * cursor, a comment naming the latest revision), then one event per change
 * after the cursor whose collection is wanted ("id: REV" and "data:
 * ENTRY"; reloads always), or a reset event ("event: reset", "id: LATEST",
 * data {"revision","detail"}) when the cursor is outside the history: at
 * the start the stream goes on from the latest revision, later it ends
 * after the reset (the reader fell too far behind); a heartbeat comment
 * when heartbeat_due is set and nothing else is due (with an id line when
 * the filter skipped changes since the last id). Returns
 * FACTSD_STREAM_MORE when *n > 0 or more can follow at once,
 * FACTSD_STREAM_IDLE when caught up (*n may be > 0), and FACTSD_STREAM_END
 * once everything is out after a reset that ends the stream. Never
 * fails. */
factsd_stream_state factsd_stream_produce(factsd_stream *s, facts_history *h, char *buf,
                                         size_t max, size_t *n);

#endif /* FACTSD_STREAM_H */
