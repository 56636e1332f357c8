#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets and their dictionaries
(dataset.dict, query.dict).

usage: tests/fuzz/make-seeds.py FACTSD

FACTSD is a built server (build/server/factsd). The journal seeds are real
journals: the server runs on the embedded article with a token and a journal,
takes the writes of tests/integration/write_test.py, and its journal is copied
after the first write and after the last; damaged variants (a torn tail, a
flipped byte in the middle, a bad header) and a journal that starts with a
change the dataset already holds are made from them. The change seeds are the
write bodies of the same test; the query seeds are the documented parameter
sets and cursors the server handed out. The output is committed: run this
only to refresh it (it overwrites the files it writes, no others).
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
ARTICLE = os.path.join(HERE, "..", "..", "lib", "data", "article.json")
SCHEMA = os.path.join(HERE, "..", "..", "api", "dataset.schema.json")
TOKEN = "fuzz-seeds-token-0123456789abcdef"
KINDS = ["sources", "actors", "events", "troop-estimates"]
MEMBERS = ["sources", "actors", "events", "troop_estimates"]


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


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


class Server:
    def __init__(self, binary, folder):
        token = os.path.join(folder, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token, 0o600)
        self.journal = os.path.join(folder, "journal")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--token-file", token,
             "--journal", self.journal, "--threads", "1"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.base = line.split()[-1]

    def request(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + TOKEN)
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


def frame(revision, payload):
    rev = struct.pack("<Q", revision)
    return struct.pack("<II", len(payload), zlib.crc32(rev + payload)) + rev + payload


def journal_seeds(binary):
    folder = tempfile.mkdtemp(prefix="factsd-seeds-")
    srv = Server(binary, folder)
    try:
        writes = [
            ("POST", "/v1/events", event("wt-one", hedge="reportedly"), "application/json"),
            ("POST", "/v1/actors", actor("wt-person", "Test Person"), "application/json"),
            ("PUT", "/v1/events/wt-one", event("wt-one", "Renamed once"), "application/json"),
            ("PATCH", "/v1/events/wt-one",
             {"title": "Patched", "hedge": None, "date": {"phrase": "on 19 June"}},
             "application/merge-patch+json"),
            ("PATCH", "/v1/events/shoigu-kim-meeting", {"status": "reported"},
             "application/merge-patch+json"),
            ("DELETE", "/v1/events/wt-one", None, "application/json"),
            ("DELETE", "/v1/actors/wt-person", None, "application/json"),
        ]
        snapshots = {}
        for i, (method, path, body, ctype) in enumerate(writes):
            status, text = srv.request(method, path, body, ctype)
            if status not in (200, 201, 204):
                sys.exit(f"{method} {path}: {status} {text[:200]!r}")
            with open(srv.journal, "rb") as f:
                snapshots[i] = f.read()
        _, meeting = srv.request("GET", "/v1/events/shoigu-kim-meeting")
    finally:
        srv.stop()
        shutil.rmtree(folder)

    one, full = snapshots[0], snapshots[len(writes) - 1]
    out("journal", "server-one-create", one)
    out("journal", "server-writes", full)
    out("journal", "header-only", full[:8])
    out("journal", "header-cut", full[:5])
    out("journal", "bad-magic", b"FACTSJ2\n" + full[8:])
    out("journal", "torn-tail", full[:-7])
    out("journal", "torn-header", one + full[len(one):len(one) + 9])
    damaged = bytearray(full)
    damaged[len(one) - 20] ^= 0x20  # inside the first record's payload
    out("journal", "damaged-middle", bytes(damaged))
    # A compaction's state: the dataset (here the embedded one, revision 1)
    # already holds the journal's first change.
    rec = json.loads(meeting)
    held = json.dumps({"op": "replace", "collection": "events", "key": rec["id"],
                       "record": rec}, separators=(",", ":")).encode()
    new = json.dumps({"op": "create", "collection": "events", "key": "",
                      "record": event("wt-after-compaction")}, separators=(",", ":")).encode()
    out("journal", "compacted-then-create", b"FACTSJ1\n" + frame(1, held) + frame(2, new))
    out("journal", "revision-gap", b"FACTSJ1\n" + frame(5, new))
    out("journal", "not-a-change", b"FACTSJ1\n" + frame(2, b'{"op":"rename"}'))


