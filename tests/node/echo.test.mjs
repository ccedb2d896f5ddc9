// build/examples/echo against the npm `ws` client (tests/package.json).
// Run from the repository root: BUILD=build node --test tests/node/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const buildDir = path.resolve(root, process.env.BUILD || 'build');
const echoBin = path.join(buildDir, 'examples', 'echo');
const TIMEOUT = 10000;

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// Start the echo server on port 0; resolve with { proc, port, stderr }.
function startServer(flags = []) {
  if (!existsSync(echoBin)) {
    return Promise.reject(new Error(`${echoBin} is missing (run make)`));
  }
  const proc = spawn(echoBin, [...flags, '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = { proc, port: 0, stderr: '', exit: null };
  proc.stderr.on('data', (d) => { server.stderr += d; });
  server.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      server.exit = { code, signal };
      resolve(server.exit);
    });
  });
  return withTimeout(new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && !server.port) {
        const m = /^echo: listening on 127\.0\.0\.1:(\d+)$/.exec(
          out.slice(0, nl));
        if (!m) {
          reject(new Error(`unexpected first line ${JSON.stringify(out)}`));
          return;
        }
        server.port = Number(m[1]);
        resolve(server);
      }
    });
    proc.on('exit', (code) => reject(
      new Error(`echo exited (${code}) before listening: ${server.stderr}`)));
    proc.on('error', reject);
  }), 5000, 'echo server start');
}

async function stopServer(server) {
  if (server.exit) {
    assert.fail(`echo server died during the test: ${JSON.stringify(
      server.exit)}\n${server.stderr}`);
  }
  server.proc.kill('SIGTERM');
  const exit = await withTimeout(server.exited, 10000, 'echo exit');
  assert.deepEqual(exit, { code: 0, signal: null },
    `exit after SIGTERM; stderr:\n${server.stderr}`);
}

function open(port, options = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, options);
  ws.binaryType = 'nodebuffer';
  // Every message lands in a queue that next() takes from, so no message
  // can be missed between two awaits.
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const item = { data, isBinary };
    if (waiters.length) waiters.shift().resolve(item); else queue.push(item);
  });
  ws.on('close', (code) => {
    ws.closeCode = code;
    while (waiters.length) {
      waiters.shift().reject(new Error(`closed with ${code}`));
    }
  });
  ws.next = () => withTimeout(new Promise((resolve, reject) => {
    if (queue.length) resolve(queue.shift());
    else if (ws.readyState >= WebSocket.CLOSING) {
      reject(new Error('closed'));
    } else waiters.push({ resolve, reject });
  }), TIMEOUT, 'message');
  ws.opened = withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), TIMEOUT, 'open');
  return ws;
}

async function closeClient(ws) {
  if (ws.readyState === WebSocket.CLOSED) return ws.closeCode;
  const closed = new Promise((resolve) => ws.once('close', resolve));
  ws.close(1000);
  return withTimeout(closed, TIMEOUT, 'close');
}

async function roundtrip(ws, data) {
  const isBinary = typeof data !== 'string';
  ws.send(data, { binary: isBinary });
  const got = await ws.next();
  assert.equal(got.isBinary, isBinary);
  if (isBinary) assert.ok(Buffer.compare(got.data, Buffer.from(data)) === 0,
    'binary echo differs');
  else assert.equal(got.data.toString('utf8'), data);
}

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await stopServer(server); });

test('100 concurrent ws clients echo text and binary', async () => {
  const clients = Array.from({ length: 100 }, () => open(server.port));
  await Promise.all(clients.map((ws) => ws.opened));
  await Promise.all(clients.map(async (ws, i) => {
    for (let j = 0; j < 5; j++) {
      await roundtrip(ws, `client ${i} says ${j} ✓`);
      await roundtrip(ws, Buffer.alloc(i * 100 + j, i & 0xff));
    }
    await roundtrip(ws, Buffer.alloc(65536, 7));
  }));
  const codes = await Promise.all(clients.map(closeClient));
  assert.deepEqual(codes, Array(100).fill(1000));
});

test('fragmented send is echoed as one message', async () => {
  const ws = open(server.port);
  await ws.opened;
  ws.send('Hel', { fin: false });
  ws.send('lo, ', { fin: false });
  ws.send('wörld', { fin: true });
  let got = await ws.next();
  assert.equal(got.isBinary, false);
  assert.equal(got.data.toString('utf8'), 'Hello, wörld');

  ws.send(Buffer.from([1, 2]), { binary: true, fin: false });
  ws.send(Buffer.alloc(30000, 3), { binary: true, fin: false });
  ws.send(Buffer.from([4]), { binary: true, fin: true });
  got = await ws.next();
  assert.equal(got.isBinary, true);
  assert.equal(got.data.length, 30003);
  assert.deepEqual([...got.data.subarray(0, 3)], [1, 2, 3]);
  assert.equal(got.data[30002], 4);
  assert.equal(await closeClient(ws), 1000);
});

test('ping gets a pong with the same payload', async () => {
  const ws = open(server.port);
  await ws.opened;
  for (const payload of [Buffer.alloc(0), Buffer.from('hello ping'),
    Buffer.alloc(125, 0xab)]) {
    const pong = withTimeout(new Promise((resolve) => ws.once('pong',
      resolve)), TIMEOUT, 'pong');
    ws.ping(payload);
    const data = await pong;
    assert.ok(Buffer.compare(data, payload) === 0,
      `pong payload ${data.toString('hex')} != ${payload.toString('hex')}`);
  }
  await roundtrip(ws, 'after ping');
  assert.equal(await closeClient(ws), 1000);
});

test('permessage-deflate offer is declined and messages flow', async () => {
  const ws = open(server.port, { perMessageDeflate: true });
  const upgrade = new Promise((resolve) => ws.once('upgrade', resolve));
  await ws.opened;
  const res = await upgrade;
  assert.equal(res.headers['sec-websocket-extensions'], undefined);
  assert.equal(ws.extensions, '');
  await roundtrip(ws, 'x'.repeat(5000));
  await roundtrip(ws, Buffer.alloc(5000, 0));
  assert.equal(await closeClient(ws), 1000);
});

test('server close code reaches ws: close 4000 is echoed', async () => {
  const ws = open(server.port);
  await ws.opened;
  const closed = new Promise((resolve) => ws.once('close',
    (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.close(4000, 'custom');
  const { code } = await withTimeout(closed, TIMEOUT, 'close');
  assert.equal(code, 4000);
});
