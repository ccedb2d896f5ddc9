// The browser client (examples/web/) end to end: a real wschatd serving it,
// Debian's /usr/bin/chromium driven headless by npm playwright-core.
// Run from the repository root: BUILD=build node --test tests/node/
// Leaves a screenshot in tests/artifacts/browser.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const buildDir = path.resolve(root, process.env.BUILD || 'build');
const wschatd = path.join(buildDir, 'cmd', 'wschatd');
const webRoot = path.join(root, 'examples', 'web');
const CHROMIUM = '/usr/bin/chromium';
const artifacts = path.join(root, 'tests', 'artifacts');
const screenshot = path.join(artifacts, 'browser.png');
const T = 10000;   // ms to wait for anything to show up

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// Start wschatd on port 0; resolve with { proc, port, url, stderr, ... }.
function startServer() {
  if (!existsSync(wschatd)) {
    return Promise.reject(new Error(`${wschatd} is missing (run make)`));
  }
  const proc = spawn(wschatd, ['--port', '0', '--web-root', webRoot], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = { proc, port: 0, stdout: '', stderr: '', exit: null };
  proc.stderr.on('data', (d) => { server.stderr += d; });
  server.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      server.exit = { code, signal };
      resolve(server.exit);
    });
  });
  return withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => {
      server.stdout += d;
      const m = /^wschatd: serving http:\/\/127\.0\.0\.1:(\d+)\/$/m.exec(server.stdout);
      if (m && !server.port) {
        server.port = Number(m[1]);
        server.url = `http://127.0.0.1:${server.port}/`;
        resolve(server);
      }
    });
    proc.on('exit', (code) => reject(new Error(
      `wschatd exited (${code}) before serving:\n${server.stdout}${server.stderr}`)));
    proc.on('error', reject);
  }), 5000, `wschatd start (stdout so far: ${JSON.stringify(server.stdout)})`);
}