def change_seeds():
    with open(ARTICLE) as f:
        article = json.load(f)

    def seed(name, mode, kind, index, body, by_id=False, compare=True, max_errs=8, key=None):
        b0 = mode | (4 if compare else 0) | ((max_errs - 1) << 3)
        b1 = kind | (4 if by_id else 0) | (8 if key is not None else 0)
        data = bytes([b0, b1, index])
        if key is not None:
            data += key.encode() + b"\0"
        if body is not None:
            data += body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
        out("change", name, data)

    create, replace, delete, patch = 0, 1, 2, 3
    actors, events, estimates = 1, 2, 3
    seed("create-event", create, events, 0, event("wt-one", hedge="reportedly"))
    seed("create-actor", create, actors, 0, actor("wt-person", "Test Person"))
    seed("create-taken-slug", create, events, 0, event("shoigu-kim-meeting"))
    bad = event("wt-bad")
    bad["participants"] = [{"actor": "kim-jong-un", "role": "astronaut"}]
    bad["date"] = {"precision": "day", "from": "2024-02-30", "to": "2024-02-30",
                   "basis": "stated"}
    del bad["summary"]
    seed("create-three-problems", create, events, 0, bad, max_errs=32)
    seed("create-not-an-object", create, events, 0, [1, 2])
    seed("create-syntax", create, events, 0, b'{\n  "slug": "x",\n  "title": oops\n}')
    ev = article["events"][1]
    seed("replace-event-renamed", replace, events, 1, dict(ev, title="Renamed once"))
    seed("replace-event-by-id", replace, events, 1, dict(ev, slug="renamed-slug"), by_id=True)
    seed("replace-other-id", replace, events, 1,
         dict(ev, id="00000000-0000-4000-8000-000000000000"))
    est = article["troop_estimates"][0]
    seed("replace-estimate-low-high", replace, estimates, 0, dict(est, low=20000))
    seed("replace-unknown-key", replace, events, 0, event("no-such-event"),
         key="no-such-event")
    seed("patch-title-hedge-date", patch, events, 0,
         {"title": "Patched", "hedge": None, "date": {"phrase": "on 19 June"}})
    seed("patch-three-rules", patch, events, 0,
         {"summary": None, "status": "rumoured", "type": 7}, max_errs=32)
    seed("patch-array", patch, events, 0, [1, 2])
    seed("patch-actor-kind", patch, actors, 5, {"kind": "state", "aliases": ["X"]})
    seed("patch-estimate-period", patch, estimates, 1,
         {"period": {"precision": "month", "from": "2024-12", "to": "2024-12", "basis": "stated"}})
    seed("delete-referenced-event", delete, events, 28, None)
    seed("delete-referenced-actor", delete, actors, 5, None, max_errs=32)
    seed("delete-source", delete, 0, 0, None)
    seed("delete-by-id", delete, estimates, 1, None, by_id=True)


def query_seeds(binary):
    folder = tempfile.mkdtemp(prefix="factsd-seeds-")
    srv = Server(binary, folder)
    cursors = {}
    try:
        for name, path in [("events-limit-2", "/v1/events?limit=2"),
                           ("events-visit-limit-1", "/v1/events?type=visit&limit=1"),
                           ("actors-name-limit-3", "/v1/actors?limit=3&sort=-name")]:
            status, text = srv.request("GET", path)
            cursors[name] = json.loads(text)["next"]
    finally:
        srv.stop()
        shutil.rmtree(folder)

    order = ["cursor", "text", "type", "status", "kind", "from", "to", "actor", "sort"]

    def seed(name, coll, by=0, limit=0, templated=False, **strings):
        strings = {k.rstrip("_"): v for k, v in strings.items()}  # from_ for "from"
        mask = 0
        parts = []
        for i, s in enumerate(order):
            if s in strings:
                mask |= 1 << i
            parts.append(strings.get(s, ""))
        data = bytes([coll | by << 2 | (0x20 if templated else 0) | (mask >> 8) << 6, limit,
                      mask & 0xff])
        out("query", name, data + "\0".join(parts).rstrip("\0").encode())

    sources, actors, events, estimates = 0, 1, 2, 3
    date, mdate, name, mname = 1, 2, 3, 4
    seed("events-all", events)
    seed("events-type-visit", events, type="visit")
    seed("events-window-desc", events, from_="2024-06", to="2024-09", sort="-date")
    seed("events-of-shoigu", events, actor="sergei-shoigu")
    seed("events-status-list", events, 0, 5, status="reported,confirmed,speculated")
    seed("events-text", events, text="Pyongyang")
    seed("events-type-list-paged", events, date, 3, type="visit,meeting,statement")
    seed("actors-kind", actors, name, 4, kind="person,state")
    seed("actors-text", actors, mname, 2, text="korea")
    seed("sources", sources)
    seed("estimates-summary", estimates, 0, 1)
    seed("estimates-by-reporter", estimates, actor="us-intelligence", kind="initial")
    seed("estimates-window", estimates, mdate, 0, from_="2024", to="2025-02-28")
    seed("events-bad-date", events, from_="2024-02-30")
    seed("events-from-after-to", events, from_="2025", to="2024-12-31")
    seed("actors-by-date", actors, date)
    seed("events-cursor", events, 0, 2, cursor=cursors["events-limit-2"])
    seed("events-visit-cursor", events, 0, 1, cursor=cursors["events-visit-limit-1"],
         type="visit")
    seed("actors-cursor", actors, mname, 3, cursor=cursors["actors-name-limit-3"])
    seed("events-templated-cursor", events, 0, 4, True,
         cursor="1|19893|19893|shoigu-kim-meeting|")
    seed("actors-templated-cursor", actors, name, 4, True,
         cursor="0|0|0|kim-jong-un|kim jong un")
    seed("events-templated-undated", events, mdate, 4, True, cursor="0|0|0|zz|")


