#!/usr/bin/env python3
"""A connection flood past factsd's connection limits, on a server started
with small ones (--max-connections 50 --max-connections-per-ip 10):

  per address  30 keep-alive connections from 127.0.0.1, opened one after
               the other, each sending a GET: 10 are served and stay open,
               the other 20 are refused; a client from 127.0.0.2 is still
               served (one address's limit blocks no other);
  in all       10 more from each of 8 other addresses: 40 are served (50 in
               all), 40 refused, and so is one more from 127.0.0.2;
  burst        for --duration seconds, rounds of 500 connections at once
               from 20 addresses, each a GET with Connection: close.

A refusal must be clean: the connection closed (or reset) without an
answer, or a 503. Any other status, or a connection left without an answer
or a close for 10 s, fails. Afterwards every connection is closed, the
server must still run and serve 127.0.0.1 and 127.0.0.2 again, and its
resident memory must be back within 10 % (plus 1 MiB) of what it was before
the burst. Counts of served and refused connections are reported.

usage: flood_test.py --factsd PATH [--duration S] [--figures FILE]
"""
import argparse
import errno
import selectors
import socket
import sys
import tempfile
import time

import common
from common import Server, check, figure

MAX_CONNECTIONS = 50
MAX_PER_IP = 10
BURST = 500
BURST_SOURCES = 20
STUCK_S = 10.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--factsd", required=True)
    p.add_argument("--duration", type=int, default=3)
    p.add_argument("--figures", default="")
    return p.parse_args()


