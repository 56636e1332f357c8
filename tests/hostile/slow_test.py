#!/usr/bin/env python3
"""Slow clients against the real factsd binary: slowhttptest's slowloris
(-H: headers that never end), slow body (-B, R.U.D.Y.: a POST whose content
trickles in) and slow read (-X: responses read a few bytes at a time
through a tiny receive window), N connections each (default 1,000), with
factsd's connection limits and timeouts at their defaults.

Each attack runs twice or three times, each time on a new server:
  one address    all connections from 127.0.0.1: the per-address limit
                 (64) is the defence, and refuses most of them;
  20 addresses   the srcaddr shim spreads them over 127.0.0.10-29, so that
                 about N are held at once and the server must cope;
  no token       (slow body only) a server without a write token, which
                 answers a POST at its headers and closes the connection.
The slow body attack needs its POST to be a write the server would take:
its runs with a token send Authorization through slowhttptest's cookie
option (-j), the only header it lets a caller set.

During each attack a probe client makes sequential GETs from 127.0.0.2 (a
new connection each, so each must be accepted too): at least 99 % of them
must be answered 200 within 1 s. This is the acceptance rule, a count of
answers, not a timing of the server. Afterwards /healthz must answer 200
and factsd's resident memory (VmRSS) must be back within 10 % (plus 1 MiB)
of what it was before the attack. The largest number of connections the
server held (its factsd_http_connections gauge, sampled every 0.5 s from
127.0.0.3) must be about N with 20 addresses and at most the per-address
limit with one. Under AddressSanitizer the memory rule is reported but not
applied: the sanitizer keeps freed memory in quarantine.

usage: slow_test.py --factsd PATH --srcaddr LIB --slowhttptest PATH
                    --attack slowloris|slow-body|slow-read
                    [--duration S] [--connections N] [--figures FILE]
An empty --slowhttptest, or one that is not there, skips (exit status 77).
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

import common
from common import Monitor, Probe, Server, check, figure

PER_IP_DEFAULT = 64    # factsd's --max-connections-per-ip default
SPREAD = 20            # source addresses the shim spreads over
RATE = 500             # connections slowhttptest opens a second
PROBE_TARGETS = ["/v1/events?limit=5", "/v1/actors/russia", "/healthz",
                 "/v1/troop-estimates/summary"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--factsd", required=True)
    p.add_argument("--srcaddr", required=True)
    p.add_argument("--slowhttptest", default="")
    p.add_argument("--attack", required=True, choices=["slowloris", "slow-body", "slow-read"])
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--figures", default="")
    a = p.parse_args()
    if a.duration < 4:
        p.error("--duration: at least 4 seconds")
    return a


def attack_args(attack, url, n, duration, auth):
    """slowhttptest's arguments for attack at url."""
    common_args = ["-c", str(n), "-r", str(RATE), "-l", str(duration), "-p", "3", "-g"]
    if attack == "slowloris":
        return ["-H", "-i", "2", "-u", url + "/v1/events"] + common_args
    if attack == "slow-body":
        a = ["-B", "-i", "2", "-s", "8192", "-t", "POST", "-f", "application/json",
             "-u", url + "/v1/events"]
        if auth:
            # The Cookie header's value, then a header of our own.
            a += ["-j", "x=1\r\nAuthorization: Bearer " + common.TOKEN]
        return a + common_args
    # slow read: a 150 KB response, twice per connection, through a window of
    # 512 to 1024 bytes, 32 bytes read every 2 s.
    return ["-X", "-k", "2", "-w", "512", "-y", "1024", "-n", "2", "-z", "32",
            "-u", url + "/openapi.json"] + common_args


def client_counts(csv_path):
    """slowhttptest's own view from its CSV: the most connections it had
    connected at once, and how many it saw closed by the end."""
    most = closed = 0
    try:
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                most = max(most, int(row.get("Connected", 0) or 0))
                closed = int(row.get("Closed", 0) or 0)
    except (OSError, ValueError):
        pass
    return most, closed


