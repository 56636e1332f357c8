#!/usr/bin/env python3
"""hardening_test.py - the request-hardening rules of factsd, byte for byte.

usage: hardening_test.py FACTSD

Starts the real binary on 127.0.0.1:0, sends each case's exact bytes over a
raw socket, and checks every response it gets back: the status line, the
headers it must carry, a body of exactly the announced length (none after
HEAD, 204 or 304), and that nothing else follows - no further response
smuggled out of a request body, before the connection closes or goes quiet.
Prints one line per case and a final "N passed, M failed"; exits 1 on any
failure. Python 3 standard library only.
"""
import os
import socket
import subprocess
import sys
import threading
import time

PROBLEM = ("Content-Type", "application/problem+json")
CLOSE = ("Connection", "close")
NO_BODY_STATUS = (204, 304)


class Server:
    """A factsd process on a port of its own."""

    def __init__(self, exe, *extra, env=None):
        self.proc = subprocess.Popen(
            [exe, "--listen", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode("ascii", "replace").strip()
        url = line[line.index("http://"):] if "http://" in line else ""
        if not url:
            self.stop()
            raise RuntimeError("factsd printed no URL: %r" % line)
        host_port = url[len("http://"):].split("/")[0]
        host, port = host_port.rsplit(":", 1)
        self.addr = (host, int(port))
        # Keep draining stdout (the access log, if any) so factsd never blocks.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def connect(self, timeout=5.0):
        s = socket.create_connection(self.addr, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self):
        """Stops factsd; raises unless it exits cleanly (sanitizers report
        through the exit status)."""
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("factsd did not stop on SIGTERM")
        if rc != 0:
            raise AssertionError("factsd exited with status %d" % rc)


class Reader:
    """Reads HTTP/1.1 responses off a socket, keeping what is left over."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            raise AssertionError("connection reset")
        except socket.timeout:
            raise AssertionError("timed out waiting for data")
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("connection closed before a complete response "
                                     "(got %r)" % self.buf[:200])
        block, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = block.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise AssertionError("bad status line %r" % lines[0])
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = 0
        chunked = any(n == "transfer-encoding" and "chunked" in v.lower() for n, v in headers)
        if not head_request and status not in NO_BODY_STATUS and status >= 200:
            lengths = [v for n, v in headers if n == "content-length"]
            if chunked:
                raise AssertionError("unexpected chunked response")
            if len(lengths) != 1:
                raise AssertionError("expected one Content-Length, got %r" % lengths)
            length = int(lengths[0])
        while len(self.buf) < length:
            if not self._fill():
                raise AssertionError("body cut short")
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def expect_close(self, within=5.0):
        self.sock.settimeout(within)
        try:
            while self._fill():
                pass
        except AssertionError as e:
            if "reset" not in str(e):
                raise
        if self.buf:
            raise AssertionError("bytes after the last response: %r" % self.buf[:200])

    def expect_quiet(self, within=0.3):
        self.sock.settimeout(within)
        try:
            self._fill()
        except AssertionError as e:
            if "timed out" not in str(e):
                raise
        if self.buf:
            raise AssertionError("bytes after the last response: %r" % self.buf[:200])
        if self.eof:
            raise AssertionError("the connection closed, keep-alive expected")


def header(headers, name):
    return [v for n, v in headers if n == name.lower()]


def check_response(got, want):
    status, headers, _ = got
    if status != want["status"]:
        raise AssertionError("status %d, expected %d" % (status, want["status"]))
    for name, value in want.get("headers", ()):
        values = header(headers, name)
        if not any(v.lower() == value.lower() for v in values):
            raise AssertionError("missing %s: %s (have %r)" % (name, value, values))
    for name in want.get("absent", ()):
        if header(headers, name):
            raise AssertionError("unexpected %s header" % name)


def run_exchange(server, data, responses, end):
    """Sends data, reads responses in order, then checks the end state."""
    s = server.connect()
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before reading everything
        r = Reader(s)
        for want in responses:
            check_response(r.response(want.get("head", False)), want)
        if end == "close":
            r.expect_close()
        else:
            r.expect_quiet()
    finally:
        s.close()


def req(line, *headers, body=b"", host="h"):
    out = line.encode("latin-1") if isinstance(line, str) else line
    out += b"\r\n"
    if host is not None:
        out += b"Host: " + host.encode("latin-1") + b"\r\n"
    for h in headers:
        out += (h.encode("latin-1") if isinstance(h, str) else h) + b"\r\n"
    return out + b"\r\n" + body


def ok(status=200, *headers, head=False):
    return {"status": status, "headers": list(headers), "head": head}


def refused(status=400):
    return {"status": status, "headers": [PROBLEM, CLOSE]}


SMUGGLED = req("GET /v1/events HTTP/1.1")
CHUNK_SMUGGLED = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
HEALTH = req("GET /healthz HTTP/1.1")


def chunked(n, size):
    one = b"%x\r\n" % size + b"a" * size + b"\r\n"
    return one * n + b"0\r\n\r\n"


CASES = [
    # name, bytes, responses, end
    ("baseline GET", HEALTH, [ok(200)], "open"),
    # 1. header names must be tokens
    ("space before colon: Content-Length",
     req("POST /healthz HTTP/1.1", "Content-Length : %d" % len(SMUGGLED), body=SMUGGLED),
     [refused()], "close"),
    ("space before colon: Transfer-Encoding",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding : chunked", body=CHUNK_SMUGGLED),
     [refused()], "close"),
    ("tab before colon", req("GET /healthz HTTP/1.1", "X-A\t: b"), [refused()], "close"),
    ("non-token name", req("GET /healthz HTTP/1.1", "X(A): b"), [refused()], "close"),
    ("control byte in name", req("GET /healthz HTTP/1.1", b"X-\x01: a"), [refused()], "close"),
    # 2. Transfer-Encoding: exactly one, exactly chunked
    ("TE chunked (any case, leading spaces)",
     req("GET /healthz HTTP/1.1", "Transfer-Encoding:  ChUnKeD", body=b"0\r\n\r\n"),
     [ok(200)], "open"),
    # (libmicrohttpd keeps trailing whitespace and would not decode the chunks)
    ("TE chunked with trailing whitespace",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: chunked ", body=b"0\r\n\r\n"),
     [refused()], "close"),
    ("two TE headers",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
         body=b"0\r\n\r\n"), [refused()], "close"),
    ("TE chunked, identity",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n"),
     [refused()], "close"),
    ("TE gzip, chunked",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
     [refused()], "close"),
    ("TE identity",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: identity", body=b"0\r\n\r\n"),
     [refused()], "close"),
    ("TE xchunked",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: xchunked", body=b"0\r\n\r\n"),
     [refused()], "close"),
    # 3. too much content: an answer, not a reset
    ("chunked content over the cap",
     req("GET /healthz HTTP/1.1", "Transfer-Encoding: chunked", body=chunked(5, 4096)),
     [refused(413)], "close"),
    ("Content-Length over the cap",
     req("GET /healthz HTTP/1.1", "Content-Length: 20480", body=b"a" * 20480),
     [refused(413)], "close"),
    # A method the route does not take is refused from the headers alone,
    # before any content is read; the unread content ends the connection.
    ("chunked content over the cap, POST on a read route",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: chunked", body=chunked(5, 4096)),
     [{"status": 405, "headers": [PROBLEM, ("Allow", "GET, HEAD, OPTIONS"),
                                  ("Connection", "close")]}], "close"),
    ("small chunked POST on a read route",
     req("POST /healthz HTTP/1.1", "Transfer-Encoding: chunked", body=chunked(2, 100)),
     [{"status": 405, "headers": [PROBLEM, ("Allow", "GET, HEAD, OPTIONS")]}], "close"),
    # 5. raw space and non-ASCII bytes in the target
    ("raw space in the path", req("GET /v1/actors/kim jong HTTP/1.1"), [refused()], "close"),
    ("raw space in the query", req("GET /v1/events?q=a b HTTP/1.1"), [refused()], "close"),
    ("raw UTF-8 in the path", req(b"GET /v1/actors/k\xc3\xa9 HTTP/1.1"), [refused()], "close"),
    ("raw DEL in the path", req(b"GET /healthz\x7f HTTP/1.1"), [refused()], "close"),
    # 8. control bytes, obs-fold, Host
    ("NUL in a value", req("GET /healthz HTTP/1.1", b"X-A: a\x00b"), [refused()], "close"),
    ("NUL in the last value", req("GET /healthz HTTP/1.1", b"X-A: a\x00b", host=None)
     .replace(b"\r\n", b"\r\nHost: h\r\n", 1), [refused()], "close"),
    ("control byte in a value", req("GET /healthz HTTP/1.1", b"X-A: a\x01b"), [refused()], "close"),
    ("DEL in a value", req("GET /healthz HTTP/1.1", b"X-A: a\x7fb"), [refused()], "close"),
    ("tab in a value is fine", req("GET /healthz HTTP/1.1", b"X-A: a\tb"), [ok(200)], "open"),
    ("obs-fold", req("GET /healthz HTTP/1.1", "X-A: a", " b"), [refused()], "close"),
    ("obs-fold with a tab", req("GET /healthz HTTP/1.1", "X-A: a", "\tb"), [refused()], "close"),
    ("obs-fold of Host", req("GET /healthz HTTP/1.1", " b"), [refused()], "close"),
    ("Host with a space", req("GET /healthz HTTP/1.1", host="a b/c"), [refused()], "close"),
    ("Host with a slash", req("GET /healthz HTTP/1.1", host="a/c"), [refused()], "close"),
    ("Host with a bad port", req("GET /healthz HTTP/1.1", host="a:8x"), [refused()], "close"),
    ("Host name:port", req("GET /healthz HTTP/1.1", host="Example.COM:8080"), [ok(200)], "open"),
    ("Host IPv6 literal", req("GET /healthz HTTP/1.1", host="[::1]:80"), [ok(200)], "open"),
    # 9. absolute-form and asterisk-form targets
    ("absolute-form", req("GET http://example.com/healthz HTTP/1.1"), [ok(200)], "open"),
    ("absolute-form, upper-case scheme and a port",
     req("GET HTTP://example.com:8080/healthz HTTP/1.1"), [ok(200)], "open"),
    ("absolute-form without a path is / (the dashboard page)",
     req("GET http://example.com HTTP/1.1"), [ok(200)], "open"),
    ("absolute-form with a bad authority",
     req("GET http://exa^mple.com/healthz HTTP/1.1"), [refused()], "close"),
    ("absolute-form with an empty host", req("GET http:///healthz HTTP/1.1"), [refused()],
     "close"),
    ("absolute-form https", req("GET https://example.com/healthz HTTP/1.1"), [refused()],
     "close"),
    ("OPTIONS *", req("OPTIONS * HTTP/1.1"),
     [ok(204, ("Allow", "GET, HEAD, OPTIONS"))], "open"),
    ("GET *", req("GET * HTTP/1.1"), [refused()], "close"),
    # 11. no body after HEAD (the next pipelined response follows at once)
    ("HEAD has no body",
     req("HEAD /v1/events HTTP/1.1") + HEALTH,
     [ok(200, head=True), ok(200)], "open"),
]


def etag_cases(server):
    """Cases needing a live ETag: a 304 has no body either."""
    s = server.connect()
    try:
        s.sendall(req("GET /v1/events HTTP/1.1"))
        _, headers, _ = Reader(s).response()
    finally:
        s.close()
    tags = header(headers, "etag")
    if not tags:
        return [("304 has no body (no ETag to test with)", b"", [ok(304)], "open")]
    return [("304 has no body",
             req("GET /v1/events HTTP/1.1", "If-None-Match: " + tags[0]) + HEALTH,
             [ok(304, ("ETag", tags[0])), ok(200)], "open")]


def slow_headers(exe):
    """6. Headers must be complete within --timeout, however slowly they come."""
    server = Server(exe, "--timeout", "2")
    try:
        s = server.connect()
        start = time.monotonic()
        closed_after = None
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: h\r\n")
            s.settimeout(1.0)
            for i in range(10):
                try:
                    if s.recv(4096) == b"":
                        closed_after = time.monotonic() - start
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_after = time.monotonic() - start
                    break
                s.sendall(b"X-Slow-%d: a\r\n" % i)
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - start
        finally:
            s.close()
        if closed_after is None or closed_after > 4.5:
            raise AssertionError("a header line a second kept the connection open %s"
                                 % ("for 10 s" if closed_after is None
                                    else "for %.1f s" % closed_after))
        # A prompt request on a fresh connection still gets its answer.
        run_exchange(server, HEALTH, [ok(200)], "open")
    finally:
        server.stop()


def config_env(exe):
    """10. The environment applies only where no flag speaks; --help first."""
    env = dict(os.environ, FACTSD_THREADS="x")
    out = subprocess.run([exe, "--help"], env=env, capture_output=True, timeout=10)
    if out.returncode != 0 or b"--listen" not in out.stdout:
        raise AssertionError("--help with a bad FACTSD_THREADS exited %d" % out.returncode)
    out = subprocess.run([exe, "--version"], env=env, capture_output=True, timeout=10)
    if out.returncode != 0:
        raise AssertionError("--version with a bad FACTSD_THREADS exited %d" % out.returncode)
    out = subprocess.run([exe, "--listen", "127.0.0.1:0"], env=env, capture_output=True,
                         timeout=10)
    if out.returncode == 0 or b"FACTSD_THREADS" not in out.stderr:
        raise AssertionError("a bad FACTSD_THREADS without --threads was not refused")
    server = Server(exe, "--threads", "2", env=env)  # the flag overrides the variable
    try:
        run_exchange(server, HEALTH, [ok(200)], "open")
    finally:
        server.stop()


def main():
    if len(sys.argv) != 2:
        print("usage: hardening_test.py FACTSD", file=sys.stderr)
        return 2
    exe = sys.argv[1]
    passed = failed = 0
    server = Server(exe)
    try:
        cases = CASES + etag_cases(server)
        for name, data, responses, end in cases:
            try:
                run_exchange(server, data, responses, end)
                print("ok   %s" % name)
                passed += 1
            except (AssertionError, OSError) as e:
                print("FAIL %s: %s" % (name, e))
                failed += 1
    finally:
        try:
            server.stop()
            print("ok   clean exit")
            passed += 1
        except AssertionError as e:
            print("FAIL clean exit: %s" % e)
            failed += 1
    name = "header deadline (--timeout 2, one header line a second)"
    try:
        slow_headers(exe)
        print("ok   %s" % name)
        passed += 1
    except (AssertionError, OSError) as e:
        print("FAIL %s: %s" % (name, e))
        failed += 1
    name = "environment: --help first, flags override variables"
    try:
        config_env(exe)
        print("ok   %s" % name)
        passed += 1
    except (AssertionError, OSError, RuntimeError, subprocess.SubprocessError) as e:
        print("FAIL %s: %s" % (name, e))
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
