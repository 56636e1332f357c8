#!/usr/bin/env python3
"""Integration test of the write API: the real factsd binary, a real HTTP
client (http.client, and raw sockets where a client would not misbehave on
purpose), every status the writes can give, durability across restarts,
compaction, reload, journal damage, an injected fsync failure, a full disk,
and readers racing writers. Every response is recorded and checked against
the OpenAPI description at the end, like the read API's test.

usage: write_test.py --factsd PATH --openapi OPENAPI.json --record FILE
                     --node NODE --validator SCRIPT --failsync LIBFAILSYNC.so
Talks only to 127.0.0.1. Exit status 0 only when every check passes.
"""
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from harness import check, finish, parse_args, record

TOKEN = "write-test-token-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + TOKEN}
ARGS = None


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


class Server:
    """One factsd process on a free port."""

    def __init__(self, workdir, args, env=None, preexec=None, expect_start=True):
        self.workdir = workdir
        cmd = [ARGS.factsd, "--listen", "127.0.0.1:0", "--threads", "4"] + args
        full_env = dict(os.environ)
        full_env.pop("FACTSD_TOKEN", None)
        full_env.update(env or {})
        self.stderr_path = os.path.join(workdir, f"stderr-{time.monotonic_ns()}.log")
        self.stderr_file = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     env=full_env, text=True, preexec_fn=preexec)
        line = self.proc.stdout.readline()
        self.started = "http://" in line
        if not self.started:
            self.proc.wait(timeout=10)
            self.stderr_file.close()
            check("Sanitizer" not in self.stderr(), f"no sanitizer report: {self.stderr()[-2000:]}")
            if expect_start:
                raise RuntimeError(f"factsd did not start: {self.stderr()}")
            return
        url = line.split("http://", 1)[1].split()[0]
        self.host, port = url.rsplit(":", 1)
        self.port = int(port)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stderr(self):
        if not self.stderr_file.closed:
            self.stderr_file.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def request(self, method, target, body=None, headers=None, ctype="application/json",
                auth=True, rec=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        h = dict(AUTH) if auth else {}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if ctype is not None:
                h["Content-Type"] = ctype
        h.update(headers or {})
        conn.request(method, target, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        resp = Resp(r.status, dict(r.getheaders()), payload)
        if rec:
            record(method, target, resp.status, resp.headers, payload)
        return resp

    def get(self, target, rec=True):
        return self.request("GET", target, auth=False, rec=rec)

    def revision(self):
        return self.get("/v1").json()["revision"]

    def raw(self, data, method, target, send_after=None, timeout=5):
        """Sends raw bytes; returns (status, headers, body, closed)."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.sendall(data)
        buf = b""
        closed = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    # see whether the server closes
                    s.settimeout(0.5)
                    try:
                        closed = s.recv(1) == b""
                    except (socket.timeout, ConnectionResetError):
                        closed = False
                    break
        s.close()
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0].startswith(b"HTTP/") else 0
        headers = {}
        for l in lines[1:]:
            k, _, v = l.decode("latin-1").partition(":")
            headers[k.strip()] = v.strip()
        if status:
            record(method, target, status, headers, body)
        return status, headers, body, closed

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=20)
        self.stderr_file.close()
        err = self.stderr()
        check("Sanitizer" not in err and "runtime error" not in err,
              f"no sanitizer report: {err[-2000:]}")
        if sig != signal.SIGKILL:
            check(rc == 0, f"factsd exits 0 on {signal.Signals(sig).name} ({rc})")
        return rc


def event(slug, title="A test event", **extra):
    e = {
        "slug": slug,
        "title": title,
        "type": "meeting",
        "status": "reported",
        "date": {"precision": "day", "from": "2024-06-19", "to": "2024-06-19",
                 "basis": "stated"},
        "participants": [{"actor": "kim-jong-un", "role": "host"}],
        "summary": "An event written by the write test.",
        "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}],
    }
    e.update(extra)
    return e


def actor(slug, name):
    return {"slug": slug, "name": name, "kind": "person", "description": "A test actor.",
            "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}]}


def write_file(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, mode)


def setup_dir(root, name):
    d = os.path.join(root, name)
    os.mkdir(d)
    write_file(os.path.join(d, "token"), TOKEN + "\n")
    shutil.copy(ARGS.dataset, os.path.join(d, "data.json"))
    return d


def std_args(d, journal=True, data=True):
    a = ["--token-file", os.path.join(d, "token")]
    if journal:
        a += ["--journal", os.path.join(d, "journal")]
    if data:
        a += ["--data", os.path.join(d, "data.json")]
    return a


# ----------------------------------------------------------------- tests

def test_create_read_update_delete(s):
    rev0 = s.revision()
    page0 = s.get("/v1/events?limit=500")
    r = s.request("POST", "/v1/events", event("wt-one", hedge="reportedly"))
    check(r.status == 201, f"POST: 201 ({r.status} {r.body[:200]})")
    loc = r.header("Location") or ""
    rec = r.json() if r.status == 201 else {}
    check(loc == "/v1/events/" + rec.get("id", "?"), f"Location names the id: {loc}")
    check(r.header("ETag") is not None, "201 has an ETag")
    check(rec.get("slug") == "wt-one" and rec.get("hedge") == "reportedly", "201 body is the record")
    g = s.get(loc)
    check(g.status == 200 and g.json() == rec, "GET Location gives the stored record")
    check(g.header("ETag") == r.header("ETag"), "the item ETag is the one the 201 gave")
    check(s.get("/v1/events/wt-one").json() == rec, "the record is found by slug")
    check(s.revision() == rev0 + 1, "a write raises the revision by one")
    check(r.header("X-Revision") == str(rev0 + 1), "the 201 names the revision it made")
    page1 = s.get("/v1/events?limit=500")
    check(page1.json()["total"] == page0.json()["total"] + 1, "the collection grew by one")
    check(page1.json()["revision"] == rev0 + 1, "the page names the new revision")
    check(page1.header("ETag") != page0.header("ETag"), "the collection ETag changed")
    nm = s.request("GET", "/v1/events?limit=500", auth=False,
                   headers={"If-None-Match": page0.header("ETag")})
    check(nm.status == 200, "an old collection ETag no longer gives 304")
    eid = rec.get("id")

    # charset parameter is fine
    r = s.request("POST", "/v1/actors", actor("wt-person", "Test Person"),
                  ctype="application/json; charset=utf-8")
    check(r.status == 201, f"POST with charset: 201 ({r.status})")
    # conflicts
    r = s.request("POST", "/v1/events", event("wt-one"))
    check(r.status == 409 and r.json()["type"] == "urn:factsd:problem:conflict",
          f"POST of a taken slug: 409 ({r.status})")
    check(r.status == 409 and any(e["pointer"] == "/slug" for e in r.json().get("errors", [])),
          "the 409 points at /slug")
    r = s.request("POST", "/v1/events", event("wt-other", id=eid))
    check(r.status == 409, f"POST with a taken id: 409 ({r.status})")

    # If-Match and PUT
    etag = s.get("/v1/events/wt-one").header("ETag")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "Renamed once"),
                  headers={"If-Match": etag})
    check(r.status == 200 and r.json()["title"] == "Renamed once", f"PUT with If-Match: 200 ({r.status})")
    check(r.status == 200 and r.json()["id"] == eid, "PUT keeps the id")
    new_etag = r.header("ETag")
    check(new_etag is not None and new_etag != etag, "PUT gives a new ETag")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "Stale"), headers={"If-Match": etag})
    check(r.status == 412, f"PUT with a stale ETag: 412 ({r.status})")
    check(r.header("ETag") == new_etag, "the 412 names the current ETag")
    check(s.get("/v1/events/wt-one").json()["title"] == "Renamed once", "a 412 changes nothing")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "Weak"),
                  headers={"If-Match": "W/" + new_etag})
    check(r.status == 412, f"a weak ETag never matches If-Match: 412 ({r.status})")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "Star"), headers={"If-Match": "*"})
    check(r.status == 200, f"If-Match: * on an existing record: 200 ({r.status})")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "List"),
                  headers={"If-Match": '"0000000000000000", ' + r.header("ETag")})
    check(r.status == 200, f"If-Match list with the current ETag: 200 ({r.status})")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "Other id",
                                                   id="00000000-0000-4000-8000-000000000000"))
    check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/id",
          f"PUT with another id: 422 at /id ({r.status})")
    r = s.request("PUT", "/v1/events/wt-one", event("wt-one", "Same id", id=eid))
    check(r.status == 200, f"PUT with the same id: 200 ({r.status})")
    # rename the slug: the id stays
    r = s.request("PUT", f"/v1/events/{eid}", event("wt-one-renamed", "Renamed slug"))
    check(r.status == 200 and r.json()["id"] == eid, f"PUT renaming the slug keeps the id ({r.status})")
    check(s.get("/v1/events/wt-one").status == 404, "the old slug is gone")
    check(s.get("/v1/events/wt-one-renamed").json()["id"] == eid, "the new slug finds the record")
    # A write that changes nothing makes no revision and no change entry.
    before = s.get(f"/v1/events/{eid}")
    rev = before.header("X-Revision")
    r = s.request("PUT", f"/v1/events/{eid}", event("wt-one-renamed", "Renamed slug"))
    check(r.status == 200 and r.json() == before.json(),
          f"PUT of the record as it is: 200 with the record ({r.status})")
    check(r.header("ETag") == before.header("ETag") and r.header("X-Revision") == rev,
          f"... its ETag and revision stay ({r.header('ETag')} {r.header('X-Revision')} {rev})")
    r = s.request("PATCH", "/v1/events/wt-one-renamed", {"title": "Renamed slug", "hedge": None},
                  ctype="application/merge-patch+json",
                  headers={"If-Match": before.header("ETag")})
    check(r.status == 200 and r.header("ETag") == before.header("ETag") and
          r.header("X-Revision") == rev,
          f"PATCH that changes nothing: 200, same ETag and revision ({r.status})")
    r = s.get(f"/v1/changes?since={rev}")
    check(r.status == 200 and r.json()["changes"] == [] and str(r.json()["revision"]) == rev,
          f"no change entry for them ({r.body[:120]})")
    r = s.request("PATCH", "/v1/events/wt-one-renamed", {"title": "Renamed slug"},
                  ctype="application/merge-patch+json", headers={"If-Match": '"0000000000000000"'})
    check(r.status == 412, f"a PATCH that would change nothing still checks If-Match: 412 ({r.status})")
    r = s.request("PUT", "/v1/events/no-such-event", event("no-such-event"))
    check(r.status == 404, f"PUT of an unknown record: 404 ({r.status})")

    # PATCH (JSON Merge Patch)
    r = s.request("PATCH", f"/v1/events/{eid}",
                  {"title": "Patched", "hedge": None, "date": {"phrase": "on 19 June"}},
                  ctype="application/merge-patch+json")
    body = r.json() if r.status == 200 else {}
    check(r.status == 200, f"PATCH: 200 ({r.status} {r.body[:200]})")
    check(body.get("title") == "Patched" and "hedge" not in body, "PATCH sets and removes members")
    check(body.get("date", {}).get("phrase") == "on 19 June" and
          body.get("date", {}).get("from") == "2024-06-19", "PATCH merges nested objects")
    r = s.request("PATCH", f"/v1/events/{eid}", {"title": "x"})
    check(r.status == 415, f"PATCH as application/json: 415 ({r.status})")
    r = s.request("PATCH", f"/v1/events/{eid}", {"summary": None, "status": "rumoured", "type": 7},
                  ctype="application/merge-patch+json")
    ptrs = [e["pointer"] for e in r.json().get("errors", [])] if r.status == 422 else []
    check(r.status == 422 and len(ptrs) >= 3 and "/status" in ptrs and "/type" in ptrs
          and "" in ptrs, f"PATCH breaking three rules: 422 listing each ({r.status} {ptrs})")
    r = s.request("PATCH", f"/v1/events/{eid}", [1, 2], ctype="application/merge-patch+json")
    check(r.status == 422, f"a PATCH that is not an object replaces the record: 422 ({r.status})")
    r = s.request("PATCH", "/v1/events/nothing-here", {"title": "x"},
                  ctype="application/merge-patch+json")
    check(r.status == 404, f"PATCH of an unknown record: 404 ({r.status})")

    # 422 on POST, with JSON pointers
    bad = event("wt-bad")
    bad["participants"] = [{"actor": "kim-jong-un", "role": "astronaut"}]
    bad["date"] = {"precision": "day", "from": "2024-02-30", "to": "2024-02-30", "basis": "stated"}
    del bad["summary"]
    r = s.request("POST", "/v1/events", bad)
    errs = r.json().get("errors", []) if r.status == 422 else []
    check(r.status == 422 and len(errs) >= 3, f"POST breaking rules: 422 with each ({r.status}, {len(errs)})")
    check(all(e["pointer"] == "" or e["pointer"].startswith("/") for e in errs),
          "every 422 error has a JSON pointer")
    r = s.request("POST", "/v1/events", event("wt-ref", participants=[{"actor": "nobody", "role": "host"}]))
    check(r.status in (409, 422), f"a dangling reference is refused ({r.status})")

    # malformed JSON
    rev = s.revision()
    r = s.request("POST", "/v1/events", b'{\n  "slug": "x",\n  "title": oops\n}')
    pj = r.json() if r.status == 400 else {}
    check(r.status == 400 and pj.get("type") == "urn:factsd:problem:malformed-json",
          f"malformed JSON: 400 ({r.status})")
    check(pj.get("line") == 3 and pj.get("column", 0) > 0, f"the 400 gives line and column: {pj}")
    r = s.request("POST", "/v1/events", b'{"slug":"a","slug":"b"}')
    check(r.status == 400, f"duplicate keys: 400 ({r.status})")
    r = s.request("POST", "/v1/events", b"")
    check(r.status == 400, f"empty content: 400 ({r.status})")
    deep = b'{"slug":"zq-sentinel","x":' + b"[" * 40 + b"]" * 40 + b"}"
    r = s.request("POST", "/v1/events", deep)
    check(r.status == 400 and b"zq-sentinel" not in r.body,
          f"nesting over 30: 400, not echoed ({r.status})")
    too_deep = b'{"x":' + b"[" * 30 + b"]" * 30 + b"}"
    r = s.request("POST", "/v1/events", too_deep)
    check(r.status == 400, f"nesting of 31: 400 ({r.status})")
    ok_depth = b'{"x":' + b"[" * 29 + b"]" * 29 + b"}"
    r = s.request("POST", "/v1/events", ok_depth)
    check(r.status == 422 and r.json()["errors"][0]["rule"] != "limit",
          f"nesting of 30 parses and is judged on its content: 422 ({r.status})")
    r = s.request("PUT", "/v1/events/shoigu-visit-pyongyang", event("shoigu-visit-pyongyang"),
                  headers={"If-Match": '*, "x"'})
    check(r.status == 412, f"If-Match: * must stand alone ({r.status})")
    check(s.revision() == rev, "refused writes leave the revision alone")

    # DELETE
    r = s.request("DELETE", "/v1/actors/kim-jong-un")
    errs = r.json().get("errors", []) if r.status == 409 else []
    check(r.status == 409 and errs and errs[0]["pointer"].startswith("/events/"),
          f"deleting a referenced actor: 409 pointing at the referrer ({r.status})")
    etag = s.get(f"/v1/events/{eid}").header("ETag")
    r = s.request("DELETE", f"/v1/events/{eid}", headers={"If-Match": '"0123456789abcdef"'})
    check(r.status == 412, f"DELETE with a stale If-Match: 412 ({r.status})")
    r = s.request("DELETE", f"/v1/events/{eid}", headers={"If-Match": etag})
    check(r.status == 204 and r.body == b"", f"DELETE: 204 with no body ({r.status})")
    check(s.get(f"/v1/events/{eid}").status == 404, "a deleted record is gone")
    r = s.request("DELETE", f"/v1/events/{eid}")
    check(r.status == 404, f"DELETE again: 404 ({r.status})")
    r = s.request("DELETE", "/v1/actors/wt-person")
    check(r.status == 204, f"DELETE an unreferenced actor: 204 ({r.status})")

    # troop estimates take writes too
    est = {"slug": "wt-estimate", "sender": "north-korea", "receiver": "russia", "low": 1,
           "high": 2, "unit": "troops", "kind": "additional", "certainty": "reported",
           "description": "An estimate written by the write test.",
           "period": {"precision": "unknown", "basis": "unknown"},
           "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}]}
    r = s.request("POST", "/v1/troop-estimates", est)
    check(r.status == 201, f"POST a troop estimate: 201 ({r.status} {r.body[:300]})")
    est["low"] = 5
    r = s.request("PUT", "/v1/troop-estimates/wt-estimate", est)
    check(r.status == 422 and any(e["rule"] == "low-high" for e in r.json().get("errors", [])),
          f"low above high: 422 low-high ({r.status})")


def test_refusals(s):
    rev = s.revision()
    r = s.request("POST", "/v1/events", event("wt-noauth"), auth=False)
    check(r.status == 401 and (r.header("WWW-Authenticate") or "").startswith("Bearer"),
          f"no token: 401 with a Bearer challenge ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-noauth"), auth=False,
                  headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
    check(r.status == 401 and 'error="invalid_token"' in (r.header("WWW-Authenticate") or ""),
          f"a wrong token: 401, invalid_token ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-noauth"), auth=False,
                  headers={"Authorization": "Basic " + TOKEN})
    check(r.status == 401, f"another scheme: 401 ({r.status})")
    r = s.request("DELETE", "/v1/events/shoigu-visit-pyongyang", auth=False)
    check(r.status == 401, f"DELETE without a token: 401 ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-noauth"), auth=False,
                  headers={"Authorization": "bearer   " + TOKEN})
    check(r.status == 201, f"the scheme is case-insensitive: 201 ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-ct"), ctype=None)
    check(r.status == 415, f"no Content-Type: 415 ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-ct"), ctype="text/plain")
    check(r.status == 415, f"text/plain: 415 ({r.status})")
    r = s.request("PUT", "/v1/events/shoigu-visit-pyongyang", event("x"),
                  ctype="application/merge-patch+json")
    check(r.status == 415, f"PUT as merge-patch: 415 ({r.status})")
    r = s.request("POST", "/v1/events/shoigu-visit-pyongyang", event("x"))
    check(r.status == 405 and r.header("Allow") == "GET, HEAD, OPTIONS, PUT, PATCH, DELETE",
          f"POST on an item: 405 with Allow ({r.status})")
    r = s.request("PUT", "/v1/events", event("x"))
    check(r.status == 405 and r.header("Allow") == "GET, HEAD, OPTIONS, POST",
          f"PUT on a collection: 405 ({r.status})")
    r = s.request("POST", "/v1/sources", {"slug": "x"})
    check(r.status == 405, f"sources take no writes: 405 ({r.status})")
    r = s.request("POST", "/v1/nothing", {"slug": "x"})
    check(r.status == 404, f"POST to no route: 404 ({r.status})")
    base = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\n")
    st, h, _, _ = s.raw((base + "Connection: close\r\n\r\n").encode(), "POST", "/v1/events")
    check(st == 411, f"no Content-Length: 411 ({st})")
    body = json.dumps(event("wt-chunked")).encode()
    chunked = (base + "Transfer-Encoding: chunked\r\n\r\n").encode() + \
        f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    st, h, _, closed = s.raw(chunked, "POST", "/v1/events")
    check(st == 411 and closed, f"chunked content: 411 and close ({st})")
    # 413 from Content-Length alone: no content is ever sent
    st, h, _, closed = s.raw((base + "Content-Length: 70000\r\n\r\n").encode(), "POST",
                             "/v1/events")
    check(st == 413 and closed, f"Content-Length over 64 KiB: 413 before any content ({st})")
    st, h, _, closed = s.raw((base + "Content-Length: 70000\r\nExpect: 100-continue\r\n\r\n")
                             .encode(), "POST", "/v1/events")
    check(st == 413, f"with Expect: 100-continue: 413, no 100 Continue ({st})")
    big = {"slug": "wt-big", "title": "x" * 66000}
    r = s.request("POST", "/v1/events", big)
    check(r.status == 413, f"a 66 kB body: 413 ({r.status})")
    # keep-alive survives a refused write that carries no content
    conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
    conn.request("DELETE", "/v1/events/shoigu-visit-pyongyang")
    r1 = conn.getresponse()
    r1.read()
    conn.request("GET", "/healthz")
    r2 = conn.getresponse()
    r2.read()
    conn.close()
    check(r1.status == 401 and r2.status == 200, "a 401 without content keeps the connection")
    # CORS preflight for writes
    r = s.request("OPTIONS", "/v1/events/shoigu-visit-pyongyang", auth=False,
                  headers={"Origin": "https://a.example",
                           "Access-Control-Request-Method": "PUT",
                           "Access-Control-Request-Headers": "authorization, content-type"})
    m = r.header("Access-Control-Allow-Methods") or ""
    hd = r.header("Access-Control-Allow-Headers") or ""
    check(r.status == 204 and "PUT" in m and "PATCH" in m and "DELETE" in m,
          f"preflight allows the write methods: {m}")
    check("Authorization" in hd and "Content-Type" in hd and "If-Match" in hd,
          f"preflight allows Authorization, Content-Type, If-Match: {hd}")
    check(s.revision() == rev + 1, "only the one authorised write changed anything")


def test_read_only(root):
    d = setup_dir(root, "readonly")
    s = Server(d, ["--data", os.path.join(d, "data.json")])
    r = s.request("POST", "/v1/events", event("wt-ro"))
    check(r.status == 403 and "read-only" in r.json().get("detail", ""),
          f"no token configured: 403 read-only ({r.status})")
    r = s.request("PATCH", "/v1/events/shoigu-visit-pyongyang", {"title": "x"},
                  ctype="application/merge-patch+json")
    check(r.status == 403, f"PATCH on a read-only server: 403 ({r.status})")
    check(s.get("/v1/events/shoigu-visit-pyongyang").status == 200, "reads stay public")
    s.stop()
    # the token from the environment
    s = Server(d, ["--data", os.path.join(d, "data.json")], env={"FACTSD_TOKEN": TOKEN})
    r = s.request("POST", "/v1/events", event("wt-env"))
    check(r.status == 201, f"FACTSD_TOKEN enables writes: 201 ({r.status})")
    r = s.request("POST", "/v1/admin/compact")
    check(r.status == 200, f"compaction without a journal saves the dataset ({r.status})")
    s.stop()
    s = Server(d, ["--data", os.path.join(d, "data.json")])
    check(s.get("/v1/events/wt-env").status == 200, "the compacted dataset holds the write")
    s.stop()
    # the content cap is configurable (FACTSD_MAX_BODY, --max-body wins)
    s = Server(d, ["--data", os.path.join(d, "data.json")],
               env={"FACTSD_TOKEN": TOKEN, "FACTSD_MAX_BODY": "100000"})
    r = s.request("POST", "/v1/events", event("wt-cap", summary="z" * 1200))
    check(r.status == 201, f"FACTSD_MAX_BODY raises the cap ({r.status})")
    s.stop()
    s = Server(d, ["--data", os.path.join(d, "data.json"), "--max-body", "1000"],
               env={"FACTSD_TOKEN": TOKEN, "FACTSD_MAX_BODY": "100000"})
    r = s.request("POST", "/v1/events", event("wt-cap2", summary="z" * 1200))
    check(r.status == 413 and "1000" in r.json().get("detail", ""),
          f"--max-body 1000: a larger write gets 413 ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-cap3"))
    check(r.status == 201, f"--max-body 1000: a smaller write passes ({r.status})")
    s.stop()
    # A body within --max-body whose journal record would exceed the journal's
    # record cap is refused as too large, and writes stay on.
    s = Server(d, ["--data", os.path.join(d, "data.json"), "--journal",
                   os.path.join(d, "big.journal"), "--max-body", "1048576"],
               env={"FACTSD_TOKEN": TOKEN})
    big = actor("wt-huge", "Huge")
    big["aliases"] = [f"{i:02d}" + "a" * 65000 for i in range(16)]
    big["description"] = "d"
    big["description"] = "d" * (1048576 - 16 - len(json.dumps(big)))
    r = s.request("POST", "/v1/actors", big)
    check(r.status == 413, f"a record too large for the journal gets 413 ({r.status})")
    r = s.request("POST", "/v1/events", event("wt-after-huge"))
    check(r.status == 201, f"writes go on after a too-large record ({r.status})")
    s.stop()
    # compaction needs a file
    s = Server(d, ["--token-file", os.path.join(d, "token")])
    r = s.request("POST", "/v1/admin/compact")
    check(r.status == 409, f"compaction of the embedded dataset: 409 ({r.status})")
    r = s.request("POST", "/v1/admin/compact", auth=False)
    check(r.status == 401, f"compaction without a token: 401 ({r.status})")
    s.stop()
    # token file permissions
    loose = os.path.join(d, "loose-token")
    write_file(loose, TOKEN + "\n", 0o640)
    s = Server(d, ["--token-file", loose], expect_start=False)
    check(not s.started and s.proc.returncode != 0 and "chmod 600" in s.stderr(),
          f"a group-readable token file refuses to start: {s.stderr().strip()}")
    write_file(loose, "short\n", 0o600)
    s = Server(d, ["--token-file", loose], expect_start=False)
    check(not s.started and TOKEN not in s.stderr(), "a malformed token refuses to start")
    s = Server(d, ["--token", TOKEN], expect_start=False)
    check(not s.started and s.proc.returncode == 2, "no --token flag: the token never goes on "
          "the command line")
    rc = subprocess.run([ARGS.factsd, "--compact"], capture_output=True, text=True)
    check(rc.returncode == 2 and "--data" in rc.stderr,
          f"--compact without --data: exit 2 ({rc.returncode} {rc.stderr[-500:]})")


def test_durability(root):
    d = setup_dir(root, "durable")
    s = Server(d, std_args(d))
    for i in range(5):
        s.request("POST", "/v1/events", event(f"wt-d{i}"))
    s.request("PATCH", "/v1/events/wt-d0", {"title": "Patched d0"},
              ctype="application/merge-patch+json")
    s.request("DELETE", "/v1/events/wt-d1")
    before = s.get("/v1/events?limit=500").json()
    rev = s.revision()
    check(s.stop(signal.SIGKILL) != 0, "killed")
    s = Server(d, std_args(d))
    after = s.get("/v1/events?limit=500").json()
    check(after == before, "after SIGKILL and restart every acknowledged write is there")
    check(s.revision() == rev, "the journal replays to the same revision")
    # compaction over HTTP
    r = s.request("POST", "/v1/admin/compact")
    check(r.status == 200 and r.json().get("revision") == rev, f"compaction: 200 ({r.status})")
    check(os.path.getsize(os.path.join(d, "journal")) == 8, "compaction empties the journal")
    with open(os.path.join(d, "data.json")) as f:
        check(json.load(f).get("revision") == rev, "the saved dataset states the revision")
    s.request("POST", "/v1/events", event("wt-after-compact"))
    s.stop()
    s = Server(d, std_args(d))
    check(s.revision() == rev + 1 and s.get("/v1/events/wt-after-compact").status == 200,
          "dataset plus the new journal replay after compaction")
    s.stop()
    # offline compaction
    rc = subprocess.run([ARGS.factsd, "--compact"] + std_args(d), capture_output=True, text=True)
    check(rc.returncode == 0, f"factsd --compact: exit 0 ({rc.stderr.strip()})")
    check(os.path.getsize(os.path.join(d, "journal")) == 8, "--compact empties the journal")
    s = Server(d, std_args(d))
    check(s.revision() == rev + 1 and s.get("/v1/events/wt-after-compact").status == 200,
          "the compacted dataset has everything")
    # reload
    data_path = os.path.join(d, "data.json")
    good = open(data_path).read()
    s.request("POST", "/v1/events", event("wt-journal-only"))
    write_file(data_path, good[: len(good) // 2])
    s.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check("reload failed" in s.stderr(), "an invalid file on SIGHUP is logged")
    check(s.revision() == rev + 2 and s.get("/v1/events/wt-journal-only").status == 200,
          "an invalid file leaves the running snapshot in place")
    # The same file again: nothing changes, no new revision.
    write_file(data_path, good)
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and "unchanged at revision" not in s.stderr():
        time.sleep(0.05)
    check(f"unchanged at revision {rev + 2}" in s.stderr() and s.revision() == rev + 2,
          "a reload of the same data changes nothing")
    # An edit that keeps the revision would give one revision two contents:
    # refused while a journal numbers the writes after it.
    changed = json.loads(good)
    for a in changed["actors"]:
        if a["slug"] == "russia":
            a["name"] = "Russian Federation"
    write_file(data_path, json.dumps(changed))
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and "not after the running revision" not in s.stderr():
        time.sleep(0.05)
    check("not after the running revision" in s.stderr() and s.revision() == rev + 2 and
          s.get("/v1/actors/russia").json()["name"] != "Russian Federation",
          "an edit without a later revision is refused, the running data stays")
    # The documented way: compact, edit, raise the revision.
    check(s.request("POST", "/v1/admin/compact").status == 200, "compaction before an edit")
    changed = json.loads(open(data_path).read())
    for a in changed["actors"]:
        if a["slug"] == "russia":
            a["name"] = "Russian Federation"
    changed["revision"] = rev + 3
    write_file(data_path, json.dumps(changed))
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and s.get("/v1/actors/russia", rec=False).json()["name"] != "Russian Federation":
        time.sleep(0.05)
    check(s.get("/v1/actors/russia").json()["name"] == "Russian Federation",
          "SIGHUP re-reads the dataset")
    check(s.get("/v1/events/wt-journal-only").status == 200 and s.revision() == rev + 3,
          "the compacted writes stay after a reload, at the dataset's new revision")
    r = s.request("POST", "/v1/events", event("wt-after-reload"))
    check(r.status == 201, f"writes go on after a reload ({r.status})")
    s.stop()
    s = Server(d, std_args(d))
    check(s.get("/v1/events/wt-after-reload").status == 200, "and are durable")
    s.stop()
    test_journal_matches_dataset(root)


def test_journal_matches_dataset(root):
    """A dataset file that claims a revision must hold the journal's changes up
    to it; otherwise skipping them would drop acknowledged writes."""
    d = setup_dir(root, "mismatch")
    data_path, journal_path = os.path.join(d, "data.json"), os.path.join(d, "journal")
    s = Server(d, std_args(d))
    base = s.revision()
    s.request("POST", "/v1/events", event("wt-acked-a"))
    s.request("POST", "/v1/events", event("wt-acked-b"))
    s.stop()
    original = open(data_path).read()
    kept_journal = open(journal_path, "rb").read()
    # An edited file that claims revisions it does not hold: refused, at start
    # and on SIGHUP, whether the journal goes on past it or not.
    for claimed in (base + 1, base + 2):
        edited = json.loads(original)
        edited["revision"] = claimed
        write_file(data_path, json.dumps(edited))
        s = Server(d, std_args(d), expect_start=False)
        check(not s.started and "journal-mismatch" in s.stderr(),
              f"a dataset claiming revision {claimed} without the writes is refused")
        if s.started:
            s.stop()
    write_file(data_path, original)
    s = Server(d, std_args(d))
    edited = json.loads(original)
    edited["revision"] = base + 1
    write_file(data_path, json.dumps(edited))
    s.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check("reload failed" in s.stderr() and s.get("/v1/events/wt-acked-a").status == 200,
          "a reload of such a file is refused and the running data stays")
    # The state compaction saves, with the old journal still there (a crash
    # between saving and starting a fresh journal): it holds the writes.
    write_file(data_path, original)
    r = s.request("POST", "/v1/admin/compact")
    check(r.status == 200, f"compaction ({r.status})")
    s.stop()
    with open(journal_path, "wb") as f:
        f.write(kept_journal)
    s = Server(d, std_args(d))
    check(s.get("/v1/events/wt-acked-a").status == 200 and
          s.get("/v1/events/wt-acked-b").status == 200 and s.revision() == base + 2,
          "a saved state with the journal it came from starts with every write")
    s.stop()


def journal_frames(path):
    """Offsets of the frames of a journal file."""
    data = open(path, "rb").read()
    offs = []
    o = 8
    while o + 16 <= len(data):
        n = int.from_bytes(data[o:o + 4], "little")
        offs.append(o)
        o += 16 + n
    return offs, len(data)


def test_torn_tails(root, rng):
    d = setup_dir(root, "torn")
    s = Server(d, std_args(d))
    for i in range(4):
        s.request("POST", "/v1/events", event(f"wt-t{i}"))
    s.stop()
    j = os.path.join(d, "journal")
    pristine = open(j, "rb").read()
    offs, size = journal_frames(j)
    last = offs[-1]
    cases = 0
    for trial in range(25):
        cut = rng.randrange(last + 1, size)  # inside the last record
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        with open(j, "wb") as f:
            f.write(pristine[:cut] + garbage)
        for f in os.listdir(d):
            if ".torn-" in f:
                os.unlink(os.path.join(d, f))
        s = Server(d, std_args(d), expect_start=False)
        ok = s.started
        if ok:
            ok = (s.get("/v1/events/wt-t2", rec=False).status == 200 and
                  s.get("/v1/events/wt-t3", rec=False).status == 404)
            s.stop()
        saved = [f for f in os.listdir(d) if ".torn-" in f]
        ok = ok and open(j, "rb").read() == pristine[:last] and len(saved) == 1
        ok = ok and "torn" in s.stderr()
        check(ok, f"torn tail cut at {cut} (+{len(garbage)} garbage bytes): recovery ends at the "
                  f"last good record, tail saved, warning logged")
        cases += 1
    # a flipped byte in the middle refuses to start, naming the offset
    bad = bytearray(pristine)
    pos = offs[1] + 20
    bad[pos] ^= 0x40
    with open(j, "wb") as f:
        f.write(bytes(bad))
    s = Server(d, std_args(d), expect_start=False)
    err = s.stderr()
    check(not s.started and s.proc.returncode != 0 and str(offs[1]) in err,
          f"a flipped byte mid-file refuses to start naming byte {offs[1]}: {err.strip()}")
    check(open(j, "rb").read() == bytes(bad), "a refused journal is left as it was")
    return cases


def test_failsync(root):
    d = setup_dir(root, "failsync")
    s = Server(d, std_args(d))  # creates the journal without the shim
    s.request("POST", "/v1/events", event("wt-f0"))
    s.stop()
    env = {"LD_PRELOAD": ARGS.failsync, "FACTSD_FAILSYNC_AFTER": "1",
           "ASAN_OPTIONS": "verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")}
    s = Server(d, std_args(d), env=env)
    r = s.request("POST", "/v1/events", event("wt-f1"))
    check(r.status == 201, f"a write before the failure: 201 ({r.status})")
    rev = s.revision()
    r = s.request("POST", "/v1/events", event("wt-f2"))
    check(r.status == 500, f"the write whose fdatasync failed: 500, not acknowledged ({r.status})")
    check(s.get("/v1/events/wt-f2").status == 404 and s.revision() == rev,
          "the failed write is not published")
    r = s.request("POST", "/v1/events", event("wt-f3"))
    check(r.status == 503 and r.json()["type"] == "urn:factsd:problem:writes-disabled",
          f"later writes: 503 ({r.status})")
    r = s.request("DELETE", "/v1/events/wt-f0")
    check(r.status == 503, f"every later write: 503 ({r.status})")
    check(s.get("/v1/events/wt-f1").status == 200 and s.get("/v1/events?limit=5").status == 200,
          "reads go on")
    check("disabled" in s.stderr(), "the failure is logged")
    s.stop()
    s = Server(d, std_args(d))
    check(s.get("/v1/events/wt-f1").status == 200, "acknowledged writes survive the restart")
    check(s.get("/v1/events/wt-f3").status == 404, "refused writes are not there")
    r = s.request("POST", "/v1/events", event("wt-f4"))
    check(r.status == 201, f"after a restart writes are taken again ({r.status})")
    s.stop()


def test_disk_full(root):
    d = setup_dir(root, "full")
    s = Server(d, std_args(d))
    s.request("POST", "/v1/events", event("wt-full-0"))
    s.stop()
    j = os.path.join(d, "journal")
    size = os.path.getsize(j)
    limit = size + 200  # room for a delete's record, not for a create's

    def cap():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    s = Server(d, std_args(d), preexec=cap)
    rev = s.revision()
    r = s.request("POST", "/v1/events", event("wt-full-1", summary="y" * 400))
    check(r.status == 507 and r.json()["type"] == "urn:factsd:problem:insufficient-storage",
          f"a full disk: 507 ({r.status})")
    check(os.path.getsize(j) == size, "the journal is trimmed back to its last record")
    check(s.revision() == rev and s.get("/v1/events/wt-full-1").status == 404,
          "nothing is published")
    check(s.get("/v1/events/wt-full-0").status == 200, "reads go on")
    r = s.request("DELETE", "/v1/events/wt-full-0")
    check(r.status == 204, f"a smaller write that fits still succeeds ({r.status})")
    s.stop()
    s = Server(d, std_args(d))
    check(s.get("/v1/events/wt-full-0").status == 404 and s.revision() == rev + 1,
          "the journal replays cleanly after a full disk")
    s.stop()


def test_concurrency(root, writers=4, readers=4, per_writer=25):
    d = setup_dir(root, "concurrent")
    s = Server(d, std_args(d))
    base = s.get("/v1/events?limit=500", rec=False).json()
    base_total, base_rev = base["total"], base["revision"]
    acked = []
    revs = []
    problems = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(w):
        for i in range(per_writer):
            slug = f"wt-c{w}-{i}"
            r = s.request("POST", "/v1/events", event(slug), rec=False)
            if r.status != 201:
                problems.append(f"{slug}: {r.status}")
                continue
            with lock:
                acked.append(slug)
                revs.append(int(r.header("X-Revision") or 0))
            # read-your-writes from another connection
            if s.get(f"/v1/events/{slug}", rec=False).status != 200:
                problems.append(f"{slug} acknowledged but not readable")

    seen = [0]

    def reader():
        while not stop.is_set():
            r = s.get("/v1/events?limit=500", rec=False)
            if r.status != 200:
                problems.append(f"page: {r.status}")
                continue
            p = r.json()
            if r.header("X-Revision") != str(p["revision"]):
                problems.append("X-Revision differs from the page's revision")
            created = p["revision"] - base_rev
            mine = sum(1 for it in p["items"] if it["slug"].startswith("wt-c"))
            if p["total"] != base_total + created or mine != created or \
                    len(p["items"]) != min(p["total"], 500):
                problems.append(f"revision {p['revision']}: total {p['total']}, "
                                f"{mine} test records, want {created}")
            ix = s.get("/v1", rec=False).json()
            if ix["revision"] < p["revision"]:
                problems.append("the revision went backwards")
            seen[0] += 1

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    rs = [threading.Thread(target=reader) for _ in range(readers)]
    for t in rs + ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    for t in rs:
        t.join()
    check(not problems, f"readers and writers at once: {problems[:5]}")
    check(len(acked) == writers * per_writer, f"every write acknowledged ({len(acked)})")
    check(sorted(revs) == list(range(base_rev + 1, base_rev + 1 + len(acked))),
          "each acknowledged write made exactly one revision (X-Revision of the 201s)")
    final = s.get("/v1/events?limit=500", rec=False).json()
    check(final["revision"] == base_rev + len(acked) and
          final["total"] == base_total + len(acked), "the final revision counts every write")
    check(seen[0] > 20, f"the readers read while writes went on ({seen[0]} pages)")
    s.stop(signal.SIGKILL)
    s = Server(d, std_args(d))
    check(s.get("/v1/events?limit=500", rec=False).json() == final,
          "after SIGKILL the journal gives the same state")
    s.stop()


def main():
    global ARGS
    ARGS = parse_args("--failsync")
    rng = random.Random(int(os.environ.get("WRITE_TEST_SEED", "4")))
    with tempfile.TemporaryDirectory(prefix="factsd-write-") as root:
        d = setup_dir(root, "main")
        s = Server(d, std_args(d))
        # the validator's self-test drifts an event, an event page and a 400
        s.get("/v1/events/shoigu-visit-pyongyang")
        s.get("/v1/events?limit=3")
        test_create_read_update_delete(s)
        test_refusals(s)
        check(s.stop() == 0, "SIGTERM: exit 0")
        test_read_only(root)
        test_durability(root)
        test_torn_tails(root, rng)
        test_failsync(root)
        test_disk_full(root)
        test_concurrency(root)
    return finish(ARGS)


if __name__ == "__main__":
    sys.exit(main())
