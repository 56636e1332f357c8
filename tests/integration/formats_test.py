#!/usr/bin/env python3
"""Integration test of the representations a read can take: gzip by
Accept-Encoding (q-values, ETags of both variants, 304s, HEAD), CSV and
NDJSON by format= or Accept (406, 400), the CSV's flattening rule, its
formula guard, paging through Link headers, a round trip through Python's
csv module and SQLite's .import, and the dashboard's files with their
Content-Security-Policy. Every response is recorded (decoded) and checked
against the OpenAPI description at the end, like the other integration
tests.

usage: formats_test.py --factsd PATH --openapi OPENAPI.json --record FILE
                       --node NODE --validator SCRIPT --dataset DATA.json
Talks only to 127.0.0.1. Exit status 0 only when every check passes.
"""
import csv
import gzip
import http.client
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

from harness import check, finish, parse_args, record

TOKEN = "formats-test-token-0123456789abcdef"
ARGS = None
HOST = "127.0.0.1"
PORT = 0

# The CSV columns of each collection, as docs/api.md lists them.
DATE = ["precision", "from", "to", "phrase", "basis", "note"]
COLUMNS = {
    "sources": ["id", "slug", "title", "publisher", "language"]
    + ["published." + d for d in DATE] + ["paragraphs"],
    "actors": ["id", "slug", "name", "kind", "country", "aliases", "description", "roles",
               "evidence"],
    "events": ["id", "slug", "title", "type", "status"] + ["date." + d for d in DATE]
    + ["location.name", "location.country", "participants", "summary", "hedge",
       "related_events", "related_estimates", "cameo", "acled", "evidence"],
    "troop-estimates": ["id", "slug", "sender", "receiver", "low", "high", "unit", "kind"]
    + ["period." + d for d in DATE]
    + ["reported_by", "certainty", "hedge", "description", "evidence"],
}


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = raw
        self.body = gzip.decompress(raw) if self.header("content-encoding") == "gzip" else raw

    def header(self, name):
        return self.headers.get(name)

    def text(self):
        return self.body.decode("utf-8")


def request(method, target, headers=None, body=None):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=20)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
        h["Authorization"] = "Bearer " + TOKEN
        h["Content-Length"] = str(len(data))
    # http.client adds Accept-Encoding: identity unless told otherwise.
    conn.putrequest(method, target, skip_accept_encoding=True)
    for k, v in h.items():
        conn.putheader(k, v)
    conn.endheaders(data)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    resp = Resp(r.status, r.getheaders(), raw)
    record(method, target, resp.status, resp.headers, resp.body)
    return resp


def get(target, **headers):
    return request("GET", target, {k.replace("_", "-"): v for k, v in headers.items()})


def vary(resp):
    return {v.strip() for v in (resp.header("vary") or "").split(",") if v.strip()}


# ------------------------------------------------------------ compression

# Accept-Encoding value -> whether the answer is gzip-encoded.
ENCODINGS = [
    (None, False),
    ("gzip", True),
    ("x-gzip", True),
    ("GZIP;Q=1", True),
    ("gzip, deflate, br, zstd", True),
    ("br", False),
    ("*", True),
    ("*;q=0", False),
    ("identity", False),
    ("gzip;q=0", False),
    ("gzip;q=0.000", False),
    ("gzip;q=0.001", False),      # identity (q=1 when not named) is preferred
    ("gzip;q=0.001, identity;q=0", True),
    ("gzip;q=0.5, identity", False),
    ("gzip;q=1, identity;q=0.5", True),
    ("gzip;q=1.5", False),        # not a qvalue: the element is skipped
    ("gzip ; q=0.8 , identity;q=0.2", True),
    ("gzip;q=0, identity;q=0", False),  # identity still works
    ("*, gzip;q=0", False),
]


