#!/usr/bin/env node
// Validate JSON files against a JSON Schema 2020-12 with Ajv in strict mode.
//
// usage: node tests/schema/validate.mjs SCHEMA FILE...
//
// Prints one line per FILE: "FILE: valid" or "FILE: invalid: <errors>", where each
// error is "<JSON pointer>: <message>" (the pointer names the offending member itself
// for unknown members and the repeated item for duplicates; "(root)" is the document).
// Exit status: 0 all valid, 1 any invalid, 2 usage error, I/O error, or a schema that
// does not compile cleanly (strict-mode errors or warnings).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const MAX_ERRORS = 5;

function usage(msg) {
  if (msg) process.stderr.write(`validate.mjs: ${msg}\n`);
  process.stderr.write("usage: node tests/schema/validate.mjs SCHEMA FILE...\n");
  process.exit(2);
}

function escapeToken(s) {
  return String(s).replace(/~/g, "~0").replace(/\//g, "~1");
}

// The JSON pointer of the value an error is about, refined where Ajv reports the parent.
function errorPointer(e) {
  let p = e.instancePath;
  if (e.keyword === "additionalProperties" || e.keyword === "unevaluatedProperties") {
    p += "/" + escapeToken(e.params.additionalProperty ?? e.params.unevaluatedProperty);
  } else if (e.keyword === "uniqueItems") {
    p += "/" + Math.max(e.params.i, e.params.j);
  }
  return p === "" ? "(root)" : p;
}

function describe(errors) {
  const shown = errors.slice(0, MAX_ERRORS).map((e) => `${errorPointer(e)}: ${e.message}`);
  const more = errors.length > MAX_ERRORS ? ` (+${errors.length - MAX_ERRORS} more)` : "";
  return shown.join("; ") + more;
}

const args = process.argv.slice(2);
if (args.length < 2) usage(args.length === 1 ? "no FILE given" : "");
const [schemaPath, ...files] = args;

let Ajv2020;
try {
  Ajv2020 = require("ajv/dist/2020").default;
} catch (err) {
  process.stderr.write(`validate.mjs: cannot load ajv (run "cd tests && npm ci"): ${err.message}\n`);
  process.exit(2);
}

let schema;
try {
  schema = JSON.parse(readFileSync(schemaPath, "utf8"));
} catch (err) {
  process.stderr.write(`validate.mjs: ${schemaPath}: cannot read schema: ${err.message}\n`);
  process.exit(2);
}

const warnings = [];
const logger = {
  log: () => {},
  warn: (...a) => warnings.push(a.join(" ")),
  error: (...a) => warnings.push(a.join(" ")),
};

let validate;
try {
  const ajv = new Ajv2020({ strict: true, allErrors: true, logger });
  validate = ajv.compile(schema);
} catch (err) {
  process.stderr.write(`validate.mjs: ${schemaPath}: schema does not compile: ${err.message}\n`);
  process.exit(2);
}
if (warnings.length > 0) {
  for (const w of warnings) process.stderr.write(`validate.mjs: ${schemaPath}: strict mode: ${w}\n`);
  process.exit(2);
}

let status = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    process.stderr.write(`validate.mjs: ${file}: ${err.message}\n`);
    status = 2;
    continue;
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    process.stdout.write(`${file}: invalid: (root): not JSON: ${err.message}\n`);
    if (status === 0) status = 1;
    continue;
  }
  if (validate(data)) {
    process.stdout.write(`${file}: valid\n`);
  } else {
    process.stdout.write(`${file}: invalid: ${describe(validate.errors)}\n`);
    if (status === 0) status = 1;
  }
}
process.exit(status);
