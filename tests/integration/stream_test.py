#!/usr/bin/env python3
"""Integration test of the event stream, GET /v1/stream: the real factsd
binary and raw sockets that read the text/event-stream as it comes. It
covers delivery of every write in order (ids are revisions, data the
/v1/changes entry), the collection filter, resuming with Last-Event-ID
(header, query, the header winning), the reset event at the start and for a
reader that fell behind the kept history, heartbeats, the stream cap, the
server noticing a client that closed while its stream or long-poll was
idle, bad parameters, HEAD, OPTIONS, CORS, HTTP/1.0 and shutdown with
streams open. Every response is recorded and checked against the OpenAPI
description at the end, like the other integration tests.

usage: stream_test.py --factsd PATH --openapi OPENAPI.json --record FILE
                      --node NODE --validator SCRIPT --dataset DATA.json
Talks only to 127.0.0.1. Exit status 0 only when every check passes.
"""
import http.client
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import traceback

import feed_test as feed
from feed_test import event, setup_dir
from harness import check, finish, parse_args, record

ARGS = None
SERVERS = []


class Server(feed.Server):
    """feed_test's server, remembered so that one a failed test left
    running is stopped (and its sanitizer report read) at the end."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.stopped = False
        SERVERS.append(self)

    def stop(self, *args, **kw):
        self.stopped = True
        return super().stop(*args, **kw)


def actor(slug, name):
    return {"slug": slug, "name": name, "kind": "person", "description": "A stream test actor.",
            "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}]}


class Block:
    """One server-sent event block: its fields, comment lines and raw text."""

    def __init__(self, text, at):
        self.text = text
        self.at = at  # time.monotonic() when its last byte arrived
        self.fields = {}
        self.comments = []
        for line in text.split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].lstrip(" "))
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data" and "data" in self.fields:
                value = self.fields["data"] + "\n" + value
            self.fields[name] = value

    def get(self, name):
        return self.fields.get(name)

    def data(self):
        return json.loads(self.fields["data"])

    @property
    def is_event(self):
        """An event a client dispatches: one with data (a block of an id,
        a retry or comments alone only sets the client's position)."""
        return "data" in self.fields

    def __repr__(self):
        return repr(self.text[:200])


class Stream:
    """A request over a raw socket whose response is read as it arrives:
    the head, then the body (chunked, close-delimited or sized), split into
    event blocks. Recorded for the OpenAPI check when closed."""

    def __init__(self, s, target="/v1/stream", headers=None, method="GET",
                 version="HTTP/1.1", rcvbuf=None, timeout=10):
        self.method, self.target = method, target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((s.host, s.port))
        lines = [f"{method} {target} {version}", f"Host: {s.host}:{s.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""        # received, not yet decoded
        self.body = b""       # the decoded body so far
        self.pos = 0          # bytes of body split into blocks
        self.marks = []       # (len(body), time.monotonic()) after each read
        self.ended = False    # the body is complete
        self.eof = False      # the server closed the connection
        self.framing_ok = True
        self.recorded = False
        self.status, self.headers = None, {}
        self.chunked, self.length = False, None
        self._head(time.monotonic() + timeout)

    def header(self, name):
        return self.headers.get(name.lower())

    def _fill(self, deadline):
        """Reads once; False on time-out or at the end of the connection."""
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            if self.status is not None and not self.chunked and self.length is None:
                self.ended = True  # close-delimited
            return False
        self.raw += b
        if self.status is not None:
            self._decode()
            self.marks.append((len(self.body), time.monotonic()))
        return True

    def _arrival(self, end):
        """When body byte end - 1 arrived."""
        for n, t in self.marks:
            if n >= end:
                return t
        return time.monotonic()

    def _head(self, deadline):
        while b"\r\n\r\n" not in self.raw:
            if not self._fill(deadline):
                raise RuntimeError(f"no response head for {self.target}: {self.raw[:200]!r}")
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            self.headers[name] = self.headers[name] + ", " + value \
                if name in self.headers else value
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if "content-length" in self.headers:
            self.length = int(self.headers["content-length"])
        if self.method == "HEAD" or self.status in (204, 304):
            self.length = 0
        self._decode()
        self.marks.append((len(self.body), time.monotonic()))

    def _decode(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            if self.length is not None and len(self.body) >= self.length:
                self.ended = True
            return
        while not self.ended:
            nl = self.raw.find(b"\r\n")
            if nl < 0:
                return
            try:
                size = int(self.raw[:nl].split(b";")[0], 16)
            except ValueError:
                self.framing_ok = False
                self.ended = True
                return
            if size == 0:
                if len(self.raw) < nl + 4:
                    return
                self.framing_ok = self.framing_ok and self.raw[nl + 2:nl + 4] == b"\r\n"
                self.raw = self.raw[nl + 4:]
                self.ended = True
                return
            if len(self.raw) < nl + 2 + size + 2:
                return
            self.body += self.raw[nl + 2:nl + 2 + size]
            self.framing_ok = self.framing_ok and \
                self.raw[nl + 2 + size:nl + 4 + size] == b"\r\n"
            self.raw = self.raw[nl + 4 + size:]

    def next_block(self, timeout=10):
        """The next event block, or None on time-out or at the end."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.body.find(b"\n\n", self.pos)
            if i >= 0:
                text = self.body[self.pos:i].decode()
                self.pos = i + 2
                return Block(text, self._arrival(i + 2))
            if self.ended or self.eof:
                return None
            if not self._fill(deadline) and time.monotonic() >= deadline:
                return None

    def next_event(self, timeout=10):
        """The next event block (the preamble and heartbeats are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.next_block(max(0.0, deadline - time.monotonic()))
            if b is None or b.is_event:
                return b

    def events(self, n, timeout=10):
        """Up to n events, fewer on time-out or at the end."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            b = self.next_event(max(0.0, deadline - time.monotonic()))
            if b is None:
                break
            out.append(b)
        return out

    def quiet(self, seconds):
        """True when no event (heartbeats at most) arrives for a while and
        the body does not end."""
        b = self.next_event(seconds)
        return b is None and not self.ended

    def read_to_end(self, timeout=10):
        """Reads until the body ends; returns whether it did."""
        deadline = time.monotonic() + timeout
        while not self.ended and not self.eof:
            if not self._fill(deadline) and time.monotonic() >= deadline:
                break
        return self.ended

    def close(self):
        if not self.recorded:
            self.recorded = True
            record(self.method, self.target, self.status, self.headers, self.body)
        self.sock.close()


def preamble_ok(st, revision):
    """The first block: the reconnection delay, the stream's starting
    position as an id, the latest revision as a comment."""
    return re.match(rb"retry: 2000\nid: [0-9]+\n: revision %d\n\n" % revision,
                    st.body) is not None


def changes(s, since):
    r = s.get(f"/v1/changes?since={since}&limit=500")
    return r.json()["changes"] if r.status == 200 else None


def accepted_within(open_fn, limit):
    """Repeats open_fn() (a status) until it is not 503; returns the seconds
    from the first try to the start of the one accepted, or None past
    limit."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        t = time.monotonic()
        if open_fn() != 503:
            return t - t0
        time.sleep(0.05)
    return None


# ----------------------------------------------------------------- tests

def test_delivery(s):
    rev0 = s.revision()
    st = Stream(s)
    check(st.status == 200, f"GET /v1/stream: 200 ({st.status})")
    check(st.header("Content-Type") == "text/event-stream",
          f"Content-Type: text/event-stream ({st.header('Content-Type')})")
    check(st.header("Cache-Control") == "no-cache", "Cache-Control: no-cache")
    check(st.header("X-Accel-Buffering") == "no", "X-Accel-Buffering: no")
    check(st.header("Access-Control-Allow-Origin") == "*", "CORS as for reads")
    check(st.chunked and st.header("Content-Length") is None, "a chunked body")
    pre = st.next_block(5)
    check(pre is not None and preamble_ok(st, rev0) and pre.get("retry") == "2000" and
          pre.get("id") == str(rev0) and pre.comments == [f"revision {rev0}"],
          f"the preamble: retry 2000 and the revision ({pre!r})")
    check(st.quiet(0.5), "nothing more while nothing changes")

    c = s.request("POST", "/v1/events", event("stream-one"))
    wrote_at = time.monotonic()
    check(c.status == 201, f"create: 201 ({c.status} {c.body[:200]})")
    eid = c.json()["id"]
    first = st.next_event(5)
    check(first is not None and first.at - wrote_at < 1.0,
          f"the create arrives within a second ({first!r})")
    u = s.request("PATCH", f"/v1/events/{eid}", {"title": "Retitled by the stream test"},
                  ctype="application/merge-patch+json")
    check(u.status == 200, f"PATCH: 200 ({u.status})")
    a = s.request("POST", "/v1/actors", actor("stream-person", "Stream Person"))
    check(a.status == 201, f"an actor: 201 ({a.status} {a.body[:200]})")
    d = s.request("DELETE", f"/v1/events/{eid}")
    check(d.status == 204, f"DELETE: 204 ({d.status})")
    got = ([first] if first is not None else []) + st.events(3, 5)
    want = changes(s, rev0)
    check(len(got) == 4 and want is not None and len(want) == 4,
          f"four writes, four events ({len(got)})")
    check([b.get("id") for b in got] == [str(rev0 + i) for i in range(1, 5)],
          f"ids are the revisions, in order: {[b.get('id') for b in got]}")
    check(all(b.get("event") is None for b in got), "change events are plain messages")
    check([b.data() for b in got] == want, "each data is the /v1/changes entry")
    check([b.data()["op"] for b in got] == ["create", "update", "create", "delete"],
          "create, update, delete in order")
    check(all(b.text == f"id: {w['revision']}\ndata: "
              + json.dumps(w, separators=(",", ":"), ensure_ascii=False)
              for b, w in zip(got, want)),
          "each event is exactly 'id: REV' and one compact 'data:' line")
    check(st.quiet(0.3), "nothing after the last write")
    check(st.framing_ok, "well-formed chunks")
    st.close()
    return rev0 + 4


def troop_estimate(slug):
    return {"slug": slug, "sender": "north-korea", "receiver": "russia", "low": 1, "high": 2,
            "unit": "troops", "kind": "additional", "certainty": "reported",
            "description": "An estimate written by the stream test.",
            "period": {"precision": "unknown", "basis": "unknown"},
            "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}]}


def test_filter(s):
    rev0 = s.revision()
    targets = {
        "actors": "/v1/stream?collection=actors",
        "events,actors": "/v1/stream?collection=events,actors",
        "encoded comma": "/v1/stream?collection=events%2Cactors",
        "troop-estimates,sources": "/v1/stream?collection=troop-estimates,sources",
        "sources": "/v1/stream?collection=sources",
    }
    streams = {k: Stream(s, t) for k, t in targets.items()}
    for k, st in streams.items():
        check(st.status == 200 and st.next_block(5) is not None, f"{k}: a stream opens")
    writes = [("/v1/events", event("stream-filter")),
              ("/v1/actors", actor("stream-filter-person", "Filter Person")),
              ("/v1/troop-estimates", troop_estimate("stream-filter-estimate")),
              ("/v1/events", event("stream-filter-two"))]
    for path, body in writes:
        r = s.request("POST", path, body)
        check(r.status == 201, f"POST {path}: 201 ({r.status} {r.body[:200]})")
    want = {"actors": [rev0 + 2], "events,actors": [rev0 + 1, rev0 + 2, rev0 + 4],
            "encoded comma": [rev0 + 1, rev0 + 2, rev0 + 4],
            "troop-estimates,sources": [rev0 + 3], "sources": []}
    for k, st in streams.items():
        got = st.events(len(want[k]), 5)
        ids = [int(b.get("id")) for b in got]
        check(ids == want[k], f"collection {k}: revisions {ids}, wanted {want[k]}")
        check(st.quiet(0.3), f"collection {k}: nothing else")
        st.close()

    # A reload names no collection: every filter lets it through, live. (A
    # reload only enters the feed when the data changed: compact, edit the
    # file, give it a later revision.)
    latest = rev0 + 4
    live = {k: Stream(s, t) for k, t in targets.items()}
    for k, st in live.items():
        check(st.status == 200 and st.next_block(5) is not None, f"{k}: a stream opens")
    check(s.request("POST", "/v1/admin/compact").status == 200, "compaction")
    data_path = os.path.join(s.workdir, "data.json")
    edited = json.loads(open(data_path).read())
    edited["actors"][0]["description"] = "Edited by the stream test."
    edited["revision"] = latest + 3
    with open(data_path, "w") as f:
        json.dump(edited, f)
    s.proc.send_signal(signal.SIGHUP)
    for k, st in live.items():
        b = st.next_event(5)
        check(b is not None and b.get("id") == str(latest + 3) and b.data()["op"] == "reload"
              and "collection" not in b.data(), f"collection {k}: the reload passes ({b!r})")
        st.close()
    return latest + 3


def test_resume(s):
    rev0 = s.revision()
    for i in range(3):
        check(s.request("POST", "/v1/events", event(f"stream-resume-{i}")).status == 201,
              "a write")
    latest = rev0 + 3

    def first_ids(headers=None, query="", n=3):
        st = Stream(s, "/v1/stream" + query, headers=headers)
        st.next_block(5)
        pre = preamble_ok(st, latest)
        ids = [int(b.get("id")) for b in st.events(n, 5)]
        st.close()
        return st.status, pre, ids

    status, pre, ids = first_ids({"Last-Event-ID": str(rev0)})
    check(status == 200 and pre and ids == [rev0 + 1, rev0 + 2, rev0 + 3],
          f"Last-Event-ID header: the changes after it ({status} {ids})")
    status, pre, ids = first_ids(query=f"?last-event-id={rev0 + 1}", n=2)
    check(status == 200 and pre and ids == [rev0 + 2, rev0 + 3],
          f"last-event-id query: the changes after it ({status} {ids})")
    status, pre, ids = first_ids({"Last-Event-ID": str(rev0 + 2)},
                                 f"?last-event-id={rev0}", n=1)
    check(ids == [rev0 + 3], f"the header wins over the query ({ids})")
    status, pre, ids = first_ids({"Last-Event-ID": ""}, f"?last-event-id={rev0 + 2}", n=1)
    check(status == 200 and ids == [rev0 + 3],
          f"an empty header leaves the query's position ({status} {ids})")
    status, pre, ids = first_ids({"Last-Event-ID": str(rev0)}, "?collection=actors", n=1)
    check(status == 200 and ids == [], f"the filter applies to what is resumed ({ids})")

    # resuming at the latest revision: nothing, then what comes
    st = Stream(s, headers={"Last-Event-ID": str(latest)})
    st.next_block(5)
    check(st.quiet(0.5), "resumed at the latest revision: nothing yet")
    s.request("POST", "/v1/events", event("stream-resume-next"))
    b = st.next_event(5)
    check(b is not None and b.get("id") == str(latest + 1),
          f"then the next change ({b!r})")
    st.close()


def test_reset_at_start(root):
    s, rev0, latest = feed.server_past_history(root, "reset", Server)

    st = Stream(s, headers={"Last-Event-ID": str(latest - 3)})
    got = st.events(3, 5)
    check([int(b.get("id")) for b in got] == [latest - 2, latest - 1, latest] and
          all(b.get("event") is None for b in got),
          f"the oldest position kept still resumes ({[b.text[:40] for b in got]})")
    st.close()

    for what, hdrs, query in (("too old", {"Last-Event-ID": str(latest - 4)}, ""),
                              ("too old (query)", None, "?last-event-id=0"),
                              ("newer than the latest", {"Last-Event-ID": str(latest + 5)}, "")):
        st = Stream(s, "/v1/stream" + query, headers=hdrs)
        b = st.next_event(5)
        check(st.status == 200 and preamble_ok(st, latest),
              f"{what}: 200 and the preamble ({st.status})")
        check(b is not None and b.get("event") == "reset" and b.get("id") == str(latest),
              f"{what}: a reset event with the latest revision as id ({b!r})")
        if b is not None and b.get("data") is not None:
            data = b.data()
            check(set(data) == {"revision", "detail"} and data["revision"] == latest and
                  "reload" in data["detail"], f"{what}: reset data {data}")
            check("ends here" not in data["detail"], f"{what}: the stream goes on")
        check(st.quiet(0.3), f"{what}: nothing after the reset")
        c = s.request("POST", "/v1/events", event(f"stream-reset-after-{latest}"))
        latest += 1
        n = st.next_event(5)
        check(c.status == 201 and n is not None and n.get("id") == str(latest) and
              n.get("event") is None and n.data()["op"] == "create",
              f"{what}: the stream goes on with the next change ({n!r})")
        check(not st.ended, f"{what}: and stays open")
        st.close()
    check(s.stop() == 0, "exit 0")


def test_heartbeat(root):
    d = setup_dir(root, "heartbeat")
    s = Server(d, ["--heartbeat", "1"])
    st = Stream(s)
    t0 = time.monotonic()
    st.next_block(5)
    b1 = st.next_block(5)
    check(b1 is not None and b1.text == ": heartbeat" and 0.7 <= b1.at - t0 <= 2.0,
          f"--heartbeat 1: a heartbeat comment within 2 s "
          f"({b1!r} after {(b1.at - t0) if b1 else -1:.3f}s)")
    b2 = st.next_block(5)
    check(b2 is not None and b2.text == ": heartbeat" and b1 is not None and
          b2.at - b1.at <= 2.0, "and the next one within 2 s of it")
    # a change resets the silence
    time.sleep(0.6)
    s.request("POST", "/v1/events", event("stream-heartbeat"))
    e = st.next_block(5)
    h = st.next_block(5)
    check(e is not None and e.get("id") is not None and h is not None and
          h.text == ": heartbeat" and 0.7 <= h.at - e.at <= 2.0,
          f"the heartbeat counts from the last thing sent "
          f"({(h.at - e.at) if h and e else -1:.3f}s)")
    st.close()
    # A filtered stream's position moves with the changes it skips: its
    # next heartbeat carries the id, so a reconnect resumes from there.
    st = Stream(s, "/v1/stream?collection=actors")
    pre = st.next_block(5)
    rev = s.revision()
    check(s.request("POST", "/v1/events", event("stream-heartbeat-skip")).status == 201,
          "a write the filter skips")
    h = st.next_block(5)
    check(pre is not None and pre.get("id") == str(rev) and h is not None and
          h.comments == ["heartbeat"] and h.get("id") == str(rev + 1) and not h.is_event,
          f"the heartbeat after a skipped change carries its id ({pre!r} {h!r})")
    h = st.next_block(5)
    check(h is not None and h.text == ": heartbeat", f"the next one does not ({h!r})")
    st.close()
    check(s.stop() == 0, "exit 0")

    d = setup_dir(root, "heartbeat-default")
    s = Server(d, ["--timeout", "3"])
    st = Stream(s)
    t0 = time.monotonic()
    st.next_block(5)
    b = st.next_block(6)
    check(b is not None and b.text == ": heartbeat" and 1.5 <= b.at - t0 <= 3.0,
          f"--timeout 3: a heartbeat after two thirds of it "
          f"({(b.at - t0) if b else -1:.3f}s)")
    st.close()
    check(s.stop() == 0, "exit 0")


def test_slow_reader(root):
    """A reader that does not read while the history turns over is dropped
    after a reset: the events it got are consecutive, the reset names the
    latest revision of the moment it noticed, and the chunked body ends."""
    d = setup_dir(root, "slow")
    s = Server(d, ["--history", "4", "--max-body", "300000", "--timeout", "60"])
    rev0 = s.revision()
    st = Stream(s, rcvbuf=4096)
    st.next_block(5)
    check(preamble_ok(st, rev0), "the slow reader's preamble")
    big = event("stream-slow")
    big["summary"] = "s" * 60000
    c = s.request("POST", "/v1/events", big)
    check(c.status == 201, f"a large event ({c.status} {c.body[:200]})")
    eid = c.json()["id"]
    writes = 80
    for i in range(writes):
        r = s.request("PATCH", f"/v1/events/{eid}", {"summary": "abcdefghij"[i % 10] * 60000},
                      ctype="application/merge-patch+json")
        if not check(r.status == 200, f"PATCH {i}: 200 ({r.status})"):
            break
    latest = rev0 + 1 + writes
    check(s.revision() == latest, "every write went through")
    got = []
    while True:
        b = st.next_event(20)
        if b is None:
            break
        got.append(b)
    check(st.ended and st.framing_ok, f"the chunked body ends ({st.ended}, eof {st.eof})")
    changes_got = [b for b in got if b.get("event") is None]
    ids = [int(b.get("id")) for b in changes_got]
    check(len(ids) >= 1 and ids == list(range(rev0 + 1, rev0 + 1 + len(ids))),
          f"the changes it got are consecutive from the first ({ids[:3]}..{ids[-3:]})")
    check(len(ids) < writes, f"it fell behind ({len(ids)} of {writes + 1})")
    check(all(b.data()["revision"] == i for b, i in zip(changes_got, ids)),
          "each data has its own revision")
    # The reset names the latest revision when the stream noticed it fell
    # behind: past what the history still held for it, at most the last write.
    last = got[-1] if got else None
    reset_id = int(last.get("id")) if last is not None and last.get("id") else -1
    check(last is not None and last.get("event") == "reset" and
          ids and ids[-1] + 4 < reset_id <= latest,
          f"then a reset naming a revision the reader cannot resume from ({last!r})")
    check(len(got) == len(changes_got) + 1, "one reset, and it is the last event")
    if last is not None and last.get("event") == "reset":
        data = last.data()
        check(data["revision"] == reset_id and "fell behind" in data["detail"],
              f"the reset says the stream fell behind ({data})")
    # the connection outlives the stream
    st.sock.sendall(f"GET /v1 HTTP/1.1\r\nHost: {s.host}:{s.port}\r\n\r\n".encode())
    st.sock.settimeout(5)
    try:
        again = st.sock.recv(100)
    except OSError:
        again = b""
    check(again.startswith(b"HTTP/1.1 200 "), f"the connection serves another request "
                                               f"({again[:40]!r})")
    st.close()
    check(s.stop() == 0, "exit 0")


def test_cap_and_disconnect(root):
    d = setup_dir(root, "cap")
    s = Server(d, ["--max-streams", "1", "--max-waiters", "1", "--heartbeat", "30"])
    # requests that are not streams hold no slot
    for _ in range(3):
        h = Stream(s, method="HEAD")
        check(h.status == 200 and h.header("Content-Type") == "text/event-stream" and
              h.body == b"", f"HEAD: 200, the stream's headers, no body ({h.status})")
        h.close()
        time.sleep(0.2)
    r = s.get("/v1/stream?collection=bogus")
    check(r.status == 400, f"a 400 ({r.status})")
    # (a HEAD counts against the cap until its response is done: a moment)
    time.sleep(0.2)

    st = Stream(s)
    check(st.status == 200 and st.next_block(5) is not None,
          f"the first stream opens ({st.status})")
    time.sleep(0.3)
    r = s.get("/v1/stream", timeout=10)
    check(r.status == 503 and r.header("Retry-After") == "1" and
          r.header("Content-Type") == "application/problem+json",
          f"over --max-streams: 503 with Retry-After ({r.status})")
    if r.status == 503:
        b = r.json()
        check(b.get("type") == "urn:factsd:problem:unavailable" and b.get("status") == 503 and
              "stream" in b.get("detail", ""), f"an unavailable problem: {b}")
    r = s.get("/v1/changes?since=0&wait=0", timeout=10)
    check(r.status in (200, 410), f"the stream cap is not the waiter cap ({r.status})")

    # the idle stream's client goes away: its slot is free at once
    st.sock.close()
    st.recorded = True

    def open_stream():
        nonlocal st
        st = Stream(s)
        if st.status != 200:
            st.close()
        return st.status

    took = accepted_within(open_stream, 10)
    check(took is not None and took < 2.0,
          f"a stream after the first client left is accepted at once ({took}s)")
    if st.status == 200:
        st.close()

    # the same for a long-poll
    rev = s.revision()
    waiter = socket.create_connection((s.host, s.port), timeout=10)
    waiter.sendall(f"GET /v1/changes?since={rev}&wait=60 HTTP/1.1\r\n"
                   f"Host: {s.host}:{s.port}\r\n\r\n".encode())
    time.sleep(0.5)
    r = s.get(f"/v1/changes?since={rev}&wait=60", timeout=10)
    check(r.status == 503, f"over --max-waiters: 503 ({r.status})")
    waiter.close()
    took = accepted_within(lambda: s.get(f"/v1/changes?since={rev}&wait=1", timeout=10).status,
                           10)
    check(took is not None and took < 2.0,
          f"a long-poll after the first client left is accepted at once ({took}s)")
    check(s.stop() == 0, "exit 0")


def test_bad_params(s):
    cases = [
        ("?collection=bogus", None, "collection"),
        ("?collection=", None, "collection"),
        ("?collection", None, "collection"),
        ("?collection=events,", None, "collection"),
        ("?collection=,events", None, "collection"),
        ("?collection=troop_estimates", None, "collection"),
        ("?collection=events&collection=actors", None, "collection"),
        ("?last-event-id=abc", None, "last-event-id"),
        ("?last-event-id=-1", None, "last-event-id"),
        ("?last-event-id=1.5", None, "last-event-id"),
        ("?last-event-id=99999999999999999999", None, "last-event-id"),
        ("?last-event-id=1&last-event-id=2", None, "last-event-id"),
        ("?since=1", None, "since"),
        ("?bogus=1", None, "bogus"),
        ("?" + "&".join(["pretty"] * 17), None, "query"),
        ("?%FF=1", None, "query"),   # a name that is not UTF-8
        ("?%C3=1", None, "query"),
        ("", {"Last-Event-ID": "abc"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "-3"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "9223372036854775808"}, "Last-Event-ID"),
        ("?last-event-id=1", {"Last-Event-ID": "x"}, "Last-Event-ID"),
    ]
    for q, hdrs, name in cases:
        r = s.get(f"/v1/stream{q}", headers=hdrs)
        ok = r.status == 400 and r.header("Content-Type") == "application/problem+json"
        names = []
        if ok:
            b = r.json()
            names = [p["name"] for p in b.get("invalid-params", [])]
            ok = b.get("type") == "urn:factsd:problem:invalid-parameters" and name in names
        check(ok, f"400 naming {name} for /v1/stream{q} {hdrs or ''} "
                  f"({r.status} {r.body[:200]})")
        check(r.header("Access-Control-Allow-Origin") == "*", f"a 400 has CORS ({q})")
    r = s.get("/v1/stream?collection=bogus&last-event-id=x")
    names = [p["name"] for p in r.json().get("invalid-params", [])] if r.status == 400 else []
    check(sorted(names) == ["collection", "last-event-id"], f"both are named: {names}")
    st = Stream(s, "/v1/stream?pretty&collection=events,actors,troop-estimates,sources")
    check(st.status == 200, f"pretty and every collection are accepted ({st.status})")
    st.close()


def test_head_options(s):
    h = Stream(s, method="HEAD")
    check(h.status == 200 and h.header("Content-Type") == "text/event-stream" and
          h.header("Cache-Control") == "no-cache" and
          h.header("Access-Control-Allow-Origin") == "*",
          f"HEAD /v1/stream: 200 with the stream's headers ({h.status} {h.headers})")
    # Not chunked (libmicrohttpd would send a last-chunk even to a HEAD),
    # and the connection closes.
    check(h.header("Connection") == "close" and h.header("X-Content-Type-Options") == "nosniff"
          and h.header("Transfer-Encoding") is None,
          f"HEAD /v1/stream: not chunked, and it closes its connection ({h.headers})")
    h.sock.settimeout(5)
    rest = b""
    try:
        while True:
            got = h.sock.recv(4096)
            if not got:
                break
            rest += got
    except OSError as e:
        rest += f"<{e}>".encode()
    check(rest == b"", f"and sends nothing after the head ({rest!r})")
    h.close()

    r = s.request("OPTIONS", "/v1/stream",
                  headers={"Origin": "https://x.example", "Access-Control-Request-Method": "GET"})
    check(r.status == 204 and r.header("Allow") == "GET, HEAD, OPTIONS" and
          r.header("Access-Control-Allow-Origin") == "*" and
          r.header("Access-Control-Allow-Methods") == "GET, HEAD, OPTIONS",
          f"a preflight of /v1/stream ({r.status} {r.headers})")
    # A fetch-based EventSource (the npm eventsource package in a page, for
    # one) sends Last-Event-ID as a request header when it reconnects: across
    # origins the browser asks for it in a preflight first.
    r = s.request("OPTIONS", "/v1/stream",
                  headers={"Origin": "https://x.example", "Access-Control-Request-Method": "GET",
                           "Access-Control-Request-Headers": "last-event-id"})
    allowed = [x.strip().lower() for x in
               (r.header("Access-Control-Allow-Headers") or "").split(",")]
    check(r.status == 204 and r.header("Access-Control-Allow-Origin") == "*",
          f"a preflight asking for Last-Event-ID: 204 ({r.status})")
    check("last-event-id" in allowed,
          f"the preflight of /v1/stream allows the Last-Event-ID request header "
          f"(Access-Control-Allow-Headers: {r.header('Access-Control-Allow-Headers')})")
    r = s.request("OPTIONS", "/v1/stream")
    check(r.status == 204 and r.header("Allow") == "GET, HEAD, OPTIONS",
          f"OPTIONS /v1/stream names its methods ({r.status})")
    r = s.request("POST", "/v1/stream", body={})
    check(r.status == 405 and r.header("Allow") == "GET, HEAD, OPTIONS",
          f"POST /v1/stream: 405 ({r.status})")


def test_cors(root):
    d = setup_dir(root, "cors")
    s = Server(d, ["--cors-origin", "https://a.example"])

    def vary_origin(v):
        return v is not None and "origin" in [x.strip().lower() for x in v.split(",")]

    st = Stream(s, headers={"Origin": "https://a.example"})
    check(st.status == 200 and st.header("Access-Control-Allow-Origin") == "https://a.example"
          and vary_origin(st.header("Vary")) and
          st.header("Access-Control-Expose-Headers") is not None,
          f"an allowed origin is echoed, with Vary: Origin ({st.headers})")
    st.close()
    st = Stream(s, headers={"Origin": "https://b.example"})
    check(st.status == 200 and st.header("Access-Control-Allow-Origin") is None and
          vary_origin(st.header("Vary")),
          f"another origin: no Access-Control-Allow-Origin, Vary: Origin ({st.headers})")
    st.close()
    st = Stream(s)
    check(st.status == 200 and st.header("Access-Control-Allow-Origin") is None and
          vary_origin(st.header("Vary")), f"no origin: Vary: Origin ({st.headers})")
    st.close()
    r = s.request("OPTIONS", "/v1/stream", headers={"Origin": "https://a.example",
                                                    "Access-Control-Request-Method": "GET"})
    check(r.status == 204 and r.header("Access-Control-Allow-Origin") == "https://a.example" and
          vary_origin(r.header("Vary")), f"the preflight echoes the allowed origin ({r.headers})")
    r = s.request("OPTIONS", "/v1/stream", headers={"Origin": "https://b.example",
                                                    "Access-Control-Request-Method": "GET"})
    check(r.status == 204 and r.header("Access-Control-Allow-Origin") is None,
          f"and not another one ({r.headers})")
    r = s.get("/v1/stream?collection=x", headers={"Origin": "https://a.example"})
    check(r.status == 400 and r.header("Access-Control-Allow-Origin") == "https://a.example",
          "a 400 of the stream echoes the allowed origin too")
    check(s.stop() == 0, "exit 0")


def test_shutdown(root):
    """Streams open at SIGTERM end: the chunked body terminates, the
    HTTP/1.0 one is closed after whole events; the server exits 0 soon."""
    d = setup_dir(root, "shutdown")
    s = Server(d, [])
    rev0 = s.revision()
    old = Stream(s, version="HTTP/1.0")
    check(old.status == 200 and old.status_line.startswith("HTTP/1.") and not old.chunked and
          old.header("Content-Length") is None,
          f"HTTP/1.0: 200, a close-delimited body ({old.status_line} {old.headers})")
    check(old.next_block(5) is not None and preamble_ok(old, rev0), "HTTP/1.0: the preamble")
    streams = [Stream(s) for _ in range(3)]
    streams.append(Stream(s, "/v1/stream?collection=actors"))
    for st in streams:
        st.next_block(5)
    check(s.request("POST", "/v1/events", event("stream-shutdown")).status == 201, "a write")
    b = old.next_event(5)
    check(b is not None and b.get("id") == str(rev0 + 1), f"HTTP/1.0: the event ({b!r})")
    for st in streams[:3]:
        e = st.next_event(5)
        check(e is not None and e.get("id") == str(rev0 + 1), "the event on every stream")
    time.sleep(0.3)  # all idle again
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    for st in streams:
        check(st.read_to_end(5) and st.framing_ok and st.body.endswith(b"\n\n"),
              f"SIGTERM ends an open stream's chunked body ({st.ended} {st.body[-40:]!r})")
        st.close()
    old.read_to_end(5)
    check(old.eof and old.ended and old.body.endswith(b"\n\n"),
          f"SIGTERM closes an HTTP/1.0 stream after whole events ({old.body[-40:]!r})")
    old.close()
    rc = s.stop(timeout=15)
    took = time.monotonic() - t0
    check(rc == 0, f"SIGTERM with streams open: exit 0 ({rc})")
    check(took < 3.0, f"promptly ({took:.3f}s)")


def run(test, arg):
    """Runs one test; an exception (a server that went away, say) fails it
    and the others still run."""
    try:
        test(arg)
    except Exception:  # noqa: BLE001 - any error is this test's failure
        check(False, f"{test.__name__} raised:\n{traceback.format_exc()}")


def main():
    global ARGS
    ARGS = parse_args()
    feed.ARGS = ARGS
    with tempfile.TemporaryDirectory(prefix="factsd-stream-") as root:
        d = setup_dir(root, "main")
        s = Server(d, [])
        # the validator's self-test drifts an event, an event page and a 400
        s.get("/v1/events/shoigu-visit-pyongyang")
        s.get("/v1/events?limit=3")
        for test in (test_delivery, test_filter, test_resume, test_bad_params,
                     test_head_options):
            run(test, s)
        check(s.stop() == 0, "SIGTERM: exit 0")
        for test in (test_reset_at_start, test_heartbeat, test_slow_reader,
                     test_cap_and_disconnect, test_cors, test_shutdown):
            run(test, root)
        for srv in SERVERS:
            if not srv.stopped:
                rc = srv.stop()
                check(False, f"a server left running by a failed test exited {rc}: "
                             f"{srv.stderr()[-3000:]}")
    return finish(ARGS)


if __name__ == "__main__":
    sys.exit(main())