def test_encodings():
    plain = get("/v1/events")
    check(plain.status == 200 and plain.header("content-encoding") is None,
          "no Accept-Encoding: identity")
    for ae, want in ENCODINGS:
        h = {"Accept-Encoding": ae} if ae is not None else {}
        r = request("GET", "/v1/events", h)
        got = r.header("content-encoding") == "gzip"
        check(r.status == 200 and got == want, f"Accept-Encoding {ae!r}: gzip {got}, want {want}")
        check(r.body == plain.body, f"Accept-Encoding {ae!r}: the same content")
        check(int(r.header("content-length")) == len(r.raw),
              f"Accept-Encoding {ae!r}: Content-Length is the length on the wire")
        check({"Accept", "Accept-Encoding"} <= vary(r), f"Accept-Encoding {ae!r}: Vary {vary(r)}")
        if want:
            check(r.header("etag") == plain.header("etag")[:-1] + '-gzip"',
                  f"gzip ETag {r.header('etag')} beside {plain.header('etag')}")
    gz = get("/v1/events", Accept_Encoding="gzip")
    print(f"wire: /v1/events {len(plain.raw)} bytes identity, {len(gz.raw)} gzip", flush=True)
    check(len(gz.raw) * 3 < len(plain.raw), "the event list shrinks at least threefold")


def test_conditional():
    plain = get("/v1/events")
    gz = get("/v1/events", Accept_Encoding="gzip")
    for tag, ae, want in [(gz.header("etag"), "gzip", gz.header("etag")),
                          (plain.header("etag"), "gzip", gz.header("etag")),
                          (gz.header("etag"), None, plain.header("etag")),
                          (plain.header("etag"), None, plain.header("etag"))]:
        h = {"If-None-Match": tag}
        if ae:
            h["Accept-Encoding"] = ae
        r = request("GET", "/v1/events", h)
        check(r.status == 304 and r.raw == b"", f"If-None-Match {tag} with {ae}: {r.status}")
        check(r.header("etag") == want, f"a 304 names the variant it stands for: {r.header('etag')}")
    r = request("GET", "/v1/events", {"If-None-Match": '"0000000000000000-gzip"',
                                       "Accept-Encoding": "gzip"})
    check(r.status == 200, "another ETag: 200")
    # HEAD gives what GET gives, without the body.
    for ae in (None, "gzip"):
        h = {"Accept-Encoding": ae} if ae else {}
        g = request("GET", "/v1/events/shoigu-visit-pyongyang", h)
        hd = request("HEAD", "/v1/events/shoigu-visit-pyongyang", h)
        for name in ("content-length", "content-encoding", "etag", "vary", "content-type"):
            check(g.header(name) == hd.header(name),
                  f"HEAD {ae}: {name} {hd.header(name)} as GET's {g.header(name)}")
        check(hd.raw == b"", "HEAD has no body")
    # What is compressed: every representation with an ETag, once big enough.
    for target in ("/v1/events/shoigu-visit-pyongyang", "/openapi.json", "/v1/actors",
                   "/v1/events?type=visit", "/v1/events?pretty", "/v1", "/",
                   "/dashboard/app.js", "/dashboard/app.css", "/v1/events?format=csv",
                   "/v1/actors?format=ndjson"):
        r = get(target, Accept_Encoding="gzip")
        check(r.status == 200 and r.header("content-encoding") == "gzip",
              f"{target} gzip-encoded: {r.header('content-encoding')}")
    r = get("/healthz", Accept_Encoding="gzip")
    check(r.status == 200 and r.header("content-encoding") is None,
          "a body under 256 bytes is sent as it is")
    r = get("/v1/nothing", Accept_Encoding="gzip")
    check(r.status == 404 and r.header("content-encoding") is None, "a problem is not encoded")


# ------------------------------------------------------------ formats

