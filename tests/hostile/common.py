"""Shared pieces of the hostile-client tests (tests/hostile/): factsd on
port 0, its memory from /proc, a probe client from a source address of its
own, a monitor of the server's open connections, counted checks, and the
figures each test reports.

A test prints each figure as a line "figure: {json}" and, with --figures
FILE, appends the JSON to FILE as well (tests/hostile/run makes its tables
from them). Every address used is on loopback: the attack tools connect from
127.0.0.1 or, through the srcaddr shim, from 127.0.0.10 onwards; the probe
uses PROBE_SOURCE and the monitor MONITOR_SOURCE, so neither shares a
per-address limit with an attacker.
"""
import http.client
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

SKIP = 77                      # meson's exit status for a skipped test
PROBE_SOURCE = "127.0.0.2"     # the probe client
MONITOR_SOURCE = "127.0.0.3"   # /metrics and /healthz reads of the tests
SPREAD_FIRST = 10              # the first last octet the shim hands out
RSS_SLACK = 0.10               # "back within 10 %" of the RSS before ...
RSS_FLOOR_KIB = 1024           # ... plus this much: RSS is small
PROBE_LIMIT_S = 1.0            # a probe answer counts when it took at most this
PROBE_RULE = 0.99              # share of probe requests that must count
TOKEN = "hostile-test-token-0123456789abcdef"

CHECKS = [0, 0]  # passed, failed
_FIGURES = []


def check(ok, what):
    """Counts one check; prints what failed."""
    if ok:
        CHECKS[0] += 1
    else:
        CHECKS[1] += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def figure(kind, **values):
    """Reports one row of figures (printed now, written by finish)."""
    row = {"kind": kind, **values}
    _FIGURES.append(row)
    print("figure: " + json.dumps(row), flush=True)


def finish(figures_path):
    """Appends the figures to figures_path (when given), prints the tally;
    returns the exit status: 0 only when every check passed."""
    if figures_path:
        with open(figures_path, "a") as f:
            for row in _FIGURES:
                f.write(json.dumps(row) + "\n")
    print(f"{CHECKS[0] + CHECKS[1]} checks, {CHECKS[1]} failed", flush=True)
    return 0 if CHECKS[1] == 0 else 1


def raise_nofile(need):
    """Raises this process's open-file limit (children inherit it) to at
    least need; exits with SKIP when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"SKIP: {need} open files are needed, the hard limit is {hard}")
        sys.exit(SKIP)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY
                                                    else hard, hard))


def rss_back(before_kib, after_kib):
    """Whether after is back within RSS_SLACK (plus RSS_FLOOR_KIB) of before."""
    return after_kib <= before_kib * (1 + RSS_SLACK) + RSS_FLOOR_KIB


def write_token(path):
    """Writes the write token to path, mode 600 (factsd refuses looser)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    os.chmod(path, 0o600)


