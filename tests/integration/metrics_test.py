#!/usr/bin/env python3
"""Integration test of /metrics and /readyz: requests of known kinds move
the request counters, bytes and latency histograms by exactly what they
should (and nothing else); histograms are cumulative with +Inf equal to
_count; writes, compaction, held long-polls and streams show in their
metrics; Accept chooses OpenMetrics; promtool finds no problem in either
format; --metrics-listen (and FACTSD_METRICS_LISTEN) moves /metrics to its
own listener; a real Prometheus scrapes it. Every response is recorded and
checked against the OpenAPI description at the end.

usage: metrics_test.py --factsd PATH --openapi OPENAPI.json --record FILE
                       --node NODE --validator SCRIPT --dataset DATA.json
                       --promtool PROMTOOL --prometheus PROMETHEUS
(PROMTOOL or PROMETHEUS "" when not installed: the promtool checks then
fail, the Prometheus scrape is skipped.) Talks only to 127.0.0.1.
"""
import gzip
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from harness import check, finish, http_request, parse_args

TOKEN = "metrics-test-token-0123456789abcdef"
ARGS = None
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
               "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
LES = ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
       "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
REQ = "factsd_http_requests_total"
DUR = "factsd_http_request_duration_seconds"
BYTES = "factsd_http_response_bytes_total"


def request(port, method, target, headers=None, body=None, token=False):
    return http_request(port, method, target, headers, body, TOKEN if token else None)


class Scrape:
    """One /metrics answer: its text and its samples, "name{labels}" -> value."""

    def __init__(self, resp):
        self.resp = resp
        self.text = resp.body.decode("utf-8")
        self.samples = {}
        for line in self.text.split("\n"):
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                self.samples[key] = float(value)

    def get(self, key, default=0.0):
        return self.samples.get(key, default)

    def series(self, prefix):
        return {k: v for k, v in self.samples.items() if k.startswith(prefix)}


def scrape(port, accept=None):
    return Scrape(request(port, "GET", "/metrics", {"Accept": accept} if accept else None))


def req_key(route, method, code):
    return f'{REQ}{{route="{route}",method="{method}",code="{code}"}}'