# Accept value -> the media type a collection answers (None: 406).
ACCEPTS = [
    (None, "application/json"),
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    ("text/csv", "text/csv"),
    ("TEXT/CSV; charset=utf-8", "text/csv"),
    ("text/*", "text/csv"),
    ("application/x-ndjson", "application/x-ndjson"),
    ("text/csv;q=0.5, application/json", "application/json"),
    ("application/json;q=0.1, text/csv", "text/csv"),
    ("application/*;q=0.2, application/x-ndjson", "application/x-ndjson"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json"),
    ("text/html", None),
    ("application/xml", None),
    ("application/json;q=0", None),
    ("*/*;q=0", None),
    ("text/csv;q=0, */*", "application/json"),
]


def test_accept():
    for accept, want in ACCEPTS:
        h = {"Accept": accept} if accept is not None else {}
        r = request("GET", "/v1/events?limit=3", h)
        ct = (r.header("content-type") or "").split(";")[0]
        if want is None:
            check(r.status == 406 and ct == "application/problem+json",
                  f"Accept {accept!r}: {r.status} {ct}, want 406")
        else:
            check(r.status == 200 and ct == want, f"Accept {accept!r}: {r.status} {ct}, want {want}")
            check("Accept" in vary(r), f"Accept {accept!r}: Vary names Accept")
    # format= wins over Accept, and is checked.
    r = get("/v1/events?format=csv", Accept="application/json")
    check(r.header("content-type").startswith("text/csv"), "format=csv wins over Accept")
    r = get("/v1/events?format=json", Accept="text/html")
    check(r.status == 200, "format=json answers whatever Accept says")
    r = get("/v1/events?format=xml")
    check(r.status == 400 and any(p["name"] == "format" for p in json.loads(r.body)["invalid-params"]),
          "format=xml: 400 naming format")
    r = get("/v1/events/shoigu-visit-pyongyang?format=csv")
    check(r.status == 400, "format does not apply to one record")
    r = get("/v1/events/shoigu-visit-pyongyang", Accept="text/csv")
    check(r.status == 200 and r.header("content-type") == "application/json",
          "one record has one format: Accept is disregarded")
    r = get("/v1/troop-estimates/summary?format=csv")
    check(r.status == 400, "the summary is JSON only")


def flatten(kind, rec, col):
    """The CSV text of one column of a record, by the documented rule,
    guard included."""
    head, _, member = col.partition(".")
    v = rec.get(head)
    if member:
        v = v.get(member) if isinstance(v, dict) else None
    if v is None:
        return ""
    if col == "participants":
        text = ";".join(f"{p['actor']}:{p['role']}" for p in v)
    elif col == "evidence":
        text = ";".join(f"{e['source']}:{e['paragraph']}:{e['sentence']}" for e in v)
    elif col == "roles":
        text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    elif isinstance(v, list):
        text = ";".join(str(x) for x in v)
    elif isinstance(v, bool):
        text = "true" if v else "false"
    elif isinstance(v, (int, float)):
        return str(v)
    else:
        text = v
    if text and text[0] in "=+-@\t\r":
        text = "'" + text
    return text


def json_all(path, query=""):
    sep = "&" if query else ""
    return json.loads(get(f"{path}?limit=500{sep}{query}").body)["items"]


def next_link(r):
    m = re.match(r'^<([^>]+)>; rel="next"$', r.header("link") or "")
    return m.group(1) if m else None


def csv_pages(path, accept_csv):
    """Every CSV row of path, paging 7 at a time through the Link headers."""
    rows, header, pages = [], None, 0
    target = path + ("?limit=7" if accept_csv else "?limit=7&format=csv")
    while target is not None and pages < 50:
        r = get(target, Accept="text/csv") if accept_csv else get(target)
        check(r.status == 200 and r.header("content-type") == "text/csv; charset=utf-8; header=present",
              f"{target}: CSV {r.status} {r.header('content-type')}")
        text = r.text()
        check(text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""),
              f"{target}: every line ends in CRLF, and no bare LF")
        table = list(csv.reader(io.StringIO(text, newline="")))
        if header is None:
            header = table[0]
        check(table[0] == header, f"{target}: every page has the header row")
        rows += table[1:]
        target = next_link(r)
        pages += 1
    return header, rows


