#!/usr/bin/env python3
"""Writes the seed corpora of the server's parser targets (request,
negotiate, params, etag) from the integration tests' tables, in each
target's input layout (see the comment at the top of its fuzz_<name>.c).

usage: tests/fuzz/make-parser-seeds.py

request:   every raw request of tests/integration/hardening_test.py's CASES
negotiate: the Accept and Accept-Encoding values of
           tests/integration/formats_test.py (ACCEPTS, ENCODINGS)
params:    the targets tests/integration/http_test.c requests, and the
           change feed's queries of tests/integration/feed_test.py
etag:      the If-Match and If-None-Match values of the write and format
           tests, the live ETag written as the byte 0x01 (0x02: the gzip one)

Needs no server. The output is committed: run this only to refresh it (it
overwrites the files it writes, no others). The dictionaries are written by
hand.
"""
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
INTEGRATION = os.path.join(ROOT, "tests", "integration")
CORPUS = os.path.join(HERE, "corpus")
sys.path.insert(0, INTEGRATION)
sys.dont_write_bytecode = True

import formats_test  # noqa: E402  (tables only; main() is not run)
import hardening_test  # noqa: E402


def out(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def request_seed(raw):
    """A raw request -> fuzz_request's layout: flags, target, field lines."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) < 3:
        return None
    method, version = parts[0], parts[-1]
    target = b" ".join(parts[1:-1])
    flags = 0
    if method == b"OPTIONS":
        flags |= 1
    if version == b"HTTP/1.1":
        flags |= 2
    if method in (b"POST", b"PUT", b"PATCH", b"DELETE"):
        flags |= 4
    return bytes([flags]) + b"\n".join([target] + lines[1:]) + b"\n"


def requests():
    for case in hardening_test.CASES:
        seed = request_seed(case[1])
        if seed is not None:
            out("request", seed)
    # The same over LF-only lines, and with a Content-Length.
    out("request", bytes([2 | 8]) + b"/v1/events\nHost: h\n")
    out("request", bytes([2 | 4]) + b"/v1/events\nHost: h\nContent-Length: 42\n")
    out("request", bytes([2]) + b"/v1/events?q=a%20b&limit=2\nHost: [::1]:8080\n"
        b"Accept: text/csv\n")


def negotiation():
    encodings = [ae for ae, _ in formats_test.ENCODINGS if ae is not None]
    accepts = [a for a, _ in formats_test.ACCEPTS if a is not None]
    for i, accept in enumerate(accepts):
        ae = encodings[i % len(encodings)]
        out("negotiate", bytes([0, 0]) + accept.encode() + b"\0" + ae.encode())
    out("negotiate", bytes([2, 0]) + b"application/openmetrics-text; version=1.0.0,"
        b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1\0gzip")
    out("negotiate", bytes([3, 0x3f]) + b"text/*;q=0.3, text/html;q=0.7, */*;q=0.5")


def params():
    with open(os.path.join(INTEGRATION, "http_test.c"), encoding="utf-8") as f:
        targets = sorted(set(re.findall(r'"(/v1[^" ]*)"', f.read())))
    for t in targets:
        t = t.replace("%s", "russia").replace("%zu", "3")
        out("params", bytes([0, 0, 0]) + t.encode())
        if "?" in t:
            # The query alone, with every parameter allowed and dates.
            out("params", bytes([3 | 4, 0, 0]) + t.split("?", 1)[1].encode())
    with open(os.path.join(INTEGRATION, "feed_test.py"), encoding="utf-8") as f:
        text = f.read()
    queries = set(re.findall(r'"/v1/changes\?([^"]*)"', text))
    queries |= set(q.lstrip("?") for q in re.findall(r'"(\?since[^"]*|\?limit[^"]*)"', text))
    for q in sorted(queries):
        q = re.sub(r"\{[^}]*\}", "7", q)
        out("params", bytes([2, 8, 0]) + q.encode())


ETAG, GZIP = b"\x01", b"\x02"


def etags():
    values = [
        ETAG, b"W/" + ETAG, b"*", b" * ", b'*, "x"', b'"0000000000000000", ' + ETAG,
        b'"0123456789abcdef"', GZIP, b'"0000000000000000-gzip"', ETAG + b", " + GZIP,
        b"W/" + GZIP, b'W/"x", W/"y"', b'"a,b", ' + ETAG, b'"unterminated',
    ]
    for v in values:
        out("etag", bytes([0]) + v)
        out("etag", bytes([2 << 2]) + v)
    # Built lists: kinds with separators, another tag of 4 bytes.
    out("etag", bytes([2, 0 | 8, 5, 4, 1, 2, 3, 4, 1, 2 | 16]))
    out("etag", bytes([3, 4 | 32]))
    out("etag", bytes([2 | (2 << 2), 1 | 24, 3, 5, 2, 9, 9, 9, 9, 9, 0]))


def main():
    requests()
    negotiation()
    params()
    etags()


if __name__ == "__main__":
    main()