def run_one(args, workdir, run, spread, token):
    n = args.connections
    label = f"{args.attack} / {run}"
    server_args = []
    if token:
        tok = os.path.join(workdir, "token")
        common.write_token(tok)
        server_args = ["--token-file", tok, "--journal", os.path.join(workdir, f"journal-{run}")]
    s = Server(args.factsd, workdir, server_args, name=run.replace(" ", "-"))
    try:
        # Warm up: every probe target, and the response the slow reader reads.
        for _ in range(20):
            for t in PROBE_TARGETS + ["/openapi.json"]:
                s.status_of(t)
        s.settle(1, timeout=5)
        before = s.rss()
        s.peak_reset()

        env = dict(os.environ)
        if spread:
            env.update(LD_PRELOAD=os.path.abspath(args.srcaddr),
                       HOSTILE_SRC_FIRST=str(common.SPREAD_FIRST),
                       HOSTILE_SRC_COUNT=str(SPREAD))
        prefix = os.path.join(workdir, args.attack + "-" + run.replace(" ", "-"))
        cmd = [args.slowhttptest] + attack_args(args.attack, f"http://127.0.0.1:{s.port}", n,
                                                args.duration, token) + ["-o", prefix]
        monitor = Monitor(s)
        monitor.start()
        t0 = time.monotonic()
        tool = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, text=True)
        # The probe starts once the connections are open (N / RATE seconds)
        # and runs until the attack ends.
        ramp = min(n / RATE + 1.0, args.duration / 2)
        time.sleep(ramp)
        probe = Probe(s, PROBE_TARGETS)
        probe.start()
        time.sleep(max(1.0, args.duration - (time.monotonic() - t0)))
        probe.stop()
        held_end = monitor.last
        try:
            _, tool_err = tool.communicate(timeout=args.duration + 30)
        except subprocess.TimeoutExpired:
            tool.kill()
            _, tool_err = tool.communicate()
        monitor.stop()
        check(tool.returncode == 0, f"{label}: slowhttptest ran ({tool.returncode}: "
                                    f"{(tool_err or '')[-500:]})")

        # Afterwards: the connections go, the server answers, memory is back.
        left = s.settle(1, timeout=30)
        after = s.rss_settled()
        health = s.status_of("/healthz")
        peak = s.peak()
        most_client, closed_client = client_counts(prefix + ".csv")
        refused_posts = s.metric('factsd_http_requests_total{route="/v1/{collection}",'
                                 'method="POST",code="4xx"}')
        row = {"attack": args.attack, "run": run, "connections": n,
               "duration_s": args.duration, "held_max": monitor.most,
               "held_end": held_end, "client_connected_max": most_client,
               "client_closed": closed_client,
               "posts_answered_4xx": int(refused_posts or 0), **probe.summary(),
               "rss_before_kib": before, "rss_peak_kib": peak, "rss_after_kib": after,
               "healthz": health, "sanitized": s.sanitized}
        figure("attack", **row)

        check(s.alive(), f"{label}: factsd is still running")
        check(probe.total >= 20, f"{label}: the probe made enough requests ({probe.total})")
        check(probe.share() >= common.PROBE_RULE,
              f"{label}: {probe.within} of {probe.total} probe requests "
              f"({100 * probe.share():.1f} %) answered within 1 s; statuses "
              f"{probe.statuses}, worst {probe.worst_s:.2f} s")
        check(health == 200, f"{label}: /healthz answers 200 afterwards ({health})")
        check(left is not None and left <= 1,
              f"{label}: the attack's connections are gone afterwards ({left})")
        if spread:
            check(monitor.most >= 0.9 * n,
                  f"{label}: about {n} connections were held at once ({monitor.most})")
        else:
            # The probe's connection may be open when a sample is taken.
            check(monitor.most <= PER_IP_DEFAULT + 1,
                  f"{label}: one address holds at most {PER_IP_DEFAULT} ({monitor.most})")
        if not token and args.attack == "slow-body":
            # (slowhttptest ends as soon as it has no connection left.)
            check(monitor.most <= 16 and (refused_posts or 0) >= 0.5 * n,
                  f"{label}: a POST without a token is answered at its headers and "
                  f"closed: at most {monitor.most} held, {refused_posts} answered 4xx")
        if s.sanitized:
            print(f"{label}: RSS {before} -> {after} KiB not checked under "
                  "AddressSanitizer (freed memory stays in its quarantine)")
        else:
            check(common.rss_back(before, after),
                  f"{label}: RSS back within 10 % + 1 MiB: before {before} KiB, peak "
                  f"{peak} KiB, after {after} KiB")
    finally:
        s.stop()


def main():
    args = parse_args()
    tool = args.slowhttptest
    if not tool or shutil.which(tool) is None:
        print("SKIP: slowhttptest is not installed (tests/install-deps installs it)")
        return common.SKIP
    args.slowhttptest = shutil.which(tool)
    if not os.path.exists(args.srcaddr):
        print(f"FAIL: the srcaddr shim is missing: {args.srcaddr}")
        return 1
    common.raise_nofile(args.connections * 2 + 512)
    runs = [("one address", False, args.attack == "slow-body"),
            ("20 addresses", True, args.attack == "slow-body")]
    if args.attack == "slow-body":
        runs.insert(0, ("no token", False, False))
    with tempfile.TemporaryDirectory(prefix="factsd-hostile-") as workdir:
        for run, spread, token in runs:
            run_one(args, workdir, run, spread, token)
    return common.finish(args.figures)


if __name__ == "__main__":
    sys.exit(main())
