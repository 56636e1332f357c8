// The dashboard page in a real headless browser: Debian's chromium driven by
// puppeteer-core (which never downloads a browser), against the real factsd
// on port 0. It loads the page, counts the timeline's marks against the
// API, reads the estimates' derived total, drives the page by keyboard,
// writes through the API and times the write's arrival on the open page,
// checks that data text stays text (an event title holding markup), that
// the live indicator notices a server that goes away, and saves desktop and
// narrow screenshots into OUTDIR.
//
// usage: node dashboard_test.mjs FACTSD DATASET.json OUTDIR
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const [factsdPath, datasetPath, outDir] = process.argv.slice(2);
if (!factsdPath || !datasetPath || !outDir) {
  console.error('usage: node dashboard_test.mjs FACTSD DATASET.json OUTDIR');
  process.exit(2);
}
const TOKEN = 'dashboard-test-token-0123456789abcdef';
let passed = 0;
let failed = 0;
function check(ok, what) {
  if (ok) passed += 1;
  else {
    failed += 1;
    console.log(`FAIL: ${what}`);
  }
  return ok;
}

const work = mkdtempSync(join(tmpdir(), 'factsd-dashboard-'));
writeFileSync(join(work, 'token'), TOKEN + '\n', { mode: 0o600 });
copyFileSync(datasetPath, join(work, 'data.json'));

function startFactsd() {
  return new Promise((resolve, reject) => {
    const proc = spawn(factsdPath, ['--listen', '127.0.0.1:0', '--token-file', join(work, 'token'),
      '--data', join(work, 'data.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => reject(new Error('factsd did not start')), 10000);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => {
      const m = /http:\/\/[^\s]+/.exec(chunk);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[0] });
      }
    });
    proc.on('exit', () => reject(new Error('factsd exited')));
  });
}

// Polls fn in the page until it returns a truthy value or ms pass.
async function waitFor(page, fn, ms, ...args) {
  try {
    await page.waitForFunction(fn, { timeout: ms, polling: 20 }, ...args);
    return true;
  } catch {
    return false;
  }
}

function newEvent(slug, title) {
  return {
    slug, title, type: 'meeting', status: 'reported',
    date: { precision: 'day', from: '2024-06-19', to: '2024-06-19', basis: 'stated' },
    participants: [{ actor: 'kim-jong-un', role: 'host' }],
    summary: 'An event the browser test writes.',
    evidence: [{ source: 'article', paragraph: 1, sentence: 1 }],
  };
}

async function post(url, body) {
  const r = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  return r.status;
}

let server = null;
let browser = null;
try {
  server = await startFactsd();
  const { url } = server;
  browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    userDataDir: mkdtempSync(join(work, 'chromium-')),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.setViewport({ width: 1920, height: 1080 });
  const resp = await page.goto(`${url}/`, { waitUntil: 'load', timeout: 20000 });
  check(resp.status() === 200, `GET / ${resp.status()}`);
  check((resp.headers()['content-security-policy'] || '').startsWith("default-src 'self'"),
    'the page comes with its CSP');

  const total = (await (await fetch(`${url}/v1/events?limit=500`)).json()).total;
  check(await waitFor(page, (n) => document.querySelectorAll('#timeline .mark[data-event-id]').length === n,
    10000, total), 'the timeline has marks');
  const marks = await page.$$eval('#timeline .mark[data-event-id]', (els) => els.map((e) => e.dataset.eventId));
  check(marks.length === total && new Set(marks).size === total,
    `one mark per event: ${marks.length} marks, ${new Set(marks).size} distinct, ${total} events`);
  const estimates = await page.$eval('#estimates', (e) => e.textContent);
  check(estimates.includes('11,000') && estimates.includes('15,000'),
    'the estimates show the derived 11,000–15,000');
  check(/derived/i.test(estimates), 'the cumulative total is labelled derived');
  check(await waitFor(page, () => document.getElementById('live').dataset.state === 'connected', 10000),
    'the live indicator says connected');

  // The page as a person first sees it (docs/dashboard.png is one of these).
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: false });

  // Keyboard: Tab reaches the search box, then an actor; Enter opens its events.
  let reached = { q: false, actor: false };
  for (let i = 0; i < 60 && !(reached.q && reached.actor); i += 1) {
    await page.keyboard.press('Tab');
    const where = await page.evaluate(() => ({
      id: document.activeElement.id, actor: document.activeElement.closest('#actor-list') !== null }));
    if (where.id === 'q') reached.q = true;
    if (where.actor) reached.actor = true;
  }
  check(reached.q, 'Tab reaches the search box');
  check(reached.actor, 'Tab reaches an actor');
  if (reached.actor) {
    await page.keyboard.press('Enter');
    check(await waitFor(page, () => {
      const s = document.getElementById('actor-events');
      return !s.hidden && s.querySelectorAll('li').length > 0;
    }, 5000), 'Enter on an actor lists its events');
  }
  // A click on an event shows its evidence as paragraph and sentence.
  await page.click(`#timeline .mark[data-event-id="${marks[0]}"]`);
  check(await waitFor(page, () => /paragraph \d+, sentence \d+/.test(document.getElementById('details').textContent), 5000),
    'an event\'s details give "paragraph N, sentence M"');
  // The search box asks the API with q=.
  await page.type('#q', 'Pyongyang');
  check(await waitFor(page, () => !document.getElementById('results').hidden, 5000), 'a search shows results');

  // Live: a write made through the API appears without a reload.
  const title = 'Browser test live event';
  const before = Date.now();
  check(await post(url, newEvent('browser-live-event', title)) === 201, 'the write is taken');
  const written = Date.now();
  const arrived = await waitFor(page, (t) => [...document.querySelectorAll('#timeline .mark')]
    .some((m) => m.textContent.includes(t)), 3000, title);
  const latency = Date.now() - written;
  check(arrived, 'the written event appears on the open page');
  check(latency < 1000, `within a second of the write: ${latency} ms`);
  console.log(`write to mark on the page: ${latency} ms (the write itself took ${written - before} ms)`);
  check(await page.$$eval('#timeline .mark[data-event-id]', (e) => e.length) === total + 1,
    'one more mark, still one per event');

  // Data text stays text.
  const xss = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
  check(await post(url, newEvent('browser-xss-event', xss)) === 201, 'the markup title is taken');
  check(await waitFor(page, (t) => [...document.querySelectorAll('#timeline .mark-title')]
    .some((m) => m.textContent === t), 3000, xss), 'the markup title shows as literal text');
  check(await page.evaluate(() => window.__xss === undefined), 'no script from the data ran');
  check(await page.evaluate(() => document.querySelector('#timeline img, #timeline script') === null),
    'no element was made from the data');

  await page.screenshot({ path: join(outDir, 'dashboard-desktop.png'), fullPage: false });
  await page.setViewport({ width: 360, height: 800 });
  await new Promise((r) => setTimeout(r, 300));
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `no horizontal scroll at 360 px: ${width}`);
  await page.screenshot({ path: join(outDir, 'dashboard-narrow.png'), fullPage: false });

  // The server goes away: the indicator says so.
  server.proc.kill('SIGTERM');
  check(await waitFor(page, () => document.getElementById('live').dataset.state !== 'connected', 10000),
    'the live indicator notices the server is gone');
  check(problems.filter((p) => !/ERR_CONNECTION_REFUSED|EventSource|Failed to load resource/.test(p)).length === 0,
    `no console errors or CSP violations: ${problems.join(' | ')}`);
} catch (e) {
  check(false, `the test ran to its end: ${e.stack || e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) server.proc.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
