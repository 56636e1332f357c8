"""Shared pieces of the Python integration tests: counting checks, recording
every response, and validating the recorded responses against the OpenAPI
description at the end (with the node validator the C test uses too)."""
import argparse
import json
import subprocess
import threading

CHECKS = [0, 0]  # passed, failed
RECORDS = []
_RECORD_LOCK = threading.Lock()


def parse_args(*extra):
    """The options every Python integration test takes (paths the meson
    test passes), plus extra ones; all required."""
    ap = argparse.ArgumentParser()
    for a in ("--factsd", "--openapi", "--record", "--node", "--validator", "--dataset") + extra:
        ap.add_argument(a, required=True)
    return ap.parse_args()


def check(ok, what):
    """Counts one check; prints what failed."""
    if ok:
        CHECKS[0] += 1
    else:
        CHECKS[1] += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def record(method, target, status, headers, body):
    """Keeps one response for the validation at the end."""
    with _RECORD_LOCK:
        RECORDS.append({"method": method, "target": target, "status": status,
                        "headers": {k.lower(): v for k, v in headers.items()},
                        "body": body.decode("utf-8", "replace")})


def finish(args):
    """Writes the recorded responses to args.record, validates them against
    args.openapi with args.validator, prints the tally; returns the exit
    status (0 only when every check passed and every response is valid)."""
    with open(args.record, "w") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    print(f"{CHECKS[0] + CHECKS[1]} checks, {CHECKS[1]} failed", flush=True)
    rc = subprocess.run([args.node, args.validator, args.openapi, args.record])
    if rc.returncode != 0:
        print("FAIL: responses do not match the OpenAPI description")
    return 0 if CHECKS[1] == 0 and rc.returncode == 0 else 1
