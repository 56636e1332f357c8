#!/usr/bin/env python3
"""Checks that docs/facts.md tells the truth about the dataset.

docs/facts.md maps every paragraph and sentence of the article to the records
whose evidence cites it. This script recomputes that map from the dataset's
evidence locators and compares: a row or line whose records differ, a missing
paragraph or sentence, or a sentence no record cites (unless its line says
"no fact") fails the check.

usage: check-facts.py DATASET FACTS_MD [--write]
  --write  rewrites the record columns and the per-sentence lines of FACTS_MD
           from the dataset, keeping the hand-written gists and notes.
"""
import json
import re
import sys

KINDS = (("events", "E"), ("troop_estimates", "T"), ("actors", "A"))


def cited(dataset):
    """{(paragraph, sentence): {"E": [slugs], "T": [...], "A": [...]}} in dataset order."""
    out = {}

    def add(p, s, tag, slug):
        lst = out.setdefault((p, s), {"E": [], "T": [], "A": []})[tag]
        if slug not in lst:
            lst.append(slug)

    for member, tag in KINDS:
        for rec in dataset[member]:
            locs = list(rec.get("evidence", []))
            for role in rec.get("roles", []):
                locs += role.get("evidence", [])
            for loc in locs:
                add(loc["paragraph"], loc["sentence"], tag, rec["slug"])
    return out


def fmt_slugs(slugs):
    return ", ".join(f"`{s}`" for s in slugs) if slugs else "—"


def sentence_line(p, s, recs, old):
    parts = [f"{tag}: {fmt_slugs(recs[tag])}" for _, tag in KINDS if recs and recs[tag]]
    if parts:
        return f"- **{p}.{s}** → " + "; ".join(parts)
    # Keep a hand-written "no fact" explanation if there is one.
    if old and "no fact" in old:
        return old
    return f"- **{p}.{s}** → no record cites this sentence"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    write = "--write" in argv[3:]
    dataset = json.load(open(argv[1], encoding="utf-8"))
    text = open(argv[2], encoding="utf-8").read()
    counts = dataset["sources"][0]["paragraphs"]
    by_sentence = cited(dataset)

    lines = text.split("\n")
    row_re = re.compile(r"^\| (\d+) \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|$")
    sent_re = re.compile(r"^- \*\*(\d+)\.(\d+)\*\* → (.*)$")
    rows, sents = {}, {}
    for i, line in enumerate(lines):
        m = row_re.match(line)
        if m:
            rows[int(m.group(1))] = i
        m = sent_re.match(line)
        if m:
            sents[(int(m.group(1)), int(m.group(2)))] = i

    problems = []
    for p, n in enumerate(counts, start=1):
        union = {"E": [], "T": [], "A": []}
        for s in range(1, n + 1):
            recs = by_sentence.get((p, s))
            for tag in union:
                for slug in (recs or {}).get(tag, []):
                    if slug not in union[tag]:
                        union[tag].append(slug)
            old = lines[sents[(p, s)]] if (p, s) in sents else None
            want = sentence_line(p, s, recs, old)
            if not recs and "no fact" not in want:
                problems.append(f"sentence {p}.{s}: no record cites it")
            if old is None:
                problems.append(f"sentence {p}.{s}: no line in the per-sentence list")
            elif old != want:
                if write:
                    lines[sents[(p, s)]] = want
                else:
                    problems.append(f"sentence {p}.{s}: the line does not match the evidence:\n"
                                    f"    have: {old}\n    want: {want}")
        if p not in rows:
            problems.append(f"paragraph {p}: no row in the per-paragraph table")
            continue
        m = row_re.match(lines[rows[p]])
        gist = m.group(2)
        actors = fmt_slugs(union["A"])
        if not union["A"] and m.group(5) != "—":
            actors = m.group(5)  # a hand-written explanation for a paragraph without actors
        want = f"| {p} | {gist} | {fmt_slugs(union['E'])} | {fmt_slugs(union['T'])} | {actors} |"
        if lines[rows[p]] != want:
            if write:
                lines[rows[p]] = want
            else:
                problems.append(f"paragraph {p}: the row does not match the evidence:\n"
                                f"    have: {lines[rows[p]]}\n    want: {want}")
    for (p, s) in by_sentence:
        if p > len(counts) or s > counts[p - 1]:
            problems.append(f"evidence cites {p}.{s}, which the source does not have")
    for key in sents:
        if key[0] > len(counts) or key[1] > counts[key[0] - 1]:
            problems.append(f"line for {key[0]}.{key[1]}, which the source does not have")

    if write:
        open(argv[2], "w", encoding="utf-8").write("\n".join(lines))
    for prob in problems:
        print("FAIL", prob)
    checks = sum(counts) + len(counts)  # one per sentence line and per paragraph row
    failed = len(problems)
    print(f"facts.md: {max(0, checks - failed)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