async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's ` +
      'chromium package (make deps, or apt-get install chromium)');
  }
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    throw new Error('npm playwright-core is missing (make deps, or npm ci in ' +
      `tests/): ${e.message}`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

let server;
let browser;
let setupError;
const dialogs = [];
const pageErrors = [];
const pages = {};

before(async () => {
  try {
    browser = await launchChromium();
    server = await startServer();
  } catch (e) {
    setupError = e;
  }
});

after(async () => {
  if (pages.B && !pages.B.isClosed()) {
    mkdirSync(artifacts, { recursive: true });
    await pages.B.screenshot({ path: screenshot }).catch(() => {});
  }
  if (browser) await browser.close().catch(() => {});
  if (server) {
    if (server.exit) {
      assert.fail(`wschatd died during the test: ${JSON.stringify(server.exit)}` +
        `\n${server.stderr}`);
    }
    server.proc.kill('SIGTERM');
    const exit = await withTimeout(server.exited, 10000, 'wschatd exit');
    assert.deepEqual(exit, { code: 0, signal: null },
      `wschatd exit after SIGTERM; stderr:\n${server.stderr}`);
  }
});

// Every test starts with this: a missing browser or server is a failure.
function ready() {
  if (setupError) throw setupError;
  assert.ok(browser && server, 'setup did not finish');
}

// A fresh browser context (own sessionStorage) with one page on the client.
async function openClient(label) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  page.on('dialog', (d) => { dialogs.push(`${label}: ${d.type()} ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => { pageErrors.push(`${label}: ${e.message}`); });
  await page.goto(server.url);
  return page;
}

// Wait until the page is connected and has joined its room; return its name.
async function connectedName(page) {
  await page.waitForFunction(() =>
    document.querySelector('#status').dataset.state === 'open' &&
    !document.querySelector('#send-button').disabled, null, { timeout: T });
  return page.locator('#nick-input').inputValue();
}

const items = (page, cls, text) =>
  page.locator(`#messages li.${cls}`, { hasText: text });

async function say(page, text) {
  await page.locator('#text-input').fill(text);
  await page.locator('#text-input').press('Enter');
  await page.waitForFunction(() => document.querySelector('#text-input').value === '',
    null, { timeout: T });
}

let nameA;
let nameB;

test('a page connects with subprotocol wschat.v1.json and gets a name', async () => {
  ready();
  pages.B = await openClient('B');
  nameB = await connectedName(pages.B);
  assert.match(nameB, /^[A-Za-z0-9_.-]{1,32}$/);
  await pages.B.locator('#room-title', { hasText: 'lobby' }).waitFor({ timeout: T });
  await pages.B.locator('#members li', { hasText: nameB }).waitFor({ timeout: T });
});

test('a second page: B sees A join, both see each other as members', async () => {
  ready();
  pages.A = await openClient('A');
  nameA = await connectedName(pages.A);
  assert.notEqual(nameA, nameB);
  await items(pages.B, 'presence', `${nameA} joined lobby`).waitFor({ timeout: T });
  await pages.B.locator('#members li', { hasText: nameA }).waitFor({ timeout: T });
  await pages.A.locator('#members li', { hasText: nameB }).waitFor({ timeout: T });
  await pages.B.locator('#rooms li', { hasText: 'lobby' }).waitFor({ timeout: T });
});

test('A renames to alice and B sees the rename', async () => {
  ready();
  await pages.A.locator('#nick-input').fill('alice');
  await pages.A.locator('#nick-input').press('Enter');
  await pages.A.locator('#status', { hasText: 'alice' }).waitFor({ timeout: T });
  await items(pages.B, 'presence', `${nameA} is now alice`).waitFor({ timeout: T });
  await pages.B.locator('#members li', { hasText: /^alice$/ }).waitFor({ timeout: T });
});

test('name errors are shown: name_taken and invalid_name', async () => {
  ready();
  const input = pages.B.locator('#nick-input');
  const error = pages.B.locator('#nick-error');
  await input.fill('ALICE');
  await input.press('Enter');
  await error.filter({ hasText: 'taken' }).waitFor({ timeout: T });
  await input.fill('not a name!');
  await input.press('Enter');
  await error.filter({ hasText: /letters|invalid/ }).waitFor({ timeout: T });
  await input.fill('');
  await pages.B.locator('#text-input').focus();
  assert.equal(await input.inputValue(), nameB, 'B keeps its name');
});

test('A says hello; B shows it with sender alice and a local time', async () => {
  ready();
  await say(pages.A, 'hello from alice');
  const li = items(pages.B, 'msg', 'hello from alice');
  await li.waitFor({ timeout: T });
  assert.equal(await li.count(), 1);
  assert.equal(await li.locator('.from').textContent(), 'alice');
  assert.equal(await li.locator('.text').textContent(), 'hello from alice');
  const when = await li.locator('time').getAttribute('datetime');
  assert.ok(Math.abs(Date.parse(when) - Date.now()) < 60000, `datetime ${when}`);
  assert.match(await li.locator('time').textContent(), /\d/);
});

test('B reloads: a message sent meanwhile is shown exactly once', async () => {
  ready();
  const B = pages.B;
  // Hold the reloaded page's script until A has sent, so the message is
  // certainly sent while B has no connection.
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  await B.route('**/app.js', async (route) => { await gate; await route.continue(); });
  const oldB = nameB;
  const reloaded = B.reload({ timeout: 3 * T });
  try {
    await items(pages.A, 'presence', `${oldB} left lobby`).waitFor({ timeout: T });
    await say(pages.A, 'sent while B was reloading');
  } finally {
    release();
  }
  await reloaded;
  await B.unroute('**/app.js');
  nameB = await connectedName(B);
  await items(B, 'msg', 'sent while B was reloading').waitFor({ timeout: T });
  // Older messages come back through history, once each.
  await items(B, 'msg', 'hello from alice').waitFor({ timeout: T });
  await B.waitForTimeout(500);   // let any duplicate arrive
  assert.equal(await items(B, 'msg', 'sent while B was reloading').count(), 1);
  assert.equal(await items(B, 'msg', 'hello from alice').count(), 1);
  const ids = await B.locator('#messages li.msg').evaluateAll(
    (lis) => lis.map((li) => Number(li.dataset.id)));
  assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b),
    'message ids unique and in order');
  // And the live path still works after the reload, both ways.
  await say(pages.A, 'after the reload');
  await items(B, 'msg', 'after the reload').waitFor({ timeout: T });
  await say(B, 'B is back');
  await items(pages.A, 'msg', 'B is back').waitFor({ timeout: T });
  assert.equal(await items(B, 'msg', 'after the reload').count(), 1);
});

test('a dropped connection reconnects with backoff and misses nothing', async () => {
  ready();
  // Page D's WebSocket goes through Playwright, so the test can cut it and
  // refuse reconnects (close 1013) until it lets them through again.
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const D = await context.newPage();
  D.on('pageerror', (e) => { pageErrors.push(`D: ${e.message}`); });
  D.on('dialog', (d) => { dialogs.push(`D: ${d.message()}`); d.dismiss().catch(() => {}); });
  let allow = true;
  const attempts = [];
  const live = [];
  await D.routeWebSocket(/\/chat$/, (ws) => {
    attempts.push({ at: Date.now(), allowed: allow });
    if (!allow) { ws.close({ code: 1013, reason: 'test: try again later' }); return; }
    live.push({ ws, server: ws.connectToServer() });
  });
  await D.goto(server.url);
  const nameD = await connectedName(D);
  await say(pages.A, 'before D drops');
  await items(D, 'msg', 'before D drops').waitFor({ timeout: T });

  allow = false;
  const { ws, server: up } = live[0];
  await ws.close({ code: 4000, reason: 'test: dropped' });
  await up.close({ code: 1001 });
  await D.locator('#status[data-state="closed"]').waitFor({ timeout: T });
  await items(pages.A, 'presence', `${nameD} left lobby`).waitFor({ timeout: T });
  await say(pages.A, 'sent while D was offline');
  // Let a couple of attempts be refused (backing off), then let D back in.
  const deadline = Date.now() + T;
  while (attempts.filter((a) => !a.allowed).length < 2 && Date.now() < deadline) {
    await D.waitForTimeout(100);
  }
  allow = true;
  await connectedName(D);
  await items(D, 'msg', 'sent while D was offline').waitFor({ timeout: 3 * T });
  await D.waitForTimeout(500);
  assert.equal(await items(D, 'msg', 'sent while D was offline').count(), 1);
  assert.equal(await items(D, 'msg', 'before D drops').count(), 1);
  assert.equal(await items(D, 'msg', 'hello from alice').count(), 1);
  const refused = attempts.filter((a) => !a.allowed);
  assert.ok(refused.length >= 2, `retried while refused (${refused.length})`);
  // Backoff: the second retry waits 0.5-1 s (1 s nominal, jittered).
  const gap = refused[1].at - refused[0].at;
  assert.ok(gap >= 400, `second retry after ${gap} ms`);
  await context.close();
});

test('message text is shown as text, never as HTML', async () => {
  ready();
  const evil = '<img src=x onerror=alert(1)>';
  await say(pages.A, evil);
  const li = items(pages.B, 'msg', evil);
  await li.waitFor({ timeout: T });
  assert.equal(await li.locator('.text').textContent(), evil);
  await items(pages.A, 'msg', evil).waitFor({ timeout: T });
  await pages.B.waitForTimeout(300);   // an onerror would fire by now
  assert.equal(await pages.B.locator('#messages img').count(), 0);
  assert.equal(await pages.A.locator('#messages img').count(), 0);
  assert.deepEqual(dialogs, [], 'no dialog may open');
});

test('C joins a room by name; older history loads when scrolled to the top', async () => {
  ready();
  // 70 messages in room "bulk" from a plain ws client, paced under the
  // rate limit.
  const bot = new WebSocket(`ws://127.0.0.1:${server.port}/chat`, 'wschat.v1.json');
  const frames = [];
  const waiters = [];
  bot.on('message', (d) => {
    const m = JSON.parse(d.toString());
    frames.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = (pred, what) => withTimeout(new Promise((resolve) => {
    const look = () => {
      const i = frames.findIndex(pred);
      if (i >= 0) resolve(frames.splice(i, 1)[0]); else waiters.push(look);
    };
    look();
  }), T, what);
  await withTimeout(new Promise((resolve, reject) => {
    bot.once('open', resolve);
    bot.once('error', reject);
  }), T, 'bot open');
  await next((m) => m.type === 'welcome', 'welcome');
  bot.send(JSON.stringify({ type: 'join', room: 'bulk' }));
  await next((m) => m.type === 'history', 'bot history');
  for (let i = 1; i <= 70; i++) {
    bot.send(JSON.stringify({ type: 'say', room: 'bulk', text: `bulk ${i}`, ref: `b${i}` }));
    const r = await next((m) => m.ref === `b${i}`, `ack b${i}`);
    assert.equal(r.type, 'ack', JSON.stringify(r));
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  bot.close();

  const C = await openClient('C');
  pages.C = C;
  await connectedName(C);
  await C.locator('#join-input').fill('bulk');
  await C.locator('#join-input').press('Enter');
  await C.locator('#room-title', { hasText: 'bulk' }).waitFor({ timeout: T });
  await items(C, 'msg', 'bulk 70').waitFor({ timeout: T });
  const bulk = () => C.locator('#messages li.msg .text').evaluateAll(
    (els) => els.map((e) => e.textContent).filter((t) => t.startsWith('bulk ')));
  const first = await bulk();
  assert.ok(first.length < 70, `only the latest page at first (${first.length})`);
  for (let i = 0; i < 10 && (await bulk()).length < 70; i++) {
    await C.locator('#messages').evaluate((el) => { el.scrollTop = 0; });
    await C.waitForTimeout(300);
  }
  const all = await bulk();
  assert.deepEqual(all, Array.from({ length: 70 }, (_, i) => `bulk ${i + 1}`));
  assert.equal(await items(C, 'msg', 'hello from alice').count(), 0,
    'lobby messages stay in lobby');
  // Back in lobby, its messages are there once each.
  await C.locator('#rooms button[data-room="lobby"]').click();
  await items(C, 'msg', 'hello from alice').waitFor({ timeout: T });
  assert.equal(await items(C, 'msg', 'hello from alice').count(), 1);
  await C.context().close();
});

test('B sees alice leave when her page closes', async () => {
  ready();
  await pages.A.context().close();
  await items(pages.B, 'presence', 'alice left lobby').waitFor({ timeout: T });
  await pages.B.locator('#members li', { hasText: /^alice$/ })
    .waitFor({ state: 'detached', timeout: T });
  assert.deepEqual(pageErrors, [], 'no script errors in the pages');
  mkdirSync(artifacts, { recursive: true });
  await pages.B.screenshot({ path: screenshot });
});