def test_csv(tmp):
    for path, kind in [("/v1/sources", "sources"), ("/v1/actors", "actors"),
                       ("/v1/events", "events"), ("/v1/troop-estimates", "troop-estimates"),
                       ("/v1/actors/sergei-shoigu/events", "events"),
                       ("/v1/actors/north-korea/troop-estimates", "troop-estimates")]:
        records = json_all(path)
        for accept_csv in (False, True):
            header, rows = csv_pages(path, accept_csv)
            check(header == COLUMNS[kind], f"{path}: the header row {header}")
            check(len(rows) == len(records), f"{path}: {len(rows)} rows for {len(records)} records")
            for rec, row in zip(records, rows):
                want = [flatten(kind, rec, c) for c in COLUMNS[kind]]
                if not check(row == want, f"{path} {rec['slug']}: row as the rule gives"):
                    print("  got ", row, "\n  want", want)
                    break
        # The same filters and sort apply.
        if kind == "events":
            q = "type=visit&sort=-date"
            r = get(f"{path}?{q}&format=csv&limit=500")
            got = [row[1] for row in list(csv.reader(io.StringIO(r.text(), newline="")))[1:]]
            check(got == [e["slug"] for e in json_all(path, q)], f"{path}?{q}: the same records")
    # A round trip through SQLite's .import.
    events = json_all("/v1/events")
    r = get("/v1/events?format=csv&limit=500")
    csv_path = os.path.join(tmp, "events.csv")
    with open(csv_path, "wb") as f:
        f.write(r.body)
    db = os.path.join(tmp, "facts.db")
    p = subprocess.run(["sqlite3", db, ".import --csv " + csv_path + " events"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and p.stderr == "", f"sqlite3 .import: {p.stderr}")
    con = sqlite3.connect(db)
    n = con.execute("select count(*) from events").fetchone()[0]
    check(n == len(events), f"sqlite3 holds {n} of {len(events)} events")
    cols = [c[1] for c in con.execute("pragma table_info(events)")]
    check(cols == COLUMNS["events"], f"sqlite3 columns {cols}")
    for e in events:
        row = con.execute('select title, "date.precision", summary from events where slug = ?',
                          (e["slug"],)).fetchone()
        if not check(row == (flatten("events", e, "title"), e["date"]["precision"],
                             flatten("events", e, "summary")), f"sqlite3 row of {e['slug']}"):
            break
    con.close()


def test_ndjson():
    for path in ("/v1/events", "/v1/actors", "/v1/actors/kim-jong-un/events"):
        records = json_all(path)
        lines, target = [], path + "?format=ndjson&limit=9"
        while target is not None:
            r = get(target)
            check(r.status == 200 and r.header("content-type") == "application/x-ndjson",
                  f"{target}: NDJSON")
            check(r.body.endswith(b"\n"), f"{target}: ends with a newline")
            lines += r.text().split("\n")[:-1]
            target = next_link(r)
            check(target is None or "format=ndjson" in target, "the next link keeps the format")
        check([json.loads(x) for x in lines] == records, f"{path}: NDJSON lines are the records")
    r = get("/v1/events?limit=2", Accept="application/x-ndjson")
    check(next_link(r) is not None and "format=ndjson" in next_link(r),
          "a format chosen by Accept is in the next link")


def test_formula_guard():
    ev = {
        "slug": "formula-guard-case",
        "title": "=HYPERLINK(\"http://example.invalid\",\"click\")",
        "type": "meeting", "status": "reported",
        "date": {"precision": "day", "from": "2024-06-19", "to": "2024-06-19",
                 "basis": "stated"},
        "participants": [{"actor": "kim-jong-un", "role": "host"}],
        "summary": "+1, with \"quotes\", a comma\nand a line break",
        "hedge": "@reportedly",
        "evidence": [{"source": "article", "paragraph": 1, "sentence": 1}],
    }
    r = request("POST", "/v1/events", body=ev)
    check(r.status == 201, f"write the formula case: {r.status} {r.body[:200]}")
    r = get("/v1/events?q=formula&format=csv")
    rows = list(csv.DictReader(io.StringIO(r.text(), newline="")))
    row = next((x for x in rows if x["slug"] == "formula-guard-case"), None)
    check(row is not None, "the formula case is in the CSV")
    if row is not None:
        check(row["title"] == "'" + ev["title"], f"= is guarded: {row['title']!r}")
        check(row["summary"] == "'" + ev["summary"], f"+ is guarded, quoting kept: {row['summary']!r}")
        check(row["hedge"] == "'@reportedly", f"@ is guarded: {row['hedge']!r}")
    r = get("/v1/events?q=formula&format=ndjson")
    check(json.loads(r.text().split("\n")[0])["title"] == ev["title"], "NDJSON is not guarded")


# ------------------------------------------------------------ the page

def test_dashboard():
    for target, ctype in [("/", "text/html; charset=utf-8"), ("/dashboard", "text/html; charset=utf-8"),
                          ("/dashboard/app.js", "text/javascript; charset=utf-8"),
                          ("/dashboard/app.css", "text/css; charset=utf-8")]:
        r = get(target)
        check(r.status == 200 and r.header("content-type") == ctype, f"{target}: {r.status} {r.header('content-type')}")
        check(r.header("etag") is not None and r.header("cache-control") == "no-cache",
              f"{target}: ETag and no-cache")
        if ctype.startswith("text/html"):
            csp = r.header("content-security-policy") or ""
            check(csp.startswith("default-src 'self'") and "script-src 'self'" in csp
                  and "unsafe-inline" not in csp, f"{target}: CSP {csp}")
            html = r.text()
            check(re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "no inline script")
            check(' style="' not in html and "<style" not in html, "no inline style")
            check('src="/dashboard/app.js"' in html and 'href="/dashboard/app.css"' in html,
                  "the page names its script and style")
        nm = request("GET", target, {"If-None-Match": r.header("etag")})
        check(nm.status == 304, f"{target}: 304 on its ETag")
    check(get("/").body == get("/dashboard").body, "/ and /dashboard are the same page")
    check(get("/dashboard/").status == 404, "/dashboard/ names nothing")
    check(get("/dashboard/app.jsx").status == 404, "an unknown file: 404")
    check(get("/dashboard?x=1").status == 400, "the page takes no parameters")
    r = request("POST", "/", body={})
    check(r.status == 405, f"POST /: {r.status}")


def test_columns_cover_schema():
    """Every member the OpenAPI description gives a record has a column, so
    a member added to the format cannot silently miss the CSV."""
    doc = json.load(open(ARGS.openapi))
    schemas = doc["components"]["schemas"]
    for kind, name in [("sources", "Source"), ("actors", "Actor"), ("events", "Event"),
                       ("troop-estimates", "TroopEstimate")]:
        props = set()
        stack = [schemas[name]]
        while stack:
            node = stack.pop()
            if "$ref" in node:
                stack.append(schemas[node["$ref"].rsplit("/", 1)[1]])
            props |= set(node.get("properties", {}))
            for key in ("allOf", "anyOf", "oneOf"):
                stack += node.get(key, [])
        heads = {c.split(".")[0] for c in COLUMNS[kind]}
        check(props and props <= heads, f"{kind}: members without a column: {sorted(props - heads)}")


def main():
    global ARGS, PORT
    ARGS = parse_args()
    tmp = tempfile.mkdtemp(prefix="factsd-formats-")
    token = os.path.join(tmp, "token")
    fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    data = os.path.join(tmp, "data.json")
    shutil.copy(ARGS.dataset, data)
    proc = subprocess.Popen([ARGS.factsd, "--listen", "127.0.0.1:0", "--threads", "2",
                             "--token-file", token, "--data", data],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        PORT = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        test_columns_cover_schema()
        test_encodings()
        test_conditional()
        test_accept()
        test_csv(tmp)
        test_ndjson()
        test_dashboard()
        test_formula_guard()
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        check("Sanitizer" not in err and "runtime error" not in err, f"no sanitizer report: {err[-2000:]}")
        shutil.rmtree(tmp, ignore_errors=True)
    return finish(ARGS)


if __name__ == "__main__":
    sys.exit(main())
