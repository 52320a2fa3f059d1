// Benchmark client (not a test): a child process that opens `count` rws.v1 sessions (from its
// source addresses in turn), waits for pushes on all of them, and drops them on request, so
// that the server keeps them detached. Started by bench/detached-memory.bench.ts with
// child_process.fork(this file, [JSON config]).
//
// config: { url, addresses, count, concurrency, lifetimeMs }
// Child -> parent: { type: 'opened', opened, failed, errors } once every connection is ready.
// Parent -> child (each answered by a message of the same type):
//   { type: 'pushes', seq, ack }  waits until every session has received the push numbered `seq`;
//        with `ack`, acknowledges it (`$ack { seq }`) and waits for a `$pong` after it, so that the
//        server has taken the acknowledgement. Answers { received }.
//   { type: 'drop' }  ends every connection without a close frame. Answers { dropped }.
//   { type: 'exit' }
import { WebSocket } from 'ws';

const { url, addresses, count, concurrency = 100, lifetimeMs = 600000 } = JSON.parse(process.argv[2]);
const HELLO = '{"event":"$hello","data":{}}';

setTimeout(() => process.exit(3), lifetimeMs).unref();
process.on('disconnect', () => process.exit(0));

/** @type {Array<{ ws: WebSocket, lastSeq: number, onFrame?: (frame: object) => void }>} */
const sessions = [];
const errors = [];
let failed = 0;

function openOne(localAddress) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, ['rws.v1'], { localAddress, perMessageDeflate: false, handshakeTimeout: 20000 });
    const session = { ws, lastSeq: 0, onFrame: undefined };
    let settled = false;
    const settle = (error) => {
      if (settled) return;
      settled = true;
      if (error === undefined) sessions.push(session);
      else {
        failed++;
        if (errors.length < 5) errors.push(error);
        ws.terminate();
      }
      resolve();
    };
    ws.on('open', () => ws.send(HELLO));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (typeof frame.seq === 'number') session.lastSeq = frame.seq;
      if (frame.event === '$ready') settle();
      session.onFrame?.(frame);
    });
    ws.on('error', (error) => settle(error.message));
    ws.on('close', (code) => settle(`closed ${code}`));
  });
}

async function openAll() {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const address = addresses[next++ % addresses.length];
      await openOne(address);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  process.send?.({ type: 'opened', opened: sessions.length, failed, errors });
}

/** Resolves once the session has the push numbered `seq` (and, with `ack`, the server took its `$ack`). */
function awaitPush(session, seq, ack) {
  return new Promise((resolve) => {
    const acknowledge = () => {
      if (!ack) return resolve();
      session.onFrame = (frame) => {
        if (frame.event === '$pong') resolve();
      };
      session.ws.send(JSON.stringify({ event: '$ack', data: { seq } }));
      session.ws.send('{"event":"$ping","data":null}');
    };
    if (session.lastSeq >= seq) return acknowledge();
    session.onFrame = () => {
      if (session.lastSeq >= seq) acknowledge();
    };
  });
}

process.on('message', async (message) => {
  if (message?.type === 'pushes') {
    await Promise.all(sessions.map((session) => awaitPush(session, message.seq, message.ack)));
    for (const session of sessions) session.onFrame = undefined;
    process.send?.({ type: 'pushes', received: sessions.length });
  } else if (message?.type === 'drop') {
    for (const { ws } of sessions) ws.terminate();
    process.send?.({ type: 'drop', dropped: sessions.length });
  } else if (message?.type === 'exit') {
    process.exit(0);
  }
});

void openAll();
