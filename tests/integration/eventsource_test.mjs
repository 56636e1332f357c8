// The event stream through a browser-style client: the `eventsource` npm
// package (the WHATWG EventSource over fetch), used as a page would use it.
//
// usage: node eventsource_test.mjs FACTSD DATASET.json
//
// It starts factsd on 127.0.0.1 (port 0), opens an EventSource with
// ?last-event-id=0 (older than the history: a `reset` event comes first, seen
// through addEventListener('reset')), receives a write as a message, then
// stops the server with SIGTERM and starts it again on the same port with
// the same journal: the client must reconnect by itself, send Last-Event-ID
// (which wins over the query, so no second reset) and receive the next
// write. A second EventSource over --max-streams gets the 503 and, as the
// standard says for a status other than 200, gives up.
//
// Exits 77 (skipped) when tests/node_modules lacks the package; otherwise
// 0 only when every check passes.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

let EventSource;
try {
  ({ EventSource } = await import('eventsource'));
} catch (e) {
  console.log(`SKIP: the eventsource package is not installed (npm ci in tests/): ${e.message}`);
  process.exit(77);
}

const [factsd, dataset] = process.argv.slice(2);
if (!factsd || !dataset) {
  console.error('usage: node eventsource_test.mjs FACTSD DATASET.json');
  process.exit(2);
}

const TOKEN = 'eventsource-test-token-0123456789';
let passed = 0;
let failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL: ${what}`);
  }
  return ok;
}

const dir = mkdtempSync(join(tmpdir(), 'factsd-eventsource-'));
writeFileSync(join(dir, 'token'), TOKEN + '\n', { mode: 0o600 });
copyFileSync(dataset, join(dir, 'data.json'));

// Starts factsd on listen (ADDR:PORT); resolves to {proc, base, port}.
function start(listen) {
  return new Promise((resolve, reject) => {
    const proc = spawn(factsd, ['--listen', listen, '--threads', '2', '--max-streams', '1',
      '--token-file', join(dir, 'token'), '--journal', join(dir, 'journal'),
      '--data', join(dir, 'data.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: proc.stdout });
    const timer = setTimeout(() => reject(new Error('factsd did not start')), 10000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /http:\/\/([^\s]+):(\d+)/.exec(line);
      if (!m) reject(new Error(`factsd said: ${line}`));
      else resolve({ proc, base: `http://${m[1]}:${m[2]}`, port: Number(m[2]) });
    });
    proc.once('exit', (code) => reject(new Error(`factsd exited (${code})`)));
  });
}

// Sends SIGTERM; resolves to the exit code.
function stop(server) {
  return new Promise((resolve) => {
    if (server.proc.exitCode !== null) return resolve(server.proc.exitCode);
    server.proc.once('exit', (code) => resolve(code));
    server.proc.kill('SIGTERM');
  });
}

// Resolves when pred() holds (checked every 20 ms), or to false after ms.
async function until(pred, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}

async function writeEvent(base, slug) {
  const r = await fetch(`${base}/v1/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      slug, title: 'An event written by the EventSource test', type: 'meeting',
      status: 'reported',
      date: { precision: 'day', from: '2024-06-19', to: '2024-06-19', basis: 'stated' },
      participants: [{ actor: 'kim-jong-un', role: 'host' }],
      summary: 'An event written by the EventSource test.',
      evidence: [{ source: 'article', paragraph: 1, sentence: 1 }],
    }),
  });
  await r.arrayBuffer();
  return r.status;
}

let server = await start('127.0.0.1:0');
const listen = `127.0.0.1:${server.port}`;
const rev0 = (await (await fetch(`${server.base}/v1`)).json()).revision;

const requests = []; // the headers of every request the client made
const messages = [];
const resets = [];
const errors = [];
let opens = 0;
const es = new EventSource(`${server.base}/v1/stream?last-event-id=0`, {
  fetch: (url, init) => {
    requests.push(new Headers(init.headers));
    return fetch(url, init);
  },
});
es.addEventListener('open', () => { opens++; });
es.addEventListener('reset', (e) => resets.push(e));
es.addEventListener('error', (e) => errors.push({ e, state: es.readyState }));
es.onmessage = (e) => messages.push(e);

try {
  check(await until(() => resets.length === 1, 10000), 'a reset event at the start');
  check(opens === 1 && es.readyState === EventSource.OPEN, 'the stream is open');
  if (resets.length > 0) {
    const r = resets[0];
    const data = JSON.parse(r.data);
    check(r.type === 'reset' && r.lastEventId === String(rev0) && data.revision === rev0,
      `the reset names the latest revision as its id (${r.lastEventId} ${r.data})`);
  }
  check(messages.length === 0, 'a reset is not a message');

  check(await writeEvent(server.base, 'eventsource-one') === 201, 'a write');
  check(await until(() => messages.length === 1, 10000), 'the write arrives as a message');
  if (messages.length > 0) {
    const m = messages[0];
    const data = JSON.parse(m.data);
    check(m.lastEventId === String(rev0 + 1) && data.revision === rev0 + 1 &&
      data.op === 'create' && data.slug === 'eventsource-one',
    `the message: id ${m.lastEventId}, ${m.data.slice(0, 80)}`);
  }

  // over --max-streams 1: a 503, which the standard makes final
  const over = new EventSource(`${server.base}/v1/stream`);
  const overErrors = [];
  over.addEventListener('error', (e) => overErrors.push(e));
  check(await until(() => overErrors.length > 0, 10000) &&
    over.readyState === EventSource.CLOSED && overErrors[0].code === 503,
  `a second stream over the cap fails with 503 (${overErrors[0]?.code} ${over.readyState})`);
  over.close();

  // the server goes away and comes back on the same port
  const code = await stop(server);
  check(code === 0, `SIGTERM: exit 0 (${code})`);
  check(await until(() => errors.length > 0, 10000), 'the client sees the stream end');
  check(errors.length > 0 && errors[0].state === EventSource.CONNECTING,
    'and is reconnecting, not closed');
  const before = requests.length;
  server = await start(listen);
  check(await until(() => opens === 2, 15000), 'the client reconnects by itself');
  const again = requests.slice(before);
  const last = again[again.length - 1];
  check(last !== undefined && last.get('last-event-id') === String(rev0 + 1),
    `the reconnection sends Last-Event-ID ${rev0 + 1} (${last?.get('last-event-id')})`);
  check(again.slice(0, -1).every((h) => h.get('last-event-id') === String(rev0 + 1)),
    'every try sends it');
  check(await writeEvent(server.base, 'eventsource-two') === 201, 'a write after the restart');
  check(await until(() => messages.length === 2, 10000), 'it arrives on the resumed stream');
  if (messages.length > 1) {
    const data = JSON.parse(messages[1].data);
    check(messages[1].lastEventId === String(rev0 + 2) && data.slug === 'eventsource-two',
      `the message after the restart: id ${messages[1].lastEventId}`);
  }
  check(resets.length === 1, 'no second reset: the header won over the query');
} catch (e) {
  check(false, `unexpected: ${e.stack || e}`);
} finally {
  es.close();
  const code = await stop(server);
  check(code === 0, `exit 0 at the end (${code})`);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
