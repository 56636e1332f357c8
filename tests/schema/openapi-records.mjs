// The OpenAPI description's record schemas must accept every record the
// dataset format accepts: a record that loads must be servable. Validates each
// record of the given dataset files (ids added where a file leaves them out)
// against the OpenAPI component schema of its kind.
//
// usage: node openapi-records.mjs OPENAPI.json DATASET.json...
// Prints a line per failing record and a final "N passed, M failed".
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';

const [openapiPath, ...datasets] = process.argv.slice(2);
if (!openapiPath || datasets.length === 0) {
  console.error('usage: node openapi-records.mjs OPENAPI.json DATASET.json...');
  process.exit(2);
}
const doc = JSON.parse(readFileSync(openapiPath, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(doc, 'openapi');

const kinds = {
  sources: 'Source',
  actors: 'Actor',
  events: 'Event',
  troop_estimates: 'TroopEstimate',
};
let passed = 0;
let failed = 0;
for (const path of datasets) {
  const data = JSON.parse(readFileSync(path, 'utf8'));
  for (const [member, schema] of Object.entries(kinds)) {
    const validate = ajv.getSchema(`openapi#/components/schemas/${schema}`);
    if (!validate) {
      console.log(`FAIL ${path}: no schema ${schema} in the OpenAPI description`);
      failed++;
      continue;
    }
    (data[member] || []).forEach((record, i) => {
      const served = { id: '00000000-0000-5000-8000-000000000000', ...record };
      if (validate(served)) {
        passed++;
      } else {
        failed++;
        const why = validate.errors.slice(0, 3)
          .map((e) => `${e.instancePath || '(record)'} ${e.message}`).join('; ');
        console.log(`FAIL ${path} /${member}/${i} (${record.slug}): ${why}`);
      }
    });
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
