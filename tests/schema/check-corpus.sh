#!/usr/bin/env bash
# Check the dataset corpus against api/dataset.schema.json with Ajv (validate.mjs):
#   - the embedded dataset lib/data/article.json and every tests/data/valid/*.json
#     must be valid;
#   - every tests/data/invalid/<case>/input.json must get the verdict of the
#     "schema:" line of <case>/expect (invalid: the schema rejects it, valid: the rule
#     is one that only the C loader can check). For "schema: invalid" the expected
#     pointer must be among the pointers Ajv reports, so that the schema rejects the
#     case for the intended reason. The expect file itself is checked too: three lines
#     "rule:", "pointer:", "schema:", a known rule id, and (for every rule but syntax)
#     a pointer that resolves in the input.
# Prints one line per case and a final "N passed, M failed"; exits 1 on any failure,
# 77 (skip) when tests/node_modules is missing. Runs from any working directory.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tests=$(dirname "$here")
repo=$(dirname "$tests")
schema="$repo/api/dataset.schema.json"
validate="$here/validate.mjs"
data="$tests/data"

if [ ! -d "$tests/node_modules/ajv" ]; then
  echo "check-corpus: $tests/node_modules is missing; run 'cd tests && npm ci' first (skipping)" >&2
  exit 77
fi
if ! command -v node >/dev/null 2>&1; then
  echo "check-corpus: node not found (skipping)" >&2
  exit 77
fi
if [ ! -f "$schema" ]; then
  echo "check-corpus: $schema not found" >&2
  exit 1
fi

rules="syntax duplicate-key required unknown-member type enum format empty range too-long"
rules+=" low-high date date-order duplicate-slug duplicate-id duplicate reference reference-kind"
rules+=" locator self-reference context-note not-allowed"

passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# The schema must compile cleanly before anything else means something.
out=$(node "$validate" "$schema" "$data/valid/minimal.json" 2>&1)
if [ $? -eq 2 ]; then
  echo "$out"
  fail "schema-compiles" "validate.mjs could not compile $schema"
  echo "$passed passed, $failed failed"
  exit 1
fi

# Does JSON pointer $2 resolve in the JSON file $1? (prints nothing; exit status)
pointer_resolves() {
  node -e '
    const fs = require("fs");
    const [file, ptr] = process.argv.slice(1);
    let v = JSON.parse(fs.readFileSync(file, "utf8"));
    if (ptr !== "") {
      if (!ptr.startsWith("/")) process.exit(1);
      for (const raw of ptr.slice(1).split("/")) {
        const t = raw.replace(/~1/g, "/").replace(/~0/g, "~");
        if (v === null || typeof v !== "object") process.exit(1);
        if (Array.isArray(v) ? !/^(0|[1-9][0-9]*)$/.test(t) || Number(t) >= v.length
                             : !Object.prototype.hasOwnProperty.call(v, t)) process.exit(1);
        v = v[t];
      }
    }
  ' "$1" "$2"
}

shopt -s nullglob

# The embedded dataset is the one that matters most.
valid_files=("$repo/lib/data/article.json" "$data"/valid/*.json)
if [ ${#valid_files[@]} -eq 0 ]; then
  fail "valid" "no files in $data/valid"
fi
for f in "${valid_files[@]}"; do
  name="valid/$(basename "$f")"
  out=$(node "$validate" "$schema" "$f" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    pass "$name (schema: valid)"
  else
    fail "$name" "expected valid, got: $out"
  fi
done

case_dirs=("$data"/invalid/*/)
if [ ${#case_dirs[@]} -eq 0 ]; then
  fail "invalid" "no cases in $data/invalid"
fi
for d in "${case_dirs[@]}"; do
  d=${d%/}
  name="invalid/$(basename "$d")"
  input="$d/input.json"
  expect="$d/expect"
  if [ ! -f "$input" ] || [ ! -f "$expect" ]; then
    fail "$name" "input.json or expect missing"
    continue
  fi
  if [ "$(wc -l <"$expect")" -ne 3 ]; then
    fail "$name" "expect must have exactly three lines"
    continue
  fi
  rule_line=$(sed -n 1p "$expect")
  pointer_line=$(sed -n 2p "$expect")
  schema_line=$(sed -n 3p "$expect")
  rule=${rule_line#rule: }
  pointer=${pointer_line#pointer: }
  [ "$pointer_line" = "pointer:" ] && pointer=""
  want=${schema_line#schema: }
  if [ "$rule_line" = "$rule" ] || [[ " $rules " != *" $rule "* ]]; then
    fail "$name" "bad rule line: $rule_line"
    continue
  fi
  if [ "$pointer_line" != "pointer:" ] && [ "$pointer_line" = "$pointer" ]; then
    fail "$name" "bad pointer line: $pointer_line"
    continue
  fi
  if [ "$want" != "valid" ] && [ "$want" != "invalid" ]; then
    fail "$name" "bad schema line: $schema_line"
    continue
  fi
  if [ "$rule" = "syntax" ]; then
    if [ -n "$pointer" ]; then
      fail "$name" "a syntax case has the empty pointer"
      continue
    fi
  elif ! pointer_resolves "$input" "$pointer" 2>/dev/null; then
    fail "$name" "pointer '$pointer' does not resolve in input.json"
    continue
  fi

  out=$(node "$validate" "$schema" "$input" 2>&1)
  rc=$?
  case $rc in
    0) got=valid ;;
    1) got=invalid ;;
    *) fail "$name" "validate.mjs failed (exit $rc): $out"; continue ;;
  esac
  if [ "$got" != "$want" ]; then
    fail "$name" "rule $rule: expected schema $want, ajv says $got: $out"
    continue
  fi
  if [ "$got" = "invalid" ]; then
    shown=${pointer:-(root)}
    # validate.mjs prints "FILE: invalid: PTR: msg; PTR: msg"
    errs=${out#*: invalid: }
    if [[ "$errs" != "$shown: "* && "$errs" != *"; $shown: "* ]]; then
      fail "$name" "ajv rejects it but not at $shown: $errs"
      continue
    fi
  fi
  pass "$name (rule: $rule, schema: $got)"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
