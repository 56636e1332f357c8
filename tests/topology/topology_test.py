#!/usr/bin/env python3
"""The whole topology on loopback: a primary with a token and a journal, two
replicas (factsd --follow), and a real nginx in front with the configuration
in tests/topology/nginx.conf (the one docs/operations.md shows): reads to
the replicas, writes to the primary.

1. Delivery: 100 writes through nginx; each must show on both replicas
   (their event streams) within 1 s of being sent, and in a read through
   nginx; p50/p99/max are printed.
2. The primary killed with -9 while writes and streams run, then restarted
   on its journal: the replicas converge on it, every acknowledged write is
   there, and each replica's stream saw every revision once, in order.
3. A replica started from scratch while writes continue catches up with the
   primary, byte for byte.
4. A replica killed with -9 under a read loop through nginx: zero failed
   reads.
Also: long-poll and SSE pass through nginx; a write sent to a replica is
refused naming the primary.

usage: topology_test.py --factsd PATH --nginx PATH --config nginx.conf
                        --docs operations.md
Talks only to 127.0.0.1. Prints "topology: N checks, M failed" and the
delivery figures; exits non-zero on any failed check.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
from harness import (CHECKS, Factsd, check, free_port, http_request,  # noqa: E402
                     wait_until)

TOKEN = "topology-test-token-0123456789abcdef"
ARGS = None
PROCS = []


def request(port, method, target, body=None, token=False, timeout=20, headers=None,
            content_type="application/json"):
    """One request on a fresh connection: (status, headers, body bytes)."""
    r = http_request(port, method, target, headers, body, TOKEN if token else None, timeout,
                     content_type, keep=False)
    return r.status, r.headers, r.raw


def get_json(port, target):
    status, _, raw = request(port, "GET", target)
    return json.loads(raw) if status == 200 else None


def revision(port):
    try:
        return get_json(port, "/v1")["revision"]
    except (OSError, TypeError, http.client.HTTPException):
        return None


class Node(Factsd):
    """A factsd of this test (stopped at the end whatever happens)."""

    def __init__(self, args):
        super().__init__(ARGS.factsd, args, wait=False)
        PROCS.append(self.proc)
        self.wait_listening()


def primary(tmp, port=0):
    return Node(["--listen", f"127.0.0.1:{port}", "--threads", "2", "--token-file",
                   tmp + "/token", "--journal", tmp + "/journal", "--history", "100000"])


def replica(url, port=0):
    return Node(["--follow", url, "--listen", f"127.0.0.1:{port}", "--threads", "2"])


class Stream:
    """A /v1/stream reader: the arrival time of each change's revision."""

    def __init__(self, port, since):
        self.seen = []       # revisions, in arrival order
        self.arrived = {}    # revision -> time.monotonic()
        self.closed = False
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", f"/v1/stream?last-event-id={since}")
        self.resp = self.conn.getresponse()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        rev = None
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                if line.startswith(b"id: "):
                    rev = int(line[4:])
                elif line.startswith(b"data: ") and rev is not None and b'"op"' in line:
                    self.arrived.setdefault(rev, time.monotonic())
                    self.seen.append(rev)
                    rev = None
        except Exception:  # closed under the reader (close), or by the server
            pass
        self.closed = True

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def write(port, n):
    """PATCHes the test actor's name; (status, revision or None)."""
    try:
        status, headers, _ = request(port, "PATCH", "/v1/actors/topology-actor",
                                     body={"name": f"Name {n}"}, token=True,
                                     content_type="application/merge-patch+json")
    except (OSError, http.client.HTTPException):
        return 0, None
    rev = headers.get("x-revision")
    return status, int(rev) if rev else None


ACTOR = {"slug": "topology-actor", "name": "Name start", "kind": "intelligence-community",
         "country": "united-states", "description": "An actor the topology test writes.",
         "evidence": [{"source": "article", "paragraph": 5, "sentence": 1,
                       "phrase": "intelligence reports from American"}]}


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def start_nginx(tmp, listen, primary_addr, replica_addrs):
    work = tmp + "/nginx"
    for d in ("", "/body", "/proxy", "/fastcgi", "/uwsgi", "/scgi"):
        os.makedirs(work + d, exist_ok=True)
        os.chmod(work + d, 0o777)  # nginx's workers may run as another user
    with open(ARGS.config) as f:
        template = f.read()
    conf = string.Template(template).safe_substitute(
        work=work, listen=listen, primary=primary_addr, replica1=replica_addrs[0],
        replica2=replica_addrs[1])
    check("${" not in conf, "nginx.conf: every placeholder filled")
    with open(work + "/nginx.conf", "w") as f:
        f.write(conf)
    proc = subprocess.Popen([ARGS.nginx, "-p", work, "-c", work + "/nginx.conf", "-e",
                             work + "/error.log"], stderr=subprocess.PIPE, text=True)
    PROCS.append(proc)
    port = int(listen.rsplit(":", 1)[1])
    if not wait_until(lambda: revision(port) is not None, 10):
        raise RuntimeError("nginx did not start: " + open(work + "/error.log").read())
    return proc, port


