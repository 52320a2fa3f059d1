// A child process that opens many WebSocket connections (real `ws` clients) to one URL and
// reports over IPC. Run with child_process.fork(this file, [url, count, concurrency, lifetimeMs]).
//
// Parent -> child: { type: 'report' } (answers { type: 'status', ... }), { type: 'terminate-all' }.
// Child -> parent: { type: 'opened', opened, failed, errors } once every attempt has settled,
//                  { type: 'all-closed', codes } once every opened connection has closed,
//                  { type: 'status', opened, failed, closed, codes }.
import { WebSocket } from 'ws';

const [url, countArg, concurrencyArg, lifetimeArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrency = Number(concurrencyArg ?? 100);
const lifetimeMs = Number(lifetimeArg ?? 120000);

// Hard bound on this process's life, whatever happens.
setTimeout(() => process.exit(3), lifetimeMs);

const sockets = [];
const codes = {};
const errors = [];
let started = 0;
let settled = 0;
let opened = 0;
let failed = 0;
let closed = 0;
let openingDone = false;

const send = (message) => process.send?.(message);

function status() {
  return { type: 'status', opened, failed, closed, codes };
}

function maybeAllClosed() {
  if (openingDone && closed === opened) send({ type: 'all-closed', codes });
}

function openOne() {
  started++;
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 20000 });
  sockets.push(ws);
  let ready = false;
  let done = false;
  const settle = (ok, error) => {
    if (done) return;
    done = true;
    settled++;
    if (ok) opened++;
    else {
      failed++;
      if (errors.length < 5) errors.push(String(error));
    }
    if (started < count) openOne();
    if (settled === count) {
      openingDone = true;
      send({ type: 'opened', opened, failed, errors });
      maybeAllClosed();
    }
  };
  ws.on('message', (data) => {
    if (ready) return;
    try {
      if (JSON.parse(data.toString()).event === '$ready') {
        ready = true;
        settle(true);
      }
    } catch {
      // ignore
    }
  });
  ws.on('error', (error) => settle(false, error.message));
  ws.on('close', (code) => {
    if (!ready) return settle(false, `closed ${code} before $ready`);
    closed++;
    codes[code] = (codes[code] ?? 0) + 1;
    maybeAllClosed();
  });
}

process.on('message', (message) => {
  if (message?.type === 'report') send(status());
  if (message?.type === 'terminate-all') {
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));

for (let i = 0; i < Math.min(concurrency, count); i++) openOne();
