// Validates recorded HTTP responses against the OpenAPI description.
//
// usage: node validate-responses.mjs OPENAPI.json RECORDS.jsonl
//
// Each line of RECORDS is {"method", "target", "status", "headers": {lower-case
// name: value}, "body"}. For each one the operation is found from the path
// template and method (a target that matches no path, or a method the path
// does not describe, is held to the shared error responses), then:
//   - the status must be described,
//   - a body must come with a described media type and match its schema
//     (metrics text is only checked for its line ends and # EOF),
//   - every header the response marks required must be present, and every
//     described header that is present must match its schema.
// Before it trusts itself, the script checks that it rejects deliberately
// drifted copies of real responses. Exit status 0 only when all pass.
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';

const [openapiPath, recordsPath] = process.argv.slice(2);
if (!openapiPath || !recordsPath) {
  console.error('usage: node validate-responses.mjs OPENAPI.json RECORDS.jsonl');
  process.exit(2);
}
const doc = JSON.parse(readFileSync(openapiPath, 'utf8'));
const records = readFileSync(recordsPath, 'utf8').split('\n').filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l));

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(doc, 'openapi');

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
function resolve(node, pointer) {
  let seen = 0;
  while (node && typeof node.$ref === 'string') {
    if (!node.$ref.startsWith('#/') || ++seen > 8) throw new Error(`unsupported $ref ${node.$ref}`);
    pointer = node.$ref.slice(1);
    node = pointer.split('/').slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((n, k) => (n === undefined ? undefined : n[k]), doc);
  }
  return [node, pointer];
}

