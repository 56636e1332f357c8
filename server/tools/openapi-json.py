#!/usr/bin/env python3
"""Converts the OpenAPI description from YAML to compact JSON for embedding.

usage: openapi-json.py INPUT.yaml OUTPUT.json

Fails (exit 1) when the YAML holds anything JSON cannot express (dates,
non-string keys, ...), so the served document is the YAML's content exactly.
"""
import json
import sys

import yaml


def check(node, where="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is not a string")
            check(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check(value, f"{where}/{i}")
    elif node is not None and not isinstance(node, (str, int, float, bool)):
        raise ValueError(f"{where}: {type(node).__name__} is not a JSON value (quote it)")


def main():
    if len(sys.argv) != 3:
        print("usage: openapi-json.py INPUT.yaml OUTPUT.json", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    try:
        check(doc)
    except ValueError as e:
        print(f"{sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