class Server:
    """One factsd process listening on 127.0.0.1, port 0."""

    def __init__(self, factsd, workdir, args=(), name="factsd"):
        self.cmd = [factsd, "--listen", "127.0.0.1:0", *args]
        env = dict(os.environ)
        env.pop("FACTSD_TOKEN", None)
        self.err_path = os.path.join(workdir, f"{name}-{time.monotonic_ns()}.err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.err,
                                     env=env, text=True)
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.wait(timeout=10)
            self.err.close()
            raise RuntimeError(f"factsd did not start: {self.stderr()[-2000:]}")
        self.host, port = line.split("http://", 1)[1].split()[0].rsplit(":", 1)
        self.port = int(port)
        self.pid = self.proc.pid
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        with open(f"/proc/{self.pid}/maps") as f:
            self.sanitized = "libasan" in f.read()

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def _status(self, field):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def rss(self):
        """Resident memory now, KiB."""
        return self._status("VmRSS")

    def rss_settled(self, seconds=1.5):
        """Resident memory once a surge is over, KiB: the least of samples
        over seconds. The server hands freed memory back to the system at
        the first sweep (every 250 ms) after its connection count stops
        falling, so a single sample right after the clients close can come
        before that."""
        least = self.rss()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)
            least = min(least, self.rss())
        return least

    def peak(self):
        """Resident memory's peak since peak_reset (or the start), KiB."""
        return self._status("VmHWM")

    def peak_reset(self):
        """Restarts the kernel's peak count; false when it cannot."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def request(self, method, target, body=None, headers=None, source=MONITOR_SOURCE,
                timeout=10):
        """One request on a connection of its own; returns (status,
        headers with lower-case names, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                          source_address=(source, 0))
        try:
            conn.request(method, target, body=body, headers=headers or {})
            r = conn.getresponse()
            payload = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, payload
        finally:
            conn.close()

    def status_of(self, target, source=MONITOR_SOURCE):
        """The status of GET target, or None when no answer came."""
        try:
            return self.request("GET", target, source=source)[0]
        except OSError:
            return None

    def metric(self, name):
        """The value of the series name (a metric's name, with its labels
        as /metrics writes them when it has any) from /metrics, or None."""
        try:
            status, _, body = self.request("GET", "/metrics")
        except OSError:
            return None
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def connections(self):
        """Open client connections as the server counts them (this read's
        own connection included), or None."""
        v = self.metric("factsd_http_connections")
        return None if v is None else int(v)

    def settle(self, at_most=1, timeout=30):
        """Waits until the server counts at most at_most connections;
        returns the last count."""
        deadline = time.monotonic() + timeout
        n = self.connections()
        while (n is None or n > at_most) and time.monotonic() < deadline:
            time.sleep(0.25)
            n = self.connections()
        return n

    def stop(self):
        """SIGTERM; checks the exit status and that no sanitizer spoke."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.err.close()
        err = self.stderr()
        check("Sanitizer" not in err and "runtime error" not in err,
              f"no sanitizer report: {err[-3000:]}")
        check(rc == 0, f"factsd exits 0 on SIGTERM ({rc})")
        return rc


class Probe(threading.Thread):
    """Sequential GETs from PROBE_SOURCE, each on a new connection (so each
    must get through the acceptor too), cycling through targets; counts
    the requests answered 200 within PROBE_LIMIT_S. A request gets up to 5 s
    before it counts as unanswered."""

    def __init__(self, server, targets, gap_s=0.02):
        super().__init__(daemon=True)
        self.server = server
        self.targets = targets
        self.gap_s = gap_s
        self.halt = threading.Event()
        self.total = self.within = self.late = self.failed = 0
        self.worst_s = 0.0
        self.statuses = {}

    def run(self):
        i = 0
        while not self.halt.is_set():
            target = self.targets[i % len(self.targets)]
            i += 1
            t0 = time.monotonic()
            try:
                status, _, _ = self.server.request("GET", target, source=PROBE_SOURCE,
                                                   timeout=5)
            except (OSError, http.client.HTTPException):
                status = None
            took = time.monotonic() - t0
            self.total += 1
            self.worst_s = max(self.worst_s, took)
            key = str(status) if status is not None else "none"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if status != 200:
                self.failed += 1
            elif took <= PROBE_LIMIT_S:
                self.within += 1
            else:
                self.late += 1
            self.halt.wait(self.gap_s)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)

    def share(self):
        return self.within / self.total if self.total else 0.0

    def summary(self):
        return {"probe_requests": self.total, "probe_within_1s": self.within,
                "probe_pct": round(100.0 * self.share(), 2), "probe_late": self.late,
                "probe_failed": self.failed, "probe_worst_s": round(self.worst_s, 3)}


class Monitor(threading.Thread):
    """Samples the server's connection count (through /metrics, from
    MONITOR_SOURCE) every interval; the largest and the last count, less
    the monitor's own connection (the probe's, when open, is counted)."""

    def __init__(self, server, interval=0.5, own=1):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.own = own
        self.halt = threading.Event()
        self.most = 0
        self.last = 0

    def run(self):
        while not self.halt.is_set():
            n = self.server.connections()
            if n is not None:
                held = max(0, n - self.own)
                self.most = max(self.most, held)
                self.last = held
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)