def test_docs():
    """docs/operations.md shows the configuration this test runs."""
    with open(ARGS.config) as f:
        conf = f.read().strip()
    with open(ARGS.docs) as f:
        docs = f.read()
    m = re.search(r"<!-- nginx\.conf -->\s*```nginx\n(.*?)```", docs, re.S)
    check(m is not None and m.group(1).strip() == conf,
          "docs/operations.md shows tests/topology/nginx.conf as it is")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    for a in ("--factsd", "--nginx", "--config", "--docs"):
        ap.add_argument(a, required=True)
    ARGS = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="factsd-topology-")
    os.chmod(tmp, 0o755)
    with open(tmp + "/token", "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tmp + "/token", 0o600)
    try:
        test_docs()
        run(tmp)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.terminate()  # nginx's master takes its workers down with it
        for p in PROCS:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    print(f"topology: {CHECKS[0] + CHECKS[1]} checks, {CHECKS[1]} failed", flush=True)
    sys.exit(0 if CHECKS[1] == 0 else 1)


def run(tmp):
    p = primary(tmp)
    url = f"http://{p.addr}"
    r1, r2 = replica(url), replica(url)
    nginx, n = start_nginx(tmp, f"127.0.0.1:{free_port()}", p.addr, [r1.addr, r2.addr])

    # Writes go to the primary, reads to the replicas.
    status, headers, raw = request(n, "POST", "/v1/actors", body=ACTOR, token=True)
    check(status == 201, f"create through nginx: {status} {raw[:200]!r}")
    base = int(headers.get("x-revision", "0"))
    check(wait_until(lambda: revision(r1.port) == base and revision(r2.port) == base),
          "both replicas have the create")
    status, _, raw = request(r1.port, "POST", "/v1/actors", body=ACTOR, token=True)
    check(status == 403 and json.loads(raw).get("primary") == url,
          "a write sent to a replica is refused, naming the primary")
    check(request(n, "GET", "/metrics")[0] == 404, "nginx does not expose /metrics")

    # A long-poll through nginx is held and answered by the write.
    got = {}

    def poll():
        got["poll"] = request(n, "GET", f"/v1/changes?since={base}&wait=20", timeout=30)

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    wstatus, wrev = write(n, "poll")
    t.join(30)
    st, _, raw = got.get("poll", (0, {}, b"{}"))
    check(wstatus == 200 and st == 200 and
          [c["revision"] for c in json.loads(raw).get("changes", [])] == [wrev],
          f"a long-poll through nginx answers with the write ({st})")
    # A stream resumes after a revision its node has: wait for both.
    check(wait_until(lambda: revision(r1.port) == wrev and revision(r2.port) == wrev),
          "both replicas have the write")
    via = Stream(n, wrev)  # an event stream through nginx, checked below

    # 1. Delivery: every write visible on both replicas within 1 s.
    s1, s2 = Stream(r1.port, wrev), Stream(r2.port, wrev)
    time.sleep(0.3)
    sent = {}
    acked = {}
    for i in range(100):
        t0 = time.monotonic()
        status, rev = write(n, i)
        acked_at = time.monotonic()
        if not check(status == 200 and rev is not None, f"write {i} through nginx: {status}"):
            continue
        sent[rev] = t0
        acked[rev] = acked_at
        wait_until(lambda: rev in s1.arrived and rev in s2.arrived, 2.0, 0.001)
        _, _, raw = request(n, "GET", "/v1/actors/topology-actor")
        check(json.loads(raw).get("name") == f"Name {i}", f"write {i}: a read through nginx "
              "shows it")
    delays = []
    for rev, t0 in sent.items():
        for s in (s1, s2):
            if check(rev in s.arrived, f"revision {rev} reached a replica's stream"):
                delays.append(s.arrived[rev] - t0)
    if delays:
        ms = [d * 1000 for d in delays]
        after = [max(0.0, (s.arrived[rev] - acked[rev]) * 1000)
                 for rev in sent for s in (s1, s2) if rev in s.arrived]
        print(f"topology: delivery of {len(sent)} writes to 2 replicas, write sent -> on the "
              f"replica's stream: p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms, max "
              f"{max(ms):.1f} ms; after the write's answer: p50 {pct(after, 50):.1f} ms, p99 "
              f"{pct(after, 99):.1f} ms", flush=True)
        check(max(ms) <= 1000, f"every write shows on both replicas within 1 s (max "
              f"{max(ms):.0f} ms)")

    # 2. kill -9 the primary while writes run and the streams are open.
    stop = threading.Event()
    ok_writes = {}   # revision -> name, acknowledged
    failed = [0]

    def writer(tag):
        i = 0
        while not stop.is_set():
            status, rev = write(n, f"{tag}-{i}")
            if status == 200 and rev is not None:
                ok_writes[rev] = f"Name {tag}-{i}"
            else:
                failed[0] += 1
                time.sleep(0.02)
            i += 1

    wt = threading.Thread(target=writer, args=("k",))
    wt.start()
    time.sleep(1.0)
    p.kill()
    time.sleep(1.0)
    p = primary(tmp, port=p.port)
    time.sleep(1.5)
    stop.set()
    wt.join(30)
    final = revision(p.port)
    check(wait_until(lambda: revision(r1.port) == final and revision(r2.port) == final, 10),
          f"after kill -9 and restart, both replicas converge on revision {final}")
    check(failed[0] > 0 and len(ok_writes) > 0,
          f"writes failed while the primary was down ({failed[0]}) and succeeded around it "
          f"({len(ok_writes)})")
    names = {}
    since = base
    while since < final:
        # The restarted primary's history starts at its restart; the
        # replicas kept every entry it sent them.
        feed = get_json(r1.port, f"/v1/changes?since={since}&limit=500")
        for c in feed["changes"]:
            if c["op"] == "update":
                names[c["revision"]] = c["record"]["name"]
        if feed["next"] == since:
            break
        since = feed["next"]
    lost = [rev for rev, name in ok_writes.items() if names.get(rev) != name]
    check(not lost, f"every acknowledged write is in the replicated history ({lost[:5]})")
    _, _, raw = request(p.port, "GET", "/v1/actors/topology-actor")
    last = max(ok_writes) if ok_writes else None
    check(last is None or max(names) > last or json.loads(raw)["name"] == ok_writes[last],
          "the restarted primary holds the last acknowledged write")
    for name, s in (("replica 1", s1), ("replica 2", s2), ("through nginx", via)):
        wait_until(lambda: final in s.arrived, 5)
        want = list(range(wrev + 1, final + 1))
        if s.seen != want:
            missing = sorted(set(want) - set(s.seen))
            print(f"{name}: missing {missing[:10]}..., extra "
                  f"{sorted(set(s.seen) - set(want))[:10]}; logs: {r1.text()[-600:]!r} "
                  f"{r2.text()[-600:]!r}", flush=True)
        check(s.seen == want,
              f"{name}'s stream: every revision once, in order, up to {final} "
              f"(saw {len(s.seen)}, last {s.seen[-1] if s.seen else None})")
    snap = request(p.port, "GET", "/v1/snapshot")
    for r in (r1, r2):
        other = request(r.port, "GET", "/v1/snapshot")
        check(other[2] == snap[2] and other[1].get("etag") == snap[1].get("etag"),
              "a replica's snapshot is the primary's, byte for byte")
    print(f"topology: kill -9 of the primary: {len(ok_writes)} writes acknowledged around it, "
          f"{failed[0]} refused while it was down; replicas converged on revision {final}, "
          f"streams gapless", flush=True)
    for s in (s1, s2, via):
        s.close()

    # 3. A replica from scratch while writes continue.
    stop.clear()
    wt = threading.Thread(target=writer, args=("f",))
    wt.start()
    time.sleep(0.3)
    r3 = replica(f"http://{p.addr}")
    time.sleep(1.0)
    stop.set()
    wt.join(30)
    final = revision(p.port)
    check(wait_until(lambda: revision(r3.port) == final, 10),
          f"a replica started during writes reaches revision {final}")
    check(request(r3.port, "GET", "/v1/snapshot")[2] == request(p.port, "GET",
                                                                 "/v1/snapshot")[2],
          "the new replica's data is the primary's")
    r3.stop()

    # 4. A replica killed under a read loop through nginx: zero failed reads.
    stop.clear()
    results = {"ok": 0, "bad": []}
    lock = threading.Lock()

    def reader():
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", n, timeout=10)
                conn.request("GET", "/v1/events?limit=5")
                r = conn.getresponse()
                r.read()
                with lock:
                    if r.status == 200:
                        results["ok"] += 1
                    else:
                        results["bad"].append(r.status)
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    results["bad"].append(repr(e))
                conn = None

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    time.sleep(1.0)
    r1.kill()
    time.sleep(2.0)
    stop.set()
    for t in readers:
        t.join(30)
    check(results["ok"] > 100 and not results["bad"],
          f"a replica killed under load: {results['ok']} reads answered, "
          f"{len(results['bad'])} failed {results['bad'][:3]}")
    print(f"topology: replica killed -9 under 4 readers through nginx: {results['ok']} reads, "
          f"{len(results['bad'])} failed", flush=True)
    r2.stop()
    p.stop()
    nginx.send_signal(signal.SIGQUIT)


if __name__ == "__main__":
    main()
