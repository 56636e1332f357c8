"""Shared pieces of the Python integration tests: counting checks, recording
every response, and validating the recorded responses against the OpenAPI
description at the end (with the node validator the C test uses too)."""
import argparse
import gzip
import http.client
import json
import signal
import socket
import subprocess
import tempfile
import threading
import time

CHECKS = [0, 0]  # passed, failed
RECORDS = []
_RECORD_LOCK = threading.Lock()


def parse_args(*extra):
    """The options every Python integration test takes (paths the meson
    test passes), plus extra ones; all required."""
    ap = argparse.ArgumentParser()
    for a in ("--factsd", "--openapi", "--record", "--node", "--validator", "--dataset") + extra:
        ap.add_argument(a, required=True)
    return ap.parse_args()


def check(ok, what):
    """Counts one check; prints what failed."""
    if ok:
        CHECKS[0] += 1
    else:
        CHECKS[1] += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def record(method, target, status, headers, body):
    """Keeps one response for the validation at the end."""
    with _RECORD_LOCK:
        RECORDS.append({"method": method, "target": target, "status": status,
                        "headers": {k.lower(): v for k, v in headers.items()},
                        "body": body.decode("utf-8", "replace")})


def finish(args):
    """Writes the recorded responses to args.record, validates them against
    args.openapi with args.validator, prints the tally; returns the exit
    status (0 only when every check passed and every response is valid)."""
    with open(args.record, "w") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    print(f"{CHECKS[0] + CHECKS[1]} checks, {CHECKS[1]} failed", flush=True)
    rc = subprocess.run([args.node, args.validator, args.openapi, args.record])
    if rc.returncode != 0:
        print("FAIL: responses do not match the OpenAPI description")
    return 0 if CHECKS[1] == 0 and rc.returncode == 0 else 1


class Resp:
    """An answer: status, headers (lower-case names), raw bytes and the body
    (gunzipped when the answer was gzip-encoded)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = raw
        enc = self.headers.get("content-encoding")
        self.body = gzip.decompress(raw) if enc == "gzip" and raw else raw

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)


def http_request(port, method, target, headers=None, body=None, token=None, timeout=20,
                 content_type="application/json", keep=True):
    """One request to 127.0.0.1:port on a connection of its own: body (a
    JSON value) is sent as content_type; token adds its Bearer header (and
    an empty body's length); no Accept-Encoding unless headers give one.
    Returns a Resp, recorded for the validation at the end when keep."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = content_type
        h["Content-Length"] = str(len(data))
    if token:
        h["Authorization"] = "Bearer " + token
        h.setdefault("Content-Length", "0")
    try:
        conn.putrequest(method, target, skip_accept_encoding="Accept-Encoding" in h)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders(data)
        r = conn.getresponse()
        raw = r.read()
    finally:
        conn.close()
    resp = Resp(r.status, r.getheaders(), raw)
    if keep:
        record(method, target, resp.status, resp.headers, resp.body)
    return resp


class Factsd:
    """A factsd process started with args; once it prints its listening
    line, port and addr ("127.0.0.1:PORT") say where. stderr is kept
    (text())."""

    def __init__(self, exe, args, env=None, wait=True):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([exe] + list(args), stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self.port = None
        self.addr = None
        if wait:
            self.wait_listening()

    def wait_listening(self):
        line = self.proc.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"factsd did not start: {line!r} {self.text()}")
        self.port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        self.addr = f"127.0.0.1:{self.port}"
        return self

    def text(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM, then the exit status (None when it had to be killed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def wait_until(fn, timeout=5.0, step=0.02):
    """Calls fn until it returns something true or timeout seconds pass;
    returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def free_port():
    """A loopback port nothing listens on (now)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