const templates = Object.keys(doc.paths).map((t) => ({
  template: t,
  literal: !t.includes('{'),
  re: new RegExp('^' + t.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));
// The server decodes each path segment after splitting on '/', so match on
// decoded segments too (an encoded slash stays inside its segment).
function decodePath(path) {
  return path.split('/').map((seg) => {
    try { return decodeURIComponent(seg).replace(/\//g, '%2F'); } catch { return seg; }
  }).join('/');
}
function findPath(target) {
  const path = decodePath(target.split('?')[0]);
  const hits = templates.filter((t) => t.re.test(path));
  return (hits.find((t) => t.literal) || hits[0] || {}).template;
}

// Shared responses for requests no operation describes.
const fallback = {
  400: 'BadRequest', 404: 'NotFound', 405: 'MethodNotAllowed', 413: 'ContentTooLarge',
  414: 'UriTooLong', 431: 'HeadersTooLarge', 500: 'InternalError',
};

const validators = new Map();
function schemaValidator(pointer) {
  if (!validators.has(pointer)) validators.set(pointer, ajv.getSchema('openapi#' + pointer));
  return validators.get(pointer);
}

function check(rec) {
  const errors = [];
  const template = findPath(rec.target);
  const method = rec.method.toLowerCase();
  let response;
  let pointer;
  const op = template && doc.paths[template][method];
  if (op) {
    const key = String(rec.status);
    if (!(key in op.responses)) {
      return [`status ${rec.status} is not described for ${method.toUpperCase()} ${template}`];
    }
    [response, pointer] = resolve(op.responses[key], `/paths/${esc(template)}/${method}/responses/${key}`);
  } else {
    const name = fallback[rec.status];
    if (!name) return [`status ${rec.status} for an undescribed operation is not described`];
    [response, pointer] = resolve({ $ref: `#/components/responses/${name}` }, '');
  }
  // RFC 9110 8.3: without Content-Type a recipient may assume octet-stream.
  const ct = (rec.headers['content-type'] || 'application/octet-stream').split(';')[0].trim();
  // A stream's body is whatever the client read before it closed: perhaps
  // nothing. Its media type is checked all the same.
  const hasBody = (rec.body !== undefined && rec.body !== '') ||
    (ct === 'text/event-stream' && method !== 'head');
  if (hasBody) {
    const content = response.content || {};
    if (!(ct in content)) {
      errors.push(`media type "${ct}" is not described (${Object.keys(content).join(', ') || 'no content'})`);
    } else if (ct === 'application/x-ndjson') {
      // One record a line, each ending in LF; the schema is a line's.
      const validate = schemaValidator(`${pointer}/content/${esc(ct)}/schema`);
      if (!rec.body.endsWith('\n')) errors.push('NDJSON body does not end with a newline');
      rec.body.split('\n').slice(0, -1).forEach((line, i) => {
        let v;
        try { v = JSON.parse(line); } catch (e) { errors.push(`line ${i + 1} is not JSON: ${e.message}`); return; }
        if (!validate) errors.push(`no schema at ${pointer}`);
        else if (!validate(v)) errors.push(...validate.errors.slice(0, 3).map((e) => `line ${i + 1}${e.instancePath} ${e.message}`));
      });
    } else if (ct === 'text/csv') {
      // RFC 4180 as the server writes it: a header row, CRLF after every row.
      if (!rec.body.endsWith('\r\n')) errors.push('CSV body does not end with CRLF');
      if (!/^[a-z_.]+(,[a-z_.]+)*\r\n/.test(rec.body)) errors.push('CSV body does not start with a header row');
    } else if (ct === 'text/plain' || ct === 'application/openmetrics-text') {
      // Metrics, opaque here (promtool checks them): UTF-8 lines ending in
      // LF; OpenMetrics ends with "# EOF".
      if (!rec.body.endsWith('\n')) errors.push('metrics text does not end with a newline');
      if (ct === 'application/openmetrics-text' && !rec.body.endsWith('# EOF\n')) {
        errors.push('OpenMetrics text does not end with "# EOF"');
      }
    } else if (ct.endsWith('json')) {
      let body;
      try { body = JSON.parse(rec.body); } catch (e) { errors.push(`body is not JSON: ${e.message}`); }
      if (body !== undefined) {
        const validate = schemaValidator(`${pointer}/content/${esc(ct)}/schema`);
        if (!validate) errors.push(`no schema at ${pointer}`);
        else if (!validate(body)) {
          errors.push(...validate.errors.slice(0, 5).map((e) => `body${e.instancePath} ${e.message} (${e.schemaPath})`));
        }
      }
    }
  } else if (response.content && method !== 'head' && rec.status !== 304) {
    errors.push('the response has no body but one is described');
  }
  for (const [name, h0] of Object.entries(response.headers || {})) {
    const [h, hp] = resolve(h0, `${pointer}/headers/${esc(name)}`);
    const value = rec.headers[name.toLowerCase()];
    if (value === undefined) {
      if (h.required) errors.push(`required header ${name} is missing`);
      continue;
    }
    if (h.schema) {
      const validate = schemaValidator(`${hp}/schema`);
      if (validate && !validate(value)) errors.push(`header ${name}: "${value}" does not match its schema`);
    }
  }
  return errors;
}

// The validator must catch drift before its verdicts count.
function selfTest() {
  const item = records.find((r) => r.status === 200 && r.method === 'GET' && /^\/v1\/events\/[^/?]+$/.test(r.target));
  const page = records.find((r) => r.status === 200 && r.method === 'GET' && r.target.startsWith('/v1/events?'));
  const problem = records.find((r) => r.status === 400 && (r.headers['content-type'] || '').startsWith('application/problem+json'));
  if (!item || !page || !problem) return ['the records lack an event, an event page or a problem to drift'];
  const drifted = [];
  const body = JSON.parse(item.body);
  drifted.push(['an extra member', { ...item, body: JSON.stringify({ ...body, extra: 1 }) }]);
  const { id, ...noId } = body;
  drifted.push(['a missing id', { ...item, body: JSON.stringify(noId) }]);
  drifted.push(['a wrong type', { ...item, body: JSON.stringify({ ...body, title: 7 }) }]);
  drifted.push(['a bad ETag', { ...item, headers: { ...item.headers, etag: 'W/"x"' } }]);
  drifted.push(['no Cache-Control', { ...item, headers: { ...item.headers, 'cache-control': undefined } }]);
  const p = JSON.parse(page.body);
  drifted.push(['a page without total', { ...page, body: JSON.stringify({ items: p.items, next: p.next, limit: p.limit }) }]);
  drifted.push(['an undescribed status', { ...item, status: 418 }]);
  drifted.push(['another media type', { ...item, headers: { ...item.headers, 'content-type': 'text/plain' } }]);
  const pr = JSON.parse(problem.body);
  drifted.push(['a problem with a wrong title', { ...problem, body: JSON.stringify({ ...pr, title: 'Oops' }) }]);
  for (const [, r] of drifted) {
    for (const k of Object.keys(r.headers)) if (r.headers[k] === undefined) delete r.headers[k];
  }
  return drifted.filter(([, r]) => check(r).length === 0).map(([what]) => `drift not detected: ${what}`);
}

let failed = 0;
for (const problem of selfTest()) {
  console.error(`validator self-test: ${problem}`);
  failed++;
}
for (const rec of records) {
  const errors = check(rec);
  if (errors.length > 0) {
    failed++;
    console.error(`${rec.method} ${rec.target.slice(0, 120)} -> ${rec.status}:\n  ${errors.join('\n  ')}`);
  }
}
console.log(`${records.length} responses checked against the OpenAPI description, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
