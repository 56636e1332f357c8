#!/usr/bin/env python3
"""A soak of factsd: --connections keep-alive connections (default 256,
from 8 loopback addresses, so that the default per-address limit of 64
holds them) for --duration seconds, each a client of one kind:

  writer     on a record of its own: create it (201), change its title
             (PATCH, 200) a few times, delete it (204), again and again,
             paced to about 10 writes a second;
  long-poll  GET /v1/changes?since=N&wait=1, following the feed: 200 each
             time, revisions increasing;
  reader     GETs of collections, items and the summary, and conditional
             GETs (If-None-Match with the ETag it last got): 200 or 304.

The server has a token (a file of mode 600) and a --journal, and a history
of 200 changes: full, it holds about 200 KB, within the memory rule's floor
(the default of 10,000 would make the soak measure the history filling up). Every answer must be the status the client
asked for: zero others, zero broken connections. Afterwards every write
that was acknowledged must be visible (each writer's record as its last
acknowledged write left it, and the revision counting every acknowledged
write), and still there after a restart that replays the journal.

Memory: a warm-up of the same mix (--warmup seconds) on the same number of
connections, which are then closed; the RSS then is the start. The peak is
VmHWM over the soak; the end is the RSS once the soak's connections are
closed. The end must be within 10 % (plus 1 MiB) of the start (not checked
under AddressSanitizer, which keeps freed memory in quarantine).

usage: soak_test.py --factsd PATH --dataset article.json [--duration S]
                    [--connections N] [--warmup S] [--figures FILE]
"""
import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time

import common
from common import Server, check, figure

SOURCES = 8
HISTORY = 200
WRITERS = 8
LONG_POLLS = 24
WRITE_GAP_S = 0.1
TIMEOUT_S = 15.0
READ_TARGETS = ["/v1/events?limit=20", "/v1/actors/russia", "/v1/sources/article",
                "/v1/troop-estimates/summary", "/v1/events/shoigu-visit-pyongyang",
                "/v1/actors?limit=10", "/v1", "/healthz"]
AUTH = "Bearer " + common.TOKEN


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--factsd", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--figures", default="")
    a = p.parse_args()
    if a.connections < WRITERS + LONG_POLLS + 8:
        p.error(f"--connections: at least {WRITERS + LONG_POLLS + 8}")
    return a


class Tally:
    """What the clients saw."""

    def __init__(self):
        self.requests = 0
        self.statuses = {}
        self.unexpected = []     # (what was asked, status) beyond the first few
        self.unexpected_n = 0
        self.broken = 0          # connections that failed or timed out
        self.broken_what = []
        self.writes = 0          # acknowledged writes
        self.revisions = set()   # the revisions they made
        self.conditional = 0
        self.not_modified = 0
        self.polls = 0
        self.poll_changes = 0

    def saw(self, status, expected, what):
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status not in expected:
            self.unexpected_n += 1
            if len(self.unexpected) < 10:
                self.unexpected.append((what, status))
            return False
        return True


