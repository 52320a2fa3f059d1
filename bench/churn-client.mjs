// Benchmark client (not a test): a child process that churns anonymous sessions as fast as it
// can: connect (subprotocol rws.v1, from the next of its source addresses), `$hello`, wait for
// the `until` event, optionally `join` a room and wait for the answer, then drop the connection
// (no close frame), so the session is kept detached.
// Started by bench/churn.bench.ts with child_process.fork(this file, [JSON config]).
//
// config: { url, addresses, cycles, concurrency, until, join, lifetimeMs }
//   addresses: source addresses, used in turn; null: the system's choice. A socket bound to an
//   address before connecting cannot take over a port in TIME_WAIT, so a single address is best
//   left to the system (127.0.0.1 here), or its ephemeral ports run out after ~28,000 cycles.
// Child -> parent: { type: 'progress', completed, failed } every 250 ms, then
//                  { type: 'done', completed, failed, elapsedMs, errors: { reason: count } }.
// Parent -> child: { type: 'exit' }.
import { WebSocket } from 'ws';

const { url, addresses, cycles, concurrency = 32, until = '$ready', join, lifetimeMs = 600000 } = JSON.parse(process.argv[2]);
const HELLO = '{"event":"$hello","data":{}}';
const JOIN = join === undefined ? undefined : JSON.stringify({ event: 'join', data: { room: join }, id: 1 });
const ERRORS_KEPT = 10;

setTimeout(() => process.exit(3), lifetimeMs).unref();
process.on('disconnect', () => process.exit(0));
process.on('message', (message) => {
  if (message?.type === 'exit') process.exit(0);
});

let attempts = 0;
let completed = 0;
let failed = 0;
const errors = new Map();

function recordFailure(reason) {
  failed++;
  if (errors.has(reason) || errors.size < ERRORS_KEPT) errors.set(reason, (errors.get(reason) ?? 0) + 1);
}

/** One connect / `$hello` / drop; resolves once the connection is dropped. */
function cycle(localAddress) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, ['rws.v1'], { localAddress: localAddress ?? undefined, perMessageDeflate: false, handshakeTimeout: 20000 });
    let settled = false;
    const finish = (reason) => {
      if (settled) return;
      settled = true;
      if (reason === undefined) completed++;
      else recordFailure(reason);
      ws.terminate();
      resolve();
    };
    ws.on('open', () => ws.send(HELLO));
    ws.on('message', (data) => {
      const { event, ref } = JSON.parse(data.toString());
      if (event === '$error') finish(`$error ${data.toString().slice(0, 120)}`);
      else if (event === until && JOIN) ws.send(JOIN);
      else if (event === until || (JOIN && ref === 1)) finish();
    });
    ws.on('error', (error) => finish(error.message));
    ws.on('close', (code) => finish(`closed ${code}`));
  });
}

async function worker() {
  while (attempts < cycles) {
    const address = addresses[attempts++ % addresses.length];
    await cycle(address);
  }
}

const reportProgress = () => process.send?.({ type: 'progress', completed, failed });
const progressTimer = setInterval(reportProgress, 250);
const started = performance.now();
await Promise.all(Array.from({ length: Math.min(concurrency, cycles) }, worker));
clearInterval(progressTimer);
reportProgress();
process.send?.({ type: 'done', completed, failed, elapsedMs: performance.now() - started, errors: Object.fromEntries(errors) });