def dict_entry(token):
    """One libFuzzer dictionary line: the token quoted (backslash escapes)."""
    out = []
    for c in token:
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= ord(c) < 0x7f:
            out.append(c)
        else:
            out.append("\\x%02x" % ord(c))
    return '"%s"\n' % "".join(out)


def write_dict(name, header, tokens):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(header)
        for t in tokens:
            f.write(dict_entry(t))


def schema_words():
    """Member names and enum values of api/dataset.schema.json."""
    with open(SCHEMA) as f:
        schema = json.load(f)
    names, values = set(), set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "properties" and isinstance(v, dict):
                    names.update(v)
                elif k == "required":
                    names.update(v)
                elif k in ("enum", "const"):
                    values.update(e for e in (v if isinstance(v, list) else [v])
                                  if isinstance(e, str))
                walk(v)
        elif isinstance(o, list):
            for x in o:
                walk(x)

    walk(schema)
    return sorted(names), sorted(values)


def dictionaries():
    names, values = schema_words()
    with open(ARTICLE) as f:
        article = json.load(f)
    slugs = [r["slug"] for m in MEMBERS for r in article[m]]
    json_tokens = ["{", "}", "[", "]", ":", ",", '""', "true", "false", "null", "0", "-1",
                   "1e400", "0.5", "9007199254740993", '"\\u0000"', '"\\ud800"', "\\"]
    journal = ["FACTSJ1\n", '"op"', '"collection"', '"key"', '"record"', '"create"',
               '"replace"', '"delete"'] + ['"%s"' % k for k in KINDS]
    write_dict("dataset.dict",
               "# JSON tokens, the members and enum values of api/dataset.schema.json, the\n"
               "# article's slugs and the journal's payload members (tests/fuzz/make-seeds.py\n"
               "# writes this file).\n",
               json_tokens + ['"%s"' % n for n in names] + ['"%s":' % n for n in names] +
               ['"%s"' % v for v in values] + ['"%s"' % s for s in slugs] + journal +
               ["2024-06-19", "2024-09", "2024"])
    from_error_c = []
    with open(os.path.join(HERE, "..", "..", "lib", "error.c")) as f:
        text = f.read()
    for table in ("facts_actor_kinds", "facts_estimate_kinds", "facts_event_types",
                  "facts_event_statuses"):
        body = text[text.index(table + "[] = {"):]
        body = body[:body.index("NULL}")]
        from_error_c += [w.strip().strip('"') for w in body.split("{", 1)[1].split(",")
                         if w.strip().startswith('"')]
    write_dict("query.dict",
               "# Filter values (lib/error.c's tables), sort names, the article's slugs,\n"
               "# date forms and cursor fields (tests/fuzz/make-seeds.py writes this file).\n",
               from_error_c + ["date", "-date", "name", "-name"] + slugs +
               ["2024", "2024-06", "2024-06-19", "2024-02-29", "1000", "9999-12-31",
                ",", "|", "1|", "|0|", "|1|", "-"])


def load_seeds():
    """The loader reads tests/data/ and lib/data/ as seeds too (tests/fuzz/run
    passes them): these add what those folders do not hold."""
    with open(os.path.join(HERE, "..", "data", "valid", "minimal.json")) as f:
        minimal = json.load(f)
    deep = json.loads(json.dumps(minimal))
    nest = "x"
    for _ in range(40):
        nest = [nest]
    deep["actors"][0]["aliases"] = nest
    out("load", "too-deep", json.dumps(deep).encode())
    dup = json.dumps(minimal)
    out("load", "duplicate-key-nested",
        dup.replace('"slug":', '"slug": "a", "slug":', 1).encode())
    out("load", "revision-max", json.dumps(dict(minimal, revision=2 ** 53)).encode())
    out("load", "not-an-object", b"[]")
    out("load", "truncated", json.dumps(minimal, indent=1).encode()[:700])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    dictionaries()
    load_seeds()
    journal_seeds(binary)
    change_seeds()
    query_seeds(binary)


if __name__ == "__main__":
    main()
