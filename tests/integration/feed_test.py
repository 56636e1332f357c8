#!/usr/bin/env python3
"""Integration test of the change feed, GET /v1/changes: the real factsd
binary, entries for every write and reload, paging, long-polls woken by a
write or by their own deadline, 410 outside the kept history, 400 for bad
parameters, the waiter cap, and shutdown with long-polls held. Every
response is recorded and checked against the OpenAPI description at the
end, like the other integration tests.

usage: feed_test.py --factsd PATH --openapi OPENAPI.json --record FILE
                    --node NODE --validator SCRIPT --dataset DATA.json
Talks only to 127.0.0.1. Exit status 0 only when every check passes.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import check, finish, parse_args, record

TOKEN = "feed-test-token-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + TOKEN}
ARGS = None
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class Server:
    """One factsd process on a free port."""

    def __init__(self, workdir, args, env=None, journal=True):
        self.workdir = workdir
        cmd = [ARGS.factsd, "--listen", "127.0.0.1:0", "--threads", "2",
               "--token-file", os.path.join(workdir, "token"),
               "--data", os.path.join(workdir, "data.json")] + args
        if journal:
            cmd += ["--journal", os.path.join(workdir, "journal")]
        full_env = dict(os.environ)
        full_env.pop("FACTSD_TOKEN", None)
        full_env.update(env or {})
        self.stderr_path = os.path.join(workdir, f"stderr-{time.monotonic_ns()}.log")
        self.stderr_file = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     env=full_env, text=True)
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"factsd did not start: {self.stderr()}")
        url = line.split("http://", 1)[1].split()[0]
        self.host, port = url.rsplit(":", 1)
        self.port = int(port)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stderr(self):
        if not self.stderr_file.closed:
            self.stderr_file.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def request(self, method, target, body=None, headers=None, timeout=20,
                ctype="application/json"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(AUTH) if method not in ("GET", "HEAD") else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = ctype
        h.update(headers or {})
        conn.request(method, target, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        resp = Resp(r.status, dict(r.getheaders()), payload)
        record(method, target, resp.status, resp.headers, payload)
        return resp

    def get(self, target, **kw):
        return self.request("GET", target, **kw)

    def revision(self):
        return self.get("/v1").json()["revision"]

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.stderr_file.close()
        err = self.stderr()
        check("Sanitizer" not in err and "runtime error" not in err,
              f"no sanitizer report: {err[-2000:]}")
        return rc


def event(slug, title="A feed test event"):
    return {
        "slug": slug,
        "title": title,
        "type": "meeting",
        "status": "reported",
        "date": {"precision": "day", "from": "2024-06-19", "to": "2024-06-19",
                 "basis": "stated"},
        "participants": [{"actor": "kim-jong-un", "role": "host"}],
        "summary": "An event written by the feed test.",
        "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}],
    }


def setup_dir(root, name):
    d = os.path.join(root, name)
    os.mkdir(d)
    fd = os.open(os.path.join(d, "token"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    shutil.copy(ARGS.dataset, os.path.join(d, "data.json"))
    return d


class Poller(threading.Thread):
    """A GET of /v1/changes in the background; notes when its answer came."""

    def __init__(self, s, target):
        super().__init__(daemon=True)
        self.s, self.target = s, target
        self.resp = None
        self.error = None
        self.done_at = None

    def run(self):
        try:
            self.resp = self.s.get(self.target, timeout=90)
        except (OSError, http.client.HTTPException) as e:
            self.error = e
        self.done_at = time.monotonic()


def waiters_held(s, n, timeout=5.0):
    """Waits until n long-polls are most likely held: there is no direct
    count, so a short pause after the requests went out has to do."""
    time.sleep(min(timeout, 0.5 + 0.1 * n))


# ----------------------------------------------------------------- tests

def test_entries(s):
    rev0 = s.revision()
    r = s.get(f"/v1/changes?since={rev0}")
    check(r.status == 200 and r.json() == {"changes": [], "revision": rev0, "next": rev0},
          f"since=latest, wait=0: empty ({r.status} {r.body[:200]})")
    check(r.header("X-Revision") == str(rev0), "X-Revision names the latest revision")
    check(r.header("Access-Control-Allow-Origin") == "*", "CORS as for reads")
    h = s.request("HEAD", f"/v1/changes?since={rev0}")
    check(h.status == 200 and h.body == b"", f"HEAD works ({h.status})")

    c = s.request("POST", "/v1/events", event("feed-one"))
    check(c.status == 201, f"create: 201 ({c.status} {c.body[:200]})")
    created = c.json()
    eid = created["id"]
    u = s.request("PATCH", f"/v1/events/{eid}", {"title": "Retitled by the feed test"},
                  ctype="application/merge-patch+json")
    check(u.status == 200, f"PATCH: 200 ({u.status})")
    p = s.request("PUT", f"/v1/events/{eid}", event("feed-one-renamed", "Replaced"))
    check(p.status == 200, f"PUT: 200 ({p.status} {p.body[:200]})")
    d = s.request("DELETE", f"/v1/events/{eid}")
    check(d.status == 204, f"DELETE: 204 ({d.status})")

    r = s.get(f"/v1/changes?since={rev0}")
    body = r.json()
    ch = body["changes"]
    check(r.status == 200 and len(ch) == 4, f"four writes, four entries ({len(ch)})")
    check([e["op"] for e in ch] == ["create", "update", "update", "delete"],
          f"ops in order: {[e['op'] for e in ch]}")
    check([e["revision"] for e in ch] == [rev0 + 1, rev0 + 2, rev0 + 3, rev0 + 4],
          "revisions follow each other")
    check(all(e["id"] == eid and e["collection"] == "events" for e in ch), "ids, collection")
    check([e["slug"] for e in ch] == ["feed-one", "feed-one", "feed-one-renamed",
                                      "feed-one-renamed"], f"slugs: {[e['slug'] for e in ch]}")
    check(all(TIME_RE.match(e["time"]) for e in ch), "time is RFC 3339 UTC with milliseconds")
    check(ch[0]["record"] == created and ch[1]["record"] == u.json() and
          ch[2]["record"] == p.json(), "records are the new representations")
    check("record" not in ch[3], "a delete has no record")
    check(body["revision"] == rev0 + 4 and body["next"] == rev0 + 4, "revision and next")

    # paging through next
    seen, since, pages = [], rev0, 0
    while pages < 10:
        page = s.get(f"/v1/changes?since={since}&limit=3").json()
        pages += 1
        seen += [e["revision"] for e in page["changes"]]
        if not page["changes"]:
            check(page["next"] == since, "an empty page's next is since")
            break
        check(len(page["changes"]) <= 3, "limit caps a page")
        since = page["next"]
    check(seen == [rev0 + 1, rev0 + 2, rev0 + 3, rev0 + 4] and pages == 3,
          f"paging with limit=3 through next: {seen} in {pages} pages")
    return rev0 + 4


def test_long_poll(s):
    rev = s.revision()
    t = Poller(s, f"/v1/changes?since={rev}&wait=30")
    t.start()
    time.sleep(0.7)
    check(t.done_at is None, "a long-poll with nothing newer is held")
    c = s.request("POST", "/v1/events", event("feed-woken"))
    wrote_at = time.monotonic()
    t.join(10)
    check(t.resp is not None and t.resp.status == 200, f"the long-poll answered: {t.error}")
    if t.resp is not None:
        ch = t.resp.json()["changes"]
        check(len(ch) == 1 and ch[0]["op"] == "create" and ch[0]["id"] == c.json()["id"],
              "the long-poll got the write")
        check(t.done_at - wrote_at < 1.0,
              f"woken within a second of the write ({t.done_at - wrote_at:.3f}s)")

    rev = s.revision()
    t0 = time.monotonic()
    r = s.get(f"/v1/changes?since={rev}&wait=1")
    took = time.monotonic() - t0
    check(r.status == 200 and r.json()["changes"] == [] and r.json()["next"] == rev,
          f"a long-poll times out empty ({r.status})")
    check(0.9 <= took < 2.5, f"after its wait of one second ({took:.3f}s)")

    # a long-poll with changes already there answers at once
    t0 = time.monotonic()
    r = s.get(f"/v1/changes?since={rev - 1}&wait=30")
    check(r.status == 200 and len(r.json()["changes"]) == 1 and time.monotonic() - t0 < 1.0,
          "a long-poll with newer changes answers at once")


def test_bad_params(s):
    for q in ("", "?since=", "?since=abc", "?since=-1", "?since=1&limit=0",
              "?since=1&limit=501", "?since=1&limit=x", "?since=1&wait=61", "?since=1&wait=-1",
              "?since=1&since=2", "?since=1&bogus=1", "?limit=5"):
        r = s.get(f"/v1/changes{q}")
        ok = r.status == 400 and r.header("Content-Type") == "application/problem+json"
        if ok:
            names = [p["name"] for p in r.json().get("invalid-params", [])]
            ok = len(names) >= 1
        check(ok, f"400 for /v1/changes{q} ({r.status} {r.body[:200]})")
    r = s.get("/v1/changes")
    check(any(p["name"] == "since" for p in r.json().get("invalid-params", [])),
          "a missing since is named")
    r = s.get("/v1/changes?since=1&limit=0")
    check(any(p["name"] == "limit" for p in r.json().get("invalid-params", [])),
          "a bad limit is named")


def server_past_history(root, name, server_class=None):
    """A server keeping 3 changes that has made 5: returns it, the revision
    it started at (no longer in its history) and the latest."""
    s = (server_class or Server)(setup_dir(root, name), ["--history", "3"])
    rev0 = s.revision()
    for i in range(5):
        check(s.request("POST", "/v1/events", event(f"{name}-{i}")).status == 201, "a write")
    return s, rev0, rev0 + 5


def test_gone(root):
    s, rev0, latest = server_past_history(root, "gone")
    r = s.get(f"/v1/changes?since={rev0}")
    check(r.status == 410 and r.header("Content-Type") == "application/problem+json",
          f"since below the kept history: 410 ({r.status})")
    if r.status == 410:
        b = r.json()
        check(b["type"] == "urn:factsd:problem:gone" and b["revision"] == latest and
              "reload" in b["detail"], f"a gone problem with the revision: {b}")
    r = s.get(f"/v1/changes?since={latest - 3}")
    check(r.status == 200 and len(r.json()["changes"]) == 3, "the kept history is served")
    r = s.get(f"/v1/changes?since={latest + 1}&wait=5")
    check(r.status == 410 and r.json()["revision"] == latest,
          f"since above the latest: 410 at once ({r.status})")
    check(s.stop() == 0, "exit 0")


def wait_for_log(s, text, seconds=5):
    deadline = time.time() + seconds
    while time.time() < deadline and text not in s.stderr():
        time.sleep(0.05)
    return text in s.stderr()


def test_reload(root):
    d = setup_dir(root, "reload")
    s = Server(d, [])
    check(s.request("POST", "/v1/events", event("feed-reload")).status == 201, "a write")
    rev = s.revision()
    # The same dataset and journal: nothing changed, nothing to follow.
    t = Poller(s, f"/v1/changes?since={rev}&wait=2")
    t.start()
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGHUP)
    t.join(10)
    check(wait_for_log(s, f"unchanged at revision {rev}"), "an unchanged reload is logged")
    check(t.resp is not None and t.resp.status == 200 and t.resp.json()["changes"] == [],
          "an unchanged reload wakes no follower")
    # Compact, edit, raise the revision: the followers at the running
    # revision, and those at a revision the jump skipped, see the reload.
    check(s.request("POST", "/v1/admin/compact").status == 200, "compaction")
    data_path = os.path.join(d, "data.json")
    edited = json.loads(open(data_path).read())
    edited["actors"][0]["description"] = "Edited by the feed test."
    edited["revision"] = rev + 5
    with open(data_path, "w") as f:
        json.dump(edited, f)
    t = Poller(s, f"/v1/changes?since={rev}&wait=30")
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGHUP)
    t.join(10)
    ch = t.resp.json()["changes"] if t.resp is not None and t.resp.status == 200 else []
    check(len(ch) == 1 and ch[0]["op"] == "reload" and ch[0]["revision"] == rev + 5 and
          "record" not in ch[0] and "id" not in ch[0],
          f"a long-poll is woken by a reload entry at the dataset's revision: {t.error} {ch}")
    r = s.get(f"/v1/changes?since={rev + 2}")
    check(r.status == 200 and [c["revision"] for c in r.json()["changes"]] == [rev + 5],
          "a revision the reload skipped still gets what follows")
    check(s.request("POST", "/v1/events", event("feed-after-reload")).status == 201 and
          s.revision() == rev + 6, "writes go on after the reload's revision")
    check(s.stop() == 0, "exit 0")
    # Without a journal a changed dataset takes the next revision, so no
    # revision ever names two contents.
    d = setup_dir(root, "reload-nojournal")
    s = Server(d, [], journal=False)
    check(s.request("POST", "/v1/events", event("feed-memory")).status == 201, "a write")
    rev = s.revision()
    s.proc.send_signal(signal.SIGHUP)
    check(wait_for_log(s, f"reloaded the dataset: revision {rev + 1}"),
          "the reload takes the next revision")
    r = s.get(f"/v1/changes?since={rev}")
    check(r.status == 200 and [(c["op"], c["revision"]) for c in r.json()["changes"]] ==
          [("reload", rev + 1)], f"the follower at {rev} sees the reload ({r.body[:200]})")
    check(s.revision() == rev + 1 and s.get("/v1/events/feed-memory").status == 404,
          "the re-read data is served at that revision")
    # Re-reading the same file again changes nothing, though the running
    # revision is now ahead of the file's.
    for i in range(2):  # one at a time: pending signals merge
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline and s.stderr().count("unchanged at revision") <= i:
            time.sleep(0.05)
    r = s.get(f"/v1/changes?since={rev + 1}")
    check(s.stderr().count(f"unchanged at revision {rev + 1}") == 2 and s.revision() == rev + 1
          and r.status == 200 and r.json()["changes"] == [],
          "repeated reloads of the same data enter nothing and keep the revision")
    check(s.stop() == 0, "exit 0")


def test_waiter_cap_and_shutdown(root):
    d = setup_dir(root, "cap")
    s = Server(d, ["--max-waiters", "2"])
    rev = s.revision()
    ts = [Poller(s, f"/v1/changes?since={rev}&wait=60") for _ in range(2)]
    for t in ts:
        t.start()
    waiters_held(s, 2)
    r = s.get(f"/v1/changes?since={rev}&wait=60", timeout=10)
    check(r.status == 503 and r.header("Retry-After") == "1" and
          r.header("Content-Type") == "application/problem+json",
          f"the third waiter: 503 with Retry-After ({r.status})")
    r = s.get(f"/v1/changes?since={rev}", timeout=10)
    check(r.status == 200, "a request that does not wait still gets through")
    check(all(t.done_at is None for t in ts), "the two waiters are still held")
    t0 = time.monotonic()
    rc = s.stop(timeout=10)
    took = time.monotonic() - t0
    check(rc == 0, f"SIGTERM with waiters held: exit 0 ({rc})")
    check(took < 5.0, f"promptly ({took:.3f}s)")
    for t in ts:
        t.join(5)
        check(t.done_at is not None and
              ((t.resp is not None and t.resp.status == 200 and t.resp.json()["changes"] == [])
               or t.error is not None),
              f"a held client got an empty answer or a clean close ({t.error})")


def test_held_reserve(root):
    """Long-polls never take the connections reads need: with 20 connections
    at most 12 are held (8 are left), whatever --max-waiters says."""
    d = setup_dir(root, "reserve")
    s = Server(d, ["--max-connections", "20", "--max-connections-per-ip", "0",
                   "--max-waiters", "100"])
    rev = s.revision()
    ts = [Poller(s, f"/v1/changes?since={rev}&wait=60") for _ in range(12)]
    for t in ts:
        t.start()
    waiters_held(s, 12)
    r = s.get(f"/v1/changes?since={rev}&wait=60", timeout=10)
    check(r.status == 503 and r.header("Retry-After") == "1",
          f"the 13th long-poll of 20 connections: 503 ({r.status})")
    check(s.get("/v1").status == 200 and
          s.request("POST", "/v1/events", event("feed-reserve")).status == 201,
          "reads and writes still get in")
    for t in ts:
        t.join(10)
    check(all(t.resp is not None and t.resp.status == 200 and
              len(t.resp.json()["changes"]) == 1 for t in ts),
          "the write reaches every held long-poll")
    check(s.stop() == 0, "exit 0")


def test_flags(root):
    d = setup_dir(root, "flags")
    for bad in (["--history", "0"], ["--history", "1000001"], ["--history", "x"],
                ["--max-waiters", "0"], ["--max-waiters", "1000001"]):
        p = subprocess.run([ARGS.factsd, "--listen", "127.0.0.1:0"] + bad,
                           capture_output=True, text=True, timeout=10)
        check(p.returncode != 0 and bad[0] in p.stderr,
              f"{' '.join(bad)} is refused, naming the flag ({p.returncode} {p.stderr[:200]})")
    s = Server(d, [], env={"FACTSD_HISTORY": "2", "FACTSD_MAX_WAITERS": "1"})
    rev0 = s.revision()
    for i in range(3):
        s.request("POST", "/v1/events", event(f"feed-flags-{i}"))
    check(s.get(f"/v1/changes?since={rev0}").status == 410 and
          s.get(f"/v1/changes?since={rev0 + 1}").status == 200,
          "FACTSD_HISTORY sets the history's capacity")
    t = Poller(s, f"/v1/changes?since={rev0 + 3}&wait=60")
    t.start()
    waiters_held(s, 1)
    r = s.get(f"/v1/changes?since={rev0 + 3}&wait=60", timeout=10)
    check(r.status == 503, f"FACTSD_MAX_WAITERS sets the waiter cap ({r.status})")
    s.request("POST", "/v1/events", event("feed-flags-wake"))
    t.join(10)
    check(t.resp is not None and t.resp.status == 200 and len(t.resp.json()["changes"]) == 1,
          "the held waiter is woken by the write")
    check(s.stop() == 0, "exit 0")


def main():
    global ARGS
    ARGS = parse_args()
    with tempfile.TemporaryDirectory(prefix="factsd-feed-") as root:
        d = setup_dir(root, "main")
        s = Server(d, [])
        # the validator's self-test drifts an event, an event page and a 400
        s.get("/v1/events/shoigu-visit-pyongyang")
        s.get("/v1/events?limit=3")
        test_entries(s)
        test_long_poll(s)
        test_bad_params(s)
        check(s.stop() == 0, "SIGTERM: exit 0")
        test_gone(root)
        test_reload(root)
        test_held_reserve(root)
        test_waiter_cap_and_shutdown(root)
        test_flags(root)
    return finish(ARGS)


if __name__ == "__main__":
    sys.exit(main())