def start(args, env=None):
    """Starts factsd; returns (process, main port, metrics port or None)."""
    proc = subprocess.Popen([ARGS.factsd] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
    mport = None
    if any(a.startswith("--metrics-listen") for a in args) or (env or {}).get("FACTSD_METRICS_LISTEN"):
        line = proc.stdout.readline()
        m = re.match(r"factsd metrics on http://127\.0\.0\.1:(\d+)/metrics$", line.strip())
        check(m is not None, f"the metrics URL is printed: {line!r}")
        mport = int(m.group(1)) if m else None
    return proc, port, mport


def stop(proc):
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    check("Sanitizer" not in err and "runtime error" not in err,
          f"no sanitizer report: {err[-2000:]}")
    check(proc.returncode == 0, f"factsd exits 0 ({proc.returncode})")


def check_histograms(s, what):
    """Every histogram in s is cumulative and its +Inf bucket is its _count."""
    families = {}
    for key, value in s.samples.items():
        m = re.match(r'^(\w+)_bucket\{(.*?),?le="([^"]+)"\}$', key)
        if m:
            families.setdefault((m.group(1), m.group(2)), {})[m.group(3)] = value
    check(families, f"{what}: histograms present")
    for (name, labels), buckets in families.items():
        check(list(buckets) == LES, f"{what}: {name}{{{labels}}} has the buckets in order: {list(buckets)}")
        values = [buckets.get(le, -1) for le in LES]
        check(all(a <= b for a, b in zip(values, values[1:])),
              f"{what}: {name}{{{labels}}} is cumulative: {values}")
        count_key = f"{name}_count{{{labels}}}" if labels else f"{name}_count"
        sum_key = f"{name}_sum{{{labels}}}" if labels else f"{name}_sum"
        check(s.samples.get(count_key) == buckets.get("+Inf"),
              f"{what}: {name}{{{labels}}} +Inf == _count")
        check(s.samples.get(sum_key, -1) >= 0, f"{what}: {name}{{{labels}}} has a sum")


# ------------------------------------------------------------ counting

def test_counts(port):
    """Known requests move the counters by exactly their number."""
    page = request(port, "GET", "/v1/events?limit=2")
    event_id = page.json()["items"][0]["id"]
    item_target = f"/v1/events/{event_id}"
    t0 = time.monotonic()
    before = scrape(port)
    expected = {}   # request series -> increase
    nbytes = {}     # route -> increase of bytes
    counts = {}     # route -> increase of timed requests

    def expect(route, method, code, n=1, body=0, timed=True):
        k = req_key(route, method, code)
        expected[k] = expected.get(k, 0) + n
        nbytes[route] = nbytes.get(route, 0) + body
        if timed:
            counts[route] = counts.get(route, 0) + n

    # The scrape itself completes after its answer was rendered: it shows
    # in the next one.
    expect("/metrics", "GET", "2xx", body=len(before.resp.raw))
    item_len = 0
    for _ in range(3):
        r = request(port, "GET", item_target)
        check(r.status == 200, f"GET {item_target}: {r.status}")
        item_len = len(r.raw)
        expect("/v1/{collection}/{key}", "GET", "2xx", body=len(r.raw))
    r = request(port, "GET", item_target, {"Accept-Encoding": "gzip"})
    check(r.header("content-encoding") == "gzip" and len(r.raw) < item_len,
          "the item comes gzip-encoded when asked")
    expect("/v1/{collection}/{key}", "GET", "2xx", body=len(r.raw))
    etag = r.header("etag")
    r = request(port, "GET", item_target, {"If-None-Match": etag})
    check(r.status == 304, f"a revalidation: {r.status}")
    expect("/v1/{collection}/{key}", "GET", "3xx")
    for _ in range(2):
        r = request(port, "HEAD", item_target)
        check(r.status == 200 and r.raw == b"", "HEAD: no body")
        expect("/v1/{collection}/{key}", "HEAD", "2xx")
    r = request(port, "GET", "/v1/events?limit=2")
    expect("/v1/{collection}", "GET", "2xx", body=len(r.raw))
    r = request(port, "GET", "/v1/events?bogus=1")
    check(r.status == 400, f"a bad parameter: {r.status}")
    expect("/v1/{collection}", "GET", "4xx", body=len(r.raw))
    for target in ["/nothing", "/v1/nothing/at/all/here"]:
        r = request(port, "GET", target)
        check(r.status == 404, f"{target}: {r.status}")
        expect("other", "GET", "4xx", body=len(r.raw))
    r = request(port, "OPTIONS", "/v1/events")
    check(r.status == 204, f"OPTIONS: {r.status}")
    expect("/v1/{collection}", "OPTIONS", "2xx")
    r = request(port, "DELETE", "/healthz", token=True)
    check(r.status == 405, f"DELETE /healthz: {r.status}")
    expect("/healthz", "DELETE", "4xx", body=len(r.raw))
    r = request(port, "BREW", "/healthz")
    check(r.status == 405, f"BREW /healthz: {r.status}")
    expect("/healthz", "other", "4xx", body=len(r.raw))
    r = request(port, "GET", "/readyz")
    expect("/readyz", "GET", "2xx", body=len(r.raw))

    # A request is counted when libmicrohttpd reports it complete, just
    # after its last byte is sent: the client can see the answer first.
    # Scrape until every request above shows (each scrape in between counts
    # once more under /metrics, whenever it completes).
    extra = []

    def settled(s):
        keys = set(before.series(REQ)) | set(s.series(REQ))
        return all(s.get(k) - before.get(k) == expected.get(k, 0)
                   for k in keys if 'route="/metrics"' not in k)

    after = scrape(port)
    deadline = time.monotonic() + 5
    while not settled(after) and time.monotonic() < deadline:
        extra.append(after)
        time.sleep(0.02)
        after = scrape(port)
    elapsed = time.monotonic() - t0
    mkey = req_key("/metrics", "GET", "2xx")
    late = int(after.get(mkey) - before.get(mkey) - expected[mkey])
    check(0 <= late <= len(extra), f"{mkey}: {late} of {len(extra)} extra scrapes counted")
    late = min(max(late, 0), len(extra))
    expected[mkey] += late
    counts["/metrics"] += late
    nbytes["/metrics"] += sum(len(x.resp.raw) for x in extra[:late])
    for key in set(before.series(REQ)) | set(after.series(REQ)):
        want = expected.get(key, 0)
        got = after.get(key) - before.get(key)
        check(got == want, f"{key} moved by {got}, expected {want}")
    for key in expected:
        check(key in after.samples, f"{key} is exported")
    for route, n in nbytes.items():
        key = f'{BYTES}{{route="{route}"}}'
        got = after.get(key) - before.get(key)
        check(got == n, f"{key} moved by {got}, expected {n}")
    for route, n in counts.items():
        got = after.get(f'{DUR}_count{{route="{route}"}}') - before.get(f'{DUR}_count{{route="{route}"}}')
        check(got == n, f"{DUR} of {route} counted {got}, expected {n}")
        dsum = after.get(f'{DUR}_sum{{route="{route}"}}') - before.get(f'{DUR}_sum{{route="{route}"}}')
        check(0 < dsum <= elapsed, f"{DUR} of {route}: the sum grew by {dsum} in {elapsed:.3f} s")
    # Routes only: a client cannot grow the label set.
    routes = {re.search(r'route="([^"]*)"', k).group(1) for k in after.series(REQ)}
    check(routes <= {"other", "/v1", "/healthz", "/readyz", "/metrics", "/openapi.json",
                     "/v1/{collection}", "/v1/{collection}/{key}", "/v1/actors/{key}/{collection}",
                     "/v1/troop-estimates/summary", "/v1/admin/compact", "/v1/changes",
                     "/v1/stream", "/dashboard"}, f"route labels: {routes}")
    check_histograms(after, "main listener")
    check(after.get("factsd_http_connections") >= 1, "the scrape's own connection is open")
    check(after.get("factsd_dataset_revision") == float(r.json()["revision"]),
          "the revision gauge is the one /readyz names")
    check(after.get(f'factsd_build_info{{version="{version()}"}}') == 1, "build info")
    start_time = after.get("process_start_time_seconds")
    check(time.time() - 600 < start_time <= time.time(), f"process start time {start_time}")
    return event_id


def version():
    out = subprocess.run([ARGS.factsd, "--version"], capture_output=True, text=True).stdout
    return out.split()[1]


# -------------------------------------------------------- writes, held

def event(slug):
    return {
        "slug": slug,
        "title": "An event written by the metrics test",
        "type": "meeting",
        "status": "reported",
        "date": {"precision": "day", "from": "2024-06-19", "to": "2024-06-19", "basis": "stated"},
        "participants": [{"actor": "kim-jong-un", "role": "host"}],
        "summary": "An event written by the metrics test.",
        "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}],
    }


def wait_for(port, key, value, what):
    """Scrapes until key has value (at most ~5 s)."""
    s = None
    for _ in range(100):
        s = scrape(port)
        if s.get(key) == value:
            break
        time.sleep(0.05)
    check(s is not None and s.get(key) == value, f"{what}: {key} = {s.get(key) if s else None}")
    return s


def test_writes(port):
    before = scrape(port)
    r = request(port, "POST", "/v1/events", body=event("metrics-test-1"), token=True)
    check(r.status == 201, f"POST: {r.status}")
    created = r.json()["id"]
    r = request(port, "DELETE", f"/v1/events/{created}", token=True)
    check(r.status == 204, f"DELETE: {r.status}")
    r = request(port, "POST", "/v1/admin/compact", token=True)
    check(r.status == 200, f"compact: {r.status}")
    want = [("factsd_journal_writes_total", 2), ("factsd_journal_write_errors_total", 0),
            ("factsd_journal_append_duration_seconds_count", 2),
            ("factsd_compactions_total", 1), ("factsd_dataset_revision", 2),
            ("factsd_feed_history_entries", 2),
            (req_key("/v1/{collection}", "POST", "2xx"), 1),
            (req_key("/v1/{collection}/{key}", "DELETE", "2xx"), 1),
            (req_key("/v1/admin/compact", "POST", "2xx"), 1)]
    # The compaction's answer can arrive before its request is counted
    # (see test_counts): scrape until it shows.
    after = scrape(port)
    deadline = time.monotonic() + 5
    while (any(after.get(k) - before.get(k) != n for k, n in want)
           and time.monotonic() < deadline):
        time.sleep(0.02)
        after = scrape(port)
    for key, n in want:
        got = after.get(key) - before.get(key)
        check(got == n, f"after two writes and a compaction {key} moved by {got}, expected {n}")
    check(after.get("factsd_journal_append_duration_seconds_sum")
          > before.get("factsd_journal_append_duration_seconds_sum"), "the journal's time grew")
    check_histograms(after, "after writes")


def test_held(port):
    """A long-poll and a stream show in their gauges while held; they are
    counted once done, but not timed."""
    before = scrape(port)
    rev = int(before.get("factsd_dataset_revision"))
    result = {}

    def poll():
        result["r"] = request(port, "GET", f"/v1/changes?since={rev}&wait=10")

    t = threading.Thread(target=poll)
    t.start()
    wait_for(port, "factsd_feed_long_polls", 1, "a long-poll waits")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    check(head.startswith(b"HTTP/1.1 200"), f"the stream opens: {head[:40]!r}")
    wait_for(port, "factsd_feed_streams", 1, "a stream is open")
    r = request(port, "POST", "/v1/events", body=event("metrics-test-2"), token=True)
    check(r.status == 201, f"POST: {r.status}")
    t.join(10)
    check(result.get("r") is not None and result["r"].status == 200, "the long-poll is answered")
    data = head
    deadline = time.monotonic() + 5
    while b"metrics-test-2" not in data and time.monotonic() < deadline:
        data += sock.recv(65536)
    check(b"metrics-test-2" in data, "the stream carries the change")
    sock.close()
    after = wait_for(port, "factsd_feed_streams", 0, "the stream is gone")
    check(after.get("factsd_feed_long_polls") == 0, "no long-poll waits")
    for key, n in [(req_key("/v1/changes", "GET", "2xx"), 1), (req_key("/v1/stream", "GET", "2xx"), 1),
                   (f'{DUR}_count{{route="/v1/changes"}}', 0), (f'{DUR}_count{{route="/v1/stream"}}', 0)]:
        got = after.get(key) - before.get(key)
        check(got == n, f"held requests: {key} moved by {got}, expected {n}")
    got = after.get(f'{BYTES}{{route="/v1/stream"}}') - before.get(f'{BYTES}{{route="/v1/stream"}}')
    check(got > 0, f"the stream's bytes are counted ({got})")
    got = after.get(f'{BYTES}{{route="/v1/changes"}}') - before.get(f'{BYTES}{{route="/v1/changes"}}')
    check(got == len(result["r"].raw), f"the long-poll's bytes are counted ({got})")


# ------------------------------------------------------------- formats

def test_formats(port):
    r = request(port, "GET", "/metrics")
    check(r.status == 200 and r.header("content-type") == TEXT_TYPE, f"text: {r.header('content-type')}")
    check("# EOF" not in r.body.decode() and "# UNIT" not in r.body.decode(), "text: no OpenMetrics lines")
    vary = {v.strip() for v in (r.header("vary") or "").split(",")}
    check({"Accept", "Accept-Encoding"} <= vary, f"Vary names Accept: {vary}")
    check(r.header("cache-control") == "no-cache", "no-cache")
    for accept in [PROM_ACCEPT, "application/openmetrics-text"]:
        r = request(port, "GET", "/metrics", {"Accept": accept})
        text = r.body.decode()
        check(r.header("content-type") == OM_TYPE, f"{accept}: {r.header('content-type')}")
        check(text.endswith("\n# EOF\n"), "OpenMetrics ends with # EOF")
        check("# TYPE factsd_http_requests counter\n" in text
              and "# TYPE factsd_http_requests_total" not in text,
              "OpenMetrics names a counter's family without _total")
        check("# UNIT factsd_http_request_duration_seconds seconds\n" in text, "# UNIT")
    for accept in ["text/plain", "application/json", "*/*",
                   "application/openmetrics-text;q=0.2, text/plain;q=0.9"]:
        r = request(port, "GET", "/metrics", {"Accept": accept})
        check(r.header("content-type") == TEXT_TYPE, f"{accept}: {r.header('content-type')}")
    r = request(port, "GET", "/metrics", {"Accept-Encoding": "gzip", "Accept": PROM_ACCEPT})
    check(r.header("content-encoding") == "gzip" and r.body.decode().endswith("# EOF\n"),
          "a gzip-encoded scrape")
    r = request(port, "HEAD", "/metrics")
    check(r.status == 200 and r.raw == b"" and r.header("content-type") == TEXT_TYPE, "HEAD /metrics")
    r = request(port, "GET", "/metrics?anything=1")
    check(r.status == 200, f"a query is ignored: {r.status}")
    r = request(port, "POST", "/metrics", token=True)
    check(r.status == 405 and r.header("allow") == "GET, HEAD, OPTIONS", f"POST /metrics: {r.status}")


def promtool_check(body, what, om):
    """promtool check metrics must find nothing. For OpenMetrics it reads
    the text format, which names a counter's family with its _total: its
    only admissible complaint is that such a sample has no HELP of that
    name, for counters whose HELP the body gives without _total."""
    if not check(ARGS.promtool != "", "promtool is installed (tests/install-deps: prometheus)"):
        return
    p = subprocess.run([ARGS.promtool, "check", "metrics"], input=body, capture_output=True)
    out = (p.stdout + p.stderr).decode().strip()
    print(f"promtool check metrics ({what}): exit {p.returncode}{': ' + out if out else ''}", flush=True)
    if not om:
        check(p.returncode == 0 and out == "", f"promtool on {what}: {out}")
        return
    text = body.decode()
    problems = [line for line in out.split("\n") if line]
    for line in problems:
        m = re.match(r"^(\w+)_total no help text$", line)
        check(m is not None and f"# TYPE {m.group(1)} counter\n" in text
              and f"# HELP {m.group(1)} " in text, f"promtool on {what}: {line}")
    check("error while linting" not in out and "parsing error" not in out,
          f"promtool parses {what}")
    counters = re.findall(r"^# TYPE (\w+) counter$", text, re.M)
    check(len(problems) == len(counters), f"promtool on {what}: one note per counter family")


def test_promtool(port):
    promtool_check(request(port, "GET", "/metrics").body, "the text format", False)
    promtool_check(request(port, "GET", "/metrics", {"Accept": PROM_ACCEPT}).body, "OpenMetrics", True)


def test_readyz(port):
    r = request(port, "GET", "/readyz")
    body = r.json()
    h = request(port, "GET", "/healthz").json()
    check(r.status == 200 and body == {"status": "ready", "revision": h["revision"]},
          f"/readyz: {r.status} {body}")
    check(r.header("content-type") == "application/json"
          and r.header("x-revision") == str(h["revision"]), "/readyz headers")
    r2 = request(port, "GET", "/readyz", {"If-None-Match": r.header("etag")})
    check(r2.status == 304, f"/readyz revalidates: {r2.status}")
    r = request(port, "HEAD", "/readyz")
    check(r.status == 200 and r.raw == b"", "HEAD /readyz")
    r = request(port, "POST", "/readyz", token=True)
    check(r.status == 405, f"POST /readyz: {r.status}")
    r = request(port, "OPTIONS", "/readyz")
    check(r.status == 204, f"OPTIONS /readyz: {r.status}")


# ------------------------------------------------------ metrics listener

def test_listener(port, mport):
    for method in ["GET", "HEAD", "OPTIONS"]:
        r = request(port, method, "/metrics")
        check(r.status == 404, f"{method} /metrics on the main listener: {r.status}")
    r = request(port, "POST", "/metrics", token=True)
    check(r.status == 404, f"POST /metrics on the main listener: {r.status}")
    for _ in range(2):
        request(port, "GET", "/healthz")
    s = scrape(mport)
    check(s.resp.status == 200 and s.resp.header("content-type") == TEXT_TYPE, "the listener scrapes")
    check(s.get(req_key("/healthz", "GET", "2xx")) == 2, "the listener counts the main listener's requests")
    check(s.get(req_key("other", "GET", "4xx")) == 1 and s.get(req_key("other", "HEAD", "4xx")) == 1
          and s.get(req_key("other", "OPTIONS", "4xx")) == 1 and s.get(req_key("other", "POST", "4xx")) == 1,
          "the main listener's /metrics counts as other")
    check_histograms(s, "metrics listener")
    for target in ["/healthz", "/v1/events", "/metrics/", "/nothing"]:
        r = request(mport, "GET", target)
        check(r.status == 404 and r.header("content-type") == "application/problem+json",
              f"{target} on the metrics listener: {r.status}")
    r = request(mport, "POST", "/metrics", {"Content-Length": "0"})
    check(r.status == 405 and r.header("allow") == "GET, HEAD, OPTIONS", f"POST on the listener: {r.status}")
    r = request(mport, "OPTIONS", "/metrics")
    check(r.status == 204 and r.header("allow") == "GET, HEAD, OPTIONS", f"OPTIONS on the listener: {r.status}")
    r = request(mport, "HEAD", "/metrics")
    check(r.status == 200 and r.raw == b"", "HEAD on the listener")
    r = request(mport, "GET", "/metrics", {"Accept": PROM_ACCEPT, "Accept-Encoding": "gzip"})
    check(r.header("content-type") == OM_TYPE and r.header("content-encoding") == "gzip"
          and r.body.decode().endswith("# EOF\n"), "OpenMetrics, gzip-encoded, on the listener")
    s = scrape(mport)
    for key, n in [(req_key("/metrics", "GET", "2xx"), 2), (req_key("/metrics", "HEAD", "2xx"), 1),
                   (req_key("/metrics", "POST", "4xx"), 1), (req_key("/metrics", "OPTIONS", "2xx"), 1),
                   (req_key("other", "GET", "4xx"), 5)]:
        check(s.get(key) == n, f"listener: {key} = {s.get(key)}, expected {n}")
    promtool_check(request(mport, "GET", "/metrics").body, "the listener's text format", False)


def listen_port(pid):
    """The TCP port process pid listens on (from /proc), or None."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    return int(cols[1].rsplit(":", 1)[1], 16)
    return None


def test_prometheus(tmp, mport):
    """A real Prometheus (which asks for OpenMetrics first) scrapes the
    listener once a second; its strict parser must take every sample."""
    if ARGS.prometheus == "":
        print("SKIP: prometheus is not installed: no real scrape", flush=True)
        return
    conf = os.path.join(tmp, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n- job_name: factsd\n  static_configs:\n"
                f"  - targets: ['127.0.0.1:{mport}']\n")
    began = time.monotonic()
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    prom = subprocess.Popen([ARGS.prometheus, f"--config.file={conf}",
                             f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
                             "--web.listen-address=127.0.0.1:0"], stdout=log, stderr=log)
    try:
        pport = None
        deadline = time.monotonic() + 15
        while pport is None and time.monotonic() < deadline and prom.poll() is None:
            time.sleep(0.1)
            pport = listen_port(prom.pid)
        if not check(pport is not None, "prometheus listens"):
            return

        def query(q):
            c = http.client.HTTPConnection("127.0.0.1", pport, timeout=5)
            c.request("GET", "/api/v1/query?query=" + urllib.parse.quote(q))
            data = json.loads(c.getresponse().read())
            c.close()
            return data["data"]["result"]

        result = []
        while time.monotonic() < deadline:
            try:
                result = query('factsd_http_requests_total{route="/metrics"}')
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                result = []
            if result:
                break
            time.sleep(0.2)
        check(len(result) >= 1, f"prometheus ingested the scrape's own count: {result}")
        up = query("up")
        check(len(up) == 1 and up[0]["value"][1] == "1", f"up == 1: {up}")
        c = http.client.HTTPConnection("127.0.0.1", pport, timeout=5)
        c.request("GET", "/api/v1/targets")
        targets = json.loads(c.getresponse().read())["data"]["activeTargets"]
        c.close()
        check(len(targets) == 1 and targets[0]["health"] == "up" and targets[0]["lastError"] == "",
              f"the target scrapes without error: {targets}")
        info = query("factsd_build_info")
        check(len(info) == 1 and info[0]["metric"].get("version") == version(), f"build info: {info}")
        hist = query('factsd_http_request_duration_seconds_bucket{route="/metrics",le="+Inf"}')
        check(len(hist) == 1, f"the histogram is ingested: {hist}")
        print(f"prometheus scraped the listener (OpenMetrics) within {time.monotonic() - began:.1f} s",
              flush=True)
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def test_config():
    r = subprocess.run([ARGS.factsd, "--metrics-listen", "nonsense"], capture_output=True, text=True)
    check(r.returncode == 2 and "--metrics-listen" in r.stderr, f"a bad --metrics-listen: {r.stderr[:200]}")
    r = subprocess.run([ARGS.factsd, "--help"], capture_output=True, text=True)
    check("--metrics-listen ADDR:PORT" in r.stdout and "FACTSD_METRICS_LISTEN" in r.stdout, "--help names it")
    env = dict(os.environ, FACTSD_METRICS_LISTEN="127.0.0.1:0")
    proc, port, mport = start(["--listen", "127.0.0.1:0", "--threads", "1"], env)
    try:
        check(mport is not None and request(mport, "GET", "/metrics").status == 200,
              "FACTSD_METRICS_LISTEN moves /metrics")
        check(request(port, "GET", "/metrics").status == 404, "... off the main listener")
    finally:
        stop(proc)


def main():
    global ARGS
    ARGS = parse_args("--promtool", "--prometheus")
    tmp = tempfile.mkdtemp(prefix="factsd-metrics-")
    token = os.path.join(tmp, "token")
    fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    data = os.path.join(tmp, "data.json")
    shutil.copy(ARGS.dataset, data)
    common = ["--listen", "127.0.0.1:0", "--threads", "2", "--token-file", token, "--data", data]
    try:
        proc, port, _ = start(common + ["--journal", os.path.join(tmp, "journal")])
        try:
            test_counts(port)
            test_writes(port)
            test_held(port)
            test_formats(port)
            test_promtool(port)
            test_readyz(port)
        finally:
            stop(proc)
        proc, port, mport = start(common + ["--metrics-listen", "127.0.0.1:0"])
        try:
            if check(mport is not None, "the metrics listener started"):
                test_listener(port, mport)
                test_prometheus(tmp, mport)
        finally:
            stop(proc)
        test_config()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish(ARGS)


if __name__ == "__main__":
    sys.exit(main())