class Conn:
    """One keep-alive HTTP/1.1 connection from a source address."""

    def __init__(self, port, source):
        self.port = port
        self.source = source
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(self.source, 0))

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def request(self, method, target, headers=None, body=None):
        """Returns (status, headers with lower-case names, body); raises on
        a broken connection. Reopens a connection the server closed."""
        if self.writer is None:
            await self.open()
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            lines.append(f"Content-Length: {len(data)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError(f"closed before answering {method} {target}")
        status = int(status_line.split()[1])
        hdrs = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if method == "HEAD" or status in (204, 304):
            payload = b""
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            payload = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                payload += await self.reader.readexactly(size)
                await self.reader.readline()
        elif "content-length" in hdrs:
            payload = await self.reader.readexactly(int(hdrs["content-length"]))
        else:
            payload = await self.reader.read()
            self.close()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, payload


def event(slug, title):
    return {"slug": slug, "title": title, "type": "meeting", "status": "reported",
            "date": {"precision": "day", "from": "2024-06-19", "to": "2024-06-19",
                     "basis": "stated"},
            "participants": [{"actor": "kim-jong-un", "role": "host"}],
            "summary": "An event written by the soak test.",
            "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}]}


async def writer(conn, tally, stop, slug, state):
    """Creates, changes and deletes the record slug, over and over; state
    keeps what its last acknowledged write left (the title, or None)."""
    n = 0
    while not stop.is_set():
        n += 1
        if state["title"] is None:
            title = f"{slug} created {n}"
            method, target, body, ctype, want = "POST", "/v1/events", event(slug, title), \
                "application/json", 201
        elif n % 5 == 0:
            title = None
            method, target, body, ctype, want = "DELETE", f"/v1/events/{slug}", None, None, 204
        else:
            title = f"{slug} changed {n}"
            method, target, body, ctype, want = "PATCH", f"/v1/events/{slug}", \
                {"title": title}, "application/merge-patch+json", 200
        headers = {"Authorization": AUTH}
        if ctype:
            headers["Content-Type"] = ctype
        status, hdrs, _ = await conn.request(method, target, headers, body)
        if tally.saw(status, (want,), f"{method} {target}"):
            tally.writes += 1
            rev = int(hdrs.get("x-revision", "0"))
            tally.revisions.add(rev)
            state["title"] = title
            state["acked"] += 1
        await asyncio.sleep(WRITE_GAP_S)


async def long_poll(conn, tally, stop, since):
    while not stop.is_set():
        status, _, body = await conn.request("GET", f"/v1/changes?since={since}&wait=1")
        if not tally.saw(status, (200,), f"GET /v1/changes?since={since}"):
            return
        page = json.loads(body)
        revs = [c["revision"] for c in page["changes"]]
        if revs != sorted(revs) or (revs and revs[0] <= since) or page["next"] < since:
            tally.saw(-1, (), f"a change page out of order after {since}: {revs[:5]}")
            return
        tally.polls += 1
        tally.poll_changes += len(revs)
        since = page["next"]


async def reader(conn, tally, stop, k):
    etags = {}
    i = k
    while not stop.is_set():
        target = READ_TARGETS[i % len(READ_TARGETS)]
        i += 1
        headers = {}
        if target in etags and i % 2 == 0:
            headers["If-None-Match"] = etags[target]
            tally.conditional += 1
        status, hdrs, _ = await conn.request("GET", target, headers)
        if tally.saw(status, (200, 304) if headers else (200,), f"GET {target} {headers}"):
            if status == 304:
                tally.not_modified += 1
            if "etag" in hdrs:
                etags[target] = hdrs["etag"]
        await asyncio.sleep(0)


async def client(kind, port, source, tally, stop, arg):
    conn = Conn(port, source)
    try:
        if kind == "writer":
            await writer(conn, tally, stop, *arg)
        elif kind == "poll":
            await long_poll(conn, tally, stop, arg)
        else:
            await reader(conn, tally, stop, arg)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
        tally.broken += 1
        if len(tally.broken_what) < 5:
            tally.broken_what.append(f"{kind}: {type(e).__name__}: {e}")
    finally:
        conn.close()


async def mix(port, n, seconds, states, since):
    """Runs n clients for seconds; returns the tally."""
    tally = Tally()
    stop = asyncio.Event()
    tasks = []
    for i in range(n):
        source = f"127.0.0.{common.SPREAD_FIRST + i % SOURCES}"
        if i < WRITERS:
            kind, arg = "writer", (f"soak-writer-{i}", states[i])
        elif i < WRITERS + LONG_POLLS:
            kind, arg = "poll", since
        else:
            kind, arg = "reader", i
        tasks.append(asyncio.ensure_future(client(kind, port, source, tally, stop, arg)))
    await asyncio.sleep(seconds)
    stop.set()
    # Each client ends after its current request (a long-poll within its
    # wait of 1 s).
    done, pending = await asyncio.wait(tasks, timeout=TIMEOUT_S)
    for t in pending:
        t.cancel()
        tally.broken += 1
        tally.broken_what.append("a client still waiting for an answer at the end")
    return tally


def record_states(s, states):
    """Each writer's record as the server has it: title, or None if absent."""
    seen = []
    for i, _ in enumerate(states):
        status, _, body = s.request("GET", f"/v1/events/soak-writer-{i}")
        seen.append(json.loads(body)["title"] if status == 200 else
                    None if status == 404 else f"status {status}")
    return seen


def revision(s):
    status, _, body = s.request("GET", "/v1")
    return json.loads(body)["revision"] if status == 200 else None


def main():
    args = parse_args()
    common.raise_nofile(args.connections * 2 + 256)
    with tempfile.TemporaryDirectory(prefix="factsd-hostile-") as workdir:
        tok = os.path.join(workdir, "token")
        common.write_token(tok)
        data = os.path.join(workdir, "data.json")
        shutil.copy(args.dataset, data)
        server_args = ["--token-file", tok, "--journal", os.path.join(workdir, "journal"),
                       "--data", data, "--history", str(HISTORY)]
        s = Server(args.factsd, workdir, server_args, name="soak")
        states = [{"title": None, "acked": 0} for _ in range(WRITERS)]
        try:
            # Warm-up: the same mix.
            warm = asyncio.run(mix(s.port, args.connections, args.warmup, states, revision(s)))
            check(warm.unexpected_n == 0 and warm.broken == 0,
                  f"the warm-up sees only the statuses it asks for ({warm.unexpected}, "
                  f"{warm.broken_what})")
            s.settle(1, timeout=15)
            start_rss = s.rss_settled()
            s.peak_reset()
            rev0 = revision(s)
            acked0 = sum(st["acked"] for st in states)

            t0 = time.monotonic()
            tally = asyncio.run(mix(s.port, args.connections, args.duration, states, rev0))
            took = time.monotonic() - t0
            peak_rss = s.peak()
            left = s.settle(1, timeout=15)
            end_rss = s.rss_settled()

            # Lost writes: each record as its last acknowledged write left it,
            # and one revision for each acknowledged write.
            expected = [st["title"] for st in states]
            rev1 = revision(s)
            seen = record_states(s, states)
            acked = sum(st["acked"] for st in states) - acked0
            check(seen == expected, f"every acknowledged write is visible: {seen} != {expected}")
            check(rev1 == rev0 + acked and len(tally.revisions) == acked,
                  f"one revision for each of the {acked} acknowledged writes "
                  f"({rev0} -> {rev1}, {len(tally.revisions)} distinct)")
            check(tally.unexpected_n == 0,
                  f"no status the clients did not ask for ({tally.unexpected_n}: "
                  f"{tally.unexpected})")
            check(tally.broken == 0, f"no broken connection ({tally.broken}: "
                                     f"{tally.broken_what})")
            check(tally.not_modified > 0, f"conditional GETs got 304 ({tally.not_modified})")
            check(tally.writes > 0 and tally.polls > 0, "writes and long-polls were answered")
            check(left is not None and left <= 1, f"the soak's connections are gone ({left})")
            check(s.alive(), "factsd is still running")
        finally:
            s.stop()

        # A restart replays the journal: the same records, the same revision.
        s = Server(args.factsd, workdir, server_args, name="soak-restart")
        try:
            after = record_states(s, states)
            rev2 = revision(s)
            check(after == expected, f"after a restart every acknowledged write is still "
                                     f"there: {after} != {expected}")
            check(rev2 == rev1, f"after a restart the revision is the same ({rev1} -> {rev2})")
        finally:
            s.stop()

        statuses = {str(k): v for k, v in sorted(tally.statuses.items())}
        figure("soak", connections=args.connections, duration_s=round(took, 1),
               requests=tally.requests, requests_per_s=round(tally.requests / took),
               statuses=statuses, unexpected=tally.unexpected_n, broken=tally.broken,
               conditional=tally.conditional, not_modified=tally.not_modified,
               long_polls=tally.polls, changes_delivered=tally.poll_changes,
               writes=acked, writes_lost=sum(a != b for a, b in zip(seen, expected)) +
               sum(a != b for a, b in zip(after, expected)),
               rss_start_kib=start_rss, rss_peak_kib=peak_rss, rss_end_kib=end_rss,
               sanitized=s.sanitized)
        if s.sanitized:
            print(f"soak: RSS {start_rss} -> {end_rss} KiB not checked under AddressSanitizer")
        else:
            check(common.rss_back(start_rss, end_rss),
                  f"RSS flat: start {start_rss} KiB, peak {peak_rss} KiB, end {end_rss} KiB")
    return common.finish(args.figures)


if __name__ == "__main__":
    sys.exit(main())