def request_bytes(port, target, close):
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def status_of(data):
    """The status code of the response that data begins, or None."""
    if not data.startswith(b"HTTP/1."):
        return None
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def response_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def keep_alive_attempt(port, source):
    """Opens a connection from source and sends one GET /healthz; returns
    (outcome, socket): "served" with the socket left open, "refused" (closed,
    reset or 503) or "unexpected:<what>" with the socket closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(STUCK_S)
    data = b""
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(request_bytes(port, "/healthz", close=False))
        while not response_complete(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        s.close()
        return "unexpected:no answer and no close", None
    except (ConnectionResetError, BrokenPipeError):
        pass
    status = status_of(data)
    if status == 200 and response_complete(data):
        return "served", s
    s.close()
    if status is None and not data:
        return "refused", None
    if status == 503:
        return "refused", None
    return f"unexpected:{status} {data[:80]!r}", None


def burst_round(port, n, first_octet):
    """n connections at once from BURST_SOURCES addresses, each a GET with
    Connection: close, read to the end; returns the count of each outcome."""
    sel = selectors.DefaultSelector()
    counts = {}
    req = request_bytes(port, "/v1/events?limit=1", close=True)
    socks = {}
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((f"127.0.0.{first_octet + i % BURST_SOURCES}", 0))
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            counts["refused at connect"] = counts.get("refused at connect", 0) + 1
            s.close()
            continue
        socks[s] = {"sent": False, "data": b""}
        sel.register(s, selectors.EVENT_WRITE)

    def done(s, outcome):
        counts[outcome] = counts.get(outcome, 0) + 1
        sel.unregister(s)
        s.close()
        del socks[s]

    deadline = time.monotonic() + STUCK_S
    while socks and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            st = socks[s]
            if not st["sent"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    done(s, "refused at connect")
                    continue
                try:
                    s.send(req)
                except (ConnectionResetError, BrokenPipeError):
                    done(s, "refused")
                    continue
                st["sent"] = True
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = None
            if chunk:
                st["data"] += chunk
                continue
            status = status_of(st["data"])
            if status == 200 and response_complete(st["data"]):
                done(s, "served")
            elif status == 503 or (status is None and not st["data"]):
                done(s, "refused")
            else:
                done(s, f"unexpected:{status}")
    for s in list(socks):
        done(s, "stuck")
    sel.close()
    return counts


def main():
    args = parse_args()
    common.raise_nofile(4 * BURST + 256)
    with tempfile.TemporaryDirectory(prefix="factsd-hostile-") as workdir:
        s = Server(args.factsd, workdir, ["--max-connections", str(MAX_CONNECTIONS),
                                          "--max-connections-per-ip", str(MAX_PER_IP)])
        try:
            held = []

            def attempts(source, n):
                served = refused = 0
                for _ in range(n):
                    outcome, sock = keep_alive_attempt(s.port, source)
                    if outcome == "served":
                        served += 1
                        held.append(sock)
                    elif outcome == "refused":
                        refused += 1
                    else:
                        check(False, f"a connection from {source} is served or refused "
                                     f"cleanly ({outcome})")
                return served, refused

            # One address past its limit.
            served, refused = attempts("127.0.0.1", 30)
            figure("flood", phase="per address", attempts=30, served=served, refused=refused,
                   limit=MAX_PER_IP)
            check(served == MAX_PER_IP and refused == 30 - MAX_PER_IP,
                  f"one address: {MAX_PER_IP} served, the rest refused ({served}/{refused})")
            other = s.status_of("/healthz", source=common.PROBE_SOURCE)
            check(other == 200, f"another address is served meanwhile ({other})")

            # Past the limit in all.
            served_all = refused_all = 0
            for k in range(8):
                a, b = attempts(f"127.0.0.{common.SPREAD_FIRST + k}", 10)
                served_all += a
                refused_all += b
            figure("flood", phase="in all", attempts=80, served=served_all,
                   refused=refused_all, limit=MAX_CONNECTIONS)
            check(served_all == MAX_CONNECTIONS - MAX_PER_IP and
                  refused_all == 80 - served_all,
                  f"in all: {MAX_CONNECTIONS} open at most, the rest refused "
                  f"({served_all} served, {refused_all} refused)")
            outcome, sock = keep_alive_attempt(s.port, common.PROBE_SOURCE)
            check(outcome == "refused", f"a new address is refused cleanly while the server "
                                        f"is full ({outcome})")
            if sock is not None:
                held.append(sock)

            for sock in held:
                sock.close()
            held.clear()
            left = s.settle(1, timeout=10)
            check(left is not None and left <= 1, f"the connections are gone ({left})")
            for src in ("127.0.0.1", common.PROBE_SOURCE):
                st = s.status_of("/healthz", source=src)
                check(st == 200, f"{src} is served again once they closed ({st})")

            # Bursts.
            s.settle(1, timeout=5)
            before = s.rss()
            s.peak_reset()
            totals = {}
            rounds = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.duration:
                for k, v in burst_round(s.port, BURST, 30 + (rounds % 4) * BURST_SOURCES).items():
                    totals[k] = totals.get(k, 0) + v
                rounds += 1
            alive = s.alive()
            left = s.settle(1, timeout=15)
            after = s.rss_settled()
            statuses = {src: s.status_of("/healthz", source=src)
                        for src in ("127.0.0.1", common.PROBE_SOURCE)}
            burst_served = totals.get("served", 0)
            burst_refused = totals.get("refused", 0) + totals.get("refused at connect", 0)
            bad = {k: v for k, v in totals.items() if k.startswith("unexpected") or k == "stuck"}
            figure("flood", phase="burst", rounds=rounds, attempts=rounds * BURST,
                   served=burst_served, refused=burst_refused,
                   refused_at_connect=totals.get("refused at connect", 0),
                   bad=sum(bad.values()), rss_before_kib=before, rss_peak_kib=s.peak(),
                   rss_after_kib=after, duration_s=args.duration, sanitized=s.sanitized)
            check(alive, "factsd survives the bursts")
            check(not bad, f"every burst connection is served or refused cleanly ({bad})")
            check(burst_served >= MAX_CONNECTIONS,
                  f"the bursts are served up to the limit at least ({burst_served})")
            check(left is not None and left <= 1, f"the burst connections are gone ({left})")
            check(all(v == 200 for v in statuses.values()),
                  f"both addresses are served after the bursts ({statuses})")
            if s.sanitized:
                print(f"burst: RSS {before} -> {after} KiB not checked under AddressSanitizer")
            else:
                check(common.rss_back(before, after),
                      f"RSS back within 10 % + 1 MiB after the bursts: {before} -> {after} KiB")
        finally:
            s.stop()
    return common.finish(args.figures)


if __name__ == "__main__":
    sys.exit(main())
