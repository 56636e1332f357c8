#!/usr/bin/env python3
"""Integration test of read replicas (factsd --follow URL) against a real
primary with a token and a journal: the flags a replica refuses; a replica
whose primary is down does not listen until it has a snapshot; every write
on the primary reaches the replica with the same revision, the same change
entries (long-poll and event stream included) and the same ETags; writes
sent to a replica get 403 naming the primary; a replica whose position left
the primary's history takes a snapshot; with the primary killed (-9) it
keeps serving, its lag grows past --max-lag and /readyz says 503, then it
converges when the primary is back, no revision lost or repeated; a
primary that comes back behind the replica is never followed backwards.
/v1/snapshot loads as a dataset file. Every response is recorded and
checked against the OpenAPI description at the end.

usage: replica_test.py --factsd PATH --openapi OPENAPI.json --record FILE
                       --node NODE --validator SCRIPT --dataset DATA.json
Talks only to 127.0.0.1.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import Factsd, check, finish, free_port, http_request, parse_args, wait_until

TOKEN = "replica-test-token-0123456789abcdef"
ARGS = None
PROCS = []


def request(port, method, target, headers=None, body=None, token=False, timeout=20,
            content_type="application/json"):
    return http_request(port, method, target, headers, body, TOKEN if token else None,
                        timeout, content_type)


class Server(Factsd):
    """A factsd of this test (stopped at the end whatever happens)."""

    def __init__(self, args, env=None):
        super().__init__(ARGS.factsd, args, env, wait=False)
        PROCS.append(self.proc)

    def log(self):
        return self.text()


def primary(tmp, port=0, journal=True, history=None):
    args = ["--listen", f"127.0.0.1:{port}", "--threads", "2", "--token-file", tmp + "/token"]
    if journal:
        args += ["--journal", tmp + "/journal"]
    if history is not None:
        args += ["--history", str(history)]
    return Server(args).wait_listening()


def replica(url, extra=()):
    return Server(["--follow", url, "--listen", "127.0.0.1:0", "--threads", "2"] +
                  list(extra)).wait_listening()


def revision(port):
    return request(port, "GET", "/v1").json()["revision"]


def scrape(port):
    samples = {}
    for line in request(port, "GET", "/metrics").body.decode().split("\n"):
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            samples[k] = float(v)
    return samples


ACTOR = {"slug": "replica-test-actor", "name": "Replica test actor",
         "kind": "intelligence-community", "country": "united-states",
         "description": "An actor the replica test writes.",
         "evidence": [{"source": "article", "paragraph": 5, "sentence": 1,
                       "phrase": "intelligence reports from American"}]}


def write_patch(port, n):
    r = request(port, "PATCH", "/v1/actors/replica-test-actor", body={"name": f"Name {n}"},
                token=True, content_type="application/merge-patch+json")
    return r


def same_everywhere(p, r, targets):
    """Each target answers the same body and ETag on both."""
    ok = True
    for t in targets:
        a, b = request(p, "GET", t), request(r, "GET", t)
        ok &= check(a.status == b.status == 200 and a.body == b.body and
                    a.header("etag") == b.header("etag"),
                    f"{t}: primary and replica differ ({a.status} {a.header('etag')} / "
                    f"{b.status} {b.header('etag')})")
    return ok


def test_flags():
    for extra, env in ((["--data", ARGS.dataset], None), (["--journal", "/tmp/x"], None),
                       (["--token-file", "/tmp/x"], None), (["--compact"], None),
                       ([], {"FACTSD_TOKEN": TOKEN})):
        e = dict(os.environ)
        e.update(env or {})
        rc = subprocess.run([ARGS.factsd, "--follow", "http://127.0.0.1:1"] + extra,
                            capture_output=True, text=True, env=e, timeout=10)
        check(rc.returncode == 2 and "--follow cannot go with" in rc.stderr,
              f"--follow with {extra or env}: {rc.returncode} {rc.stderr[:200]}")
    for bad in ("ftp://x", "http://", "http://h/a?b=1", "http://us@er:h", "http://h h", "x"):
        rc = subprocess.run([ARGS.factsd, "--follow", bad], capture_output=True, text=True,
                            timeout=10)
        check(rc.returncode == 2 and "--follow" in rc.stderr, f"--follow {bad!r} accepted")


def test_snapshot(p, tmp):
    s = request(p, "GET", "/v1/snapshot")
    check(s.status == 200 and s.header("content-type") == "application/json",
          f"snapshot: {s.status}")
    d = s.json()
    check(d["revision"] == revision(p) and s.header("x-revision") == str(d["revision"]),
          "snapshot: its revision is the primary's")
    check(len(d["actors"]) == request(p, "GET", "/v1/actors?limit=1").json()["total"],
          "snapshot: every actor")
    etag = s.header("etag")
    check(request(p, "GET", "/v1/snapshot", {"If-None-Match": etag}).status == 304,
          "snapshot: If-None-Match gives 304")
    g = request(p, "GET", "/v1/snapshot", {"Accept-Encoding": "gzip"})
    check(g.header("content-encoding") == "gzip" and g.body == s.body,
          "snapshot: gzip decodes to the same bytes")
    h = request(p, "HEAD", "/v1/snapshot")
    check(h.status == 200 and h.raw == b"" and h.header("etag") == etag, "snapshot: HEAD")
    check(request(p, "GET", "/v1/snapshot?limit=1").status == 400,
          "snapshot: an unknown parameter is 400")
    check(request(p, "POST", "/v1/snapshot", token=True).status == 405, "snapshot: POST 405")
    # A snapshot is a dataset file.
    path = tmp + "/snapshot.json"
    with open(path, "wb") as f:
        f.write(s.body)
    other = Server(["--listen", "127.0.0.1:0", "--data", path]).wait_listening()
    check(revision(other.port) == d["revision"], "snapshot: loads with --data at its revision")
    same_everywhere(p, other.port, ["/v1/actors", "/v1/events", "/v1/snapshot"])
    other.stop()


def test_waits_for_primary(tmp):
    """A replica of a primary that is not up yet does not listen; it starts
    once the primary answers."""
    port = free_port()
    r = Server(["--follow", f"http://127.0.0.1:{port}", "--listen", "127.0.0.1:0"])
    time.sleep(1.0)
    check(r.proc.poll() is None, "replica without a primary: it waits (does not exit)")
    check("Couldn't connect" in r.log() or "Failed to connect" in r.log(),
          f"replica without a primary: says why: {r.log()[:300]}")
    p = primary(tmp, port=port, journal=False)
    t0 = time.monotonic()
    r.wait_listening()
    check(time.monotonic() - t0 < 8, "replica: listens within the backoff once the primary is up")
    check(request(r.port, "GET", "/readyz").status == 200, "replica: ready after its snapshot")
    r.stop()
    p.stop()


def test_follow(tmp):
    p = primary(tmp, history=5)
    url = f"http://127.0.0.1:{p.port}"
    test_snapshot(p.port, tmp)
    r = replica(url, ["--max-lag", "2"])
    check(revision(r.port) == revision(p.port), "replica: starts at the primary's revision")
    ready = request(r.port, "GET", "/readyz")
    check(ready.status == 200 and ready.json()["revision"] == revision(p.port), "replica: ready")
    base = revision(p.port)

    # A long-poll and a stream on the replica see the primary's write.
    got = {}

    def poll():
        got["poll"] = request(r.port, "GET", f"/v1/changes?since={base}&wait=10", timeout=15)

    def stream():
        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=15)
        conn.request("GET", f"/v1/stream?last-event-id={base}")
        resp = conn.getresponse()
        buf = b""
        while True:
            line = resp.fp.readline()
            if not line:
                break
            buf += line
            if line.startswith(b"data: ") and b'"op":"create"' in line:
                break
        got["stream"] = buf
        conn.close()

    threads = [threading.Thread(target=poll), threading.Thread(target=stream)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    c = request(p.port, "POST", "/v1/actors", body=ACTOR, token=True)
    check(c.status == 201, f"create on the primary: {c.status} {c.body[:200]}")
    for t in threads:
        t.join(20)
    pr = got.get("poll")
    check(pr is not None and pr.status == 200 and pr.json()["changes"] and
          pr.json()["changes"][0]["revision"] == base + 1 and
          pr.json()["changes"][0]["op"] == "create",
          "replica: a held long-poll answers with the primary's create")
    check(f"id: {base + 1}\ndata: ".encode() in got.get("stream", b""),
          f"replica: its stream carries the create: {got.get('stream', b'')[:300]!r}")

    # Updates (PATCH and PUT) and a delete, then a create again.
    for n in range(3):
        check(write_patch(p.port, n).status == 200, "patch on the primary")
    rec = request(p.port, "GET", "/v1/actors/replica-test-actor").json()
    rec["description"] = "Replaced whole."
    check(request(p.port, "PUT", "/v1/actors/replica-test-actor", body=rec,
                  token=True).status == 200, "put on the primary")
    check(request(p.port, "DELETE", "/v1/actors/replica-test-actor", token=True).status == 204,
          "delete on the primary")
    check(request(p.port, "POST", "/v1/actors", body=ACTOR, token=True).status == 201,
          "create again on the primary")
    want = revision(p.port)
    check(wait_until(lambda: revision(r.port) == want), f"replica reaches revision {want}")
    # (The primary keeps the last 5 changes.)
    feed_p = request(p.port, "GET", f"/v1/changes?since={want - 5}").body
    feed_r = request(r.port, "GET", f"/v1/changes?since={want - 5}").body
    check(feed_p == feed_r, "replica: /v1/changes is the primary's, byte for byte")
    feed_r = request(r.port, "GET", f"/v1/changes?since={base}").body
    revs = [e["revision"] for e in json.loads(feed_r)["changes"]]
    check(revs == list(range(base + 1, want + 1)), f"replica: revisions in order {revs}")
    same_everywhere(p.port, r.port, ["/v1", "/v1/actors", "/v1/actors/replica-test-actor",
                                     "/v1/events?limit=3", "/v1/troop-estimates/summary",
                                     "/v1/events/" + request(p.port, "GET", "/v1/events?limit=1")
                                     .json()["items"][0]["slug"],
                                     "/v1/snapshot", "/healthz"])
    # A cursor from the primary pages the replica the same way.
    page = request(p.port, "GET", "/v1/actors?limit=4").json()
    nxt = f"/v1/actors?limit=4&cursor={page['next']}"
    same_everywhere(p.port, r.port, [nxt])

    # Writes to the replica are refused, naming the primary.
    for method, target, body in (("POST", "/v1/actors", ACTOR),
                                 ("PATCH", "/v1/actors/replica-test-actor", {"name": "x"}),
                                 ("PUT", "/v1/actors/replica-test-actor", ACTOR),
                                 ("DELETE", "/v1/actors/replica-test-actor", None),
                                 ("POST", "/v1/admin/compact", None)):
        w = request(r.port, method, target, body=body, token=True,
                    content_type="application/merge-patch+json" if method == "PATCH"
                    else "application/json")
        j = w.json() if w.body else {}
        check(w.status == 403 and j.get("type") == "urn:factsd:problem:read-only" and
              j.get("primary") == url, f"{method} {target} on the replica: {w.status} {j}")
    check(revision(r.port) == want, "replica: refused writes change nothing")

    # Out of the primary's history (5 kept): the replica takes a snapshot.
    r.proc.send_signal(signal.SIGSTOP)
    for n in range(8):
        write_patch(p.port, 10 + n)
    r.proc.send_signal(signal.SIGCONT)
    want = revision(p.port)
    check(wait_until(lambda: revision(r.port) == want, 8),
          f"replica behind the history: reaches {want} (at {revision(r.port)})")
    check("took the primary's snapshot" in r.log(), "replica: says it took a snapshot")
    entries = request(r.port, "GET", f"/v1/changes?since={want - 1}").json()["changes"]
    check(entries and entries[-1]["revision"] == want, "replica: its history reaches the snapshot")
    same_everywhere(p.port, r.port, ["/v1/actors", "/v1/snapshot"])

    # A replica can follow a replica: it serves /v1/snapshot and /v1/changes.
    chained = replica(f"http://127.0.0.1:{r.port}")
    check(revision(chained.port) == want, "a replica of a replica starts at the same revision")
    write_patch(p.port, 50)
    want = revision(p.port)
    check(wait_until(lambda: revision(chained.port) == want),
          "a replica of a replica follows the primary's writes")
    same_everywhere(p.port, chained.port, ["/v1/actors/replica-test-actor", "/v1/snapshot"])
    chained.stop()

    # The primary dies: the replica serves on, then is not ready past --max-lag.
    before = request(r.port, "GET", "/v1/actors").body
    p.kill()
    time.sleep(0.5)
    m = scrape(r.port)
    check(m.get("factsd_replica_connected") == 0, "primary down: connected 0")
    check(request(r.port, "GET", "/v1/actors").body == before, "primary down: replica serves")
    nr = wait_until(lambda: request(r.port, "GET", "/readyz").status == 503, 5)
    check(nr, "primary down: /readyz 503 once the lag passes --max-lag")
    j = request(r.port, "GET", "/readyz").json()
    check(j.get("lag_seconds", 0) > 2 and j.get("revision") == want,
          f"primary down: /readyz names the lag and revision: {j}")
    check(scrape(r.port).get("factsd_replica_lag_seconds", 0) > 2, "primary down: lag metric")

    # Back with its journal: same revision, and the replica follows on.
    p = primary(tmp, port=p.port, history=5)
    check(revision(p.port) == want, "primary restarted: at the journal's revision")
    check(wait_until(lambda: request(r.port, "GET", "/readyz").status == 200, 8),
          "primary back: replica ready again")
    for n in range(3):
        write_patch(p.port, 100 + n)
    want2 = revision(p.port)
    check(wait_until(lambda: revision(r.port) == want2), "primary back: replica follows")
    revs = [e["revision"] for e in
            request(r.port, "GET", f"/v1/changes?since={want}").json()["changes"]]
    check(revs == list(range(want + 1, want2 + 1)), f"after the restart: no revision lost or "
          f"repeated {revs}")
    check(scrape(r.port).get("factsd_replica_lag_seconds", 1) == 0, "caught up: lag 0")

    # A primary that comes back behind the replica (no journal) is not
    # followed backwards.
    p.kill()
    p = primary(tmp, port=p.port, journal=False)
    check(wait_until(lambda: "behind this replica" in r.log(), 8),
          f"primary behind: the replica says so: {r.log()[-400:]}")
    check(revision(r.port) == want2, "primary behind: the replica keeps its revision")
    nr = request(r.port, "GET", "/readyz")
    check(nr.status == 503 and "behind this replica's" in nr.json().get("detail", ""),
          f"primary behind: not ready, and /readyz says why: {nr.body[:300]!r}")
    r.stop()
    p.stop()


def main():
    global ARGS
    ARGS = parse_args()
    tmp = tempfile.mkdtemp(prefix="factsd-replica-")
    with open(tmp + "/token", "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tmp + "/token", 0o600)
    try:
        test_flags()
        test_waits_for_primary(tmp)
        test_follow(tmp)
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.kill()
    sys.exit(finish(ARGS))


if __name__ == "__main__":
    main()
