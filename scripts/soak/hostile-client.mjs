// The hostile phase of the soak: a child process that sends `frames` hostile frames over
// `connections` authenticated connections (in batches, each answer checked), while other
// connections flood during a hanging `verify` (must close 1008) or present a slow token (must
// close 4008). Started with child_process.fork(this file, [JSON config]).
//
// config: { url, frames, connections, batch, floods, slow, addresses, deadlineMs }
// Child -> parent: { type: 'result', sent, withId, answered, problems, sampleProblems, floodCloses,
//                    slowCloses, elapsedMs } once everything settled, then it exits.
import { WebSocket } from 'ws';
import { answerKey, hostileFrame, nestedText, refOf, seededRandom } from './hostile-frames.mjs';

const config = JSON.parse(process.argv[2]);
const { url, frames, connections, batch = 400, floods = 200, slow = 20, addresses, deadlineMs = 900000 } = config;

setTimeout(() => process.exit(3), deadlineMs + 60000).unref();
process.on('disconnect', () => process.exit(0));

const deadline = Date.now() + deadlineMs;
const sampleProblems = [];
const totals = { sent: 0, withId: 0, answered: 0, problems: 0 };

function problem(text) {
  totals.problems++;
  if (sampleProblems.length < 20) sampleProblems.push(text.slice(0, 300));
}

function open(index, protocols = []) {
  const ws = new WebSocket(url, protocols, { localAddress: addresses[index % addresses.length], perMessageDeflate: false });
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  return { ws, opened, closed };
}

/** Resolves once `$ready` arrived after `$hello` with the token. */
async function authenticated(index) {
  const connection = open(index);
  await connection.opened;
  const ready = new Promise((resolve, reject) => {
    const onMessage = (data) => {
      if (JSON.parse(data.toString()).event !== '$ready') return;
      connection.ws.off('message', onMessage);
      resolve();
    };
    connection.ws.on('message', onMessage);
    connection.closed.then((code) => reject(new Error(`closed ${code} before $ready`)));
  });
  connection.ws.send(JSON.stringify({ event: '$hello', data: { token: `user-${index}` } }));
  await ready;
  return connection;
}

/** Sends this connection's share in batches; each batch's answers are checked before the next. */
async function runHostileConnection(index, quota) {
  const { ws, closed } = await authenticated(index);
  const random = seededRandom(7919 * (index + 1));
  const pending = new Map();
  let anonymousLeft = 0;
  let wake = () => undefined;
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    const ref = refOf(frame);
    if (frame.data?.code === 'INTERNAL' && frame.data.message !== 'Internal error') problem(`INTERNAL says ${frame.data.message}`);
    if (ref === undefined) {
      if (frame.event === '$error' && frame.data?.code === 'BAD_MESSAGE' && anonymousLeft > 0) anonymousLeft--;
      else problem(`unexpected frame without ref: ${answerKey(frame)}`);
    } else if (!pending.has(ref)) {
      problem(`answer to an id not pending (twice?): ${ref} ${answerKey(frame)}`);
    } else {
      const key = answerKey(frame);
      if (key !== pending.get(ref)) problem(`${ref}: expected ${pending.get(ref).slice(0, 80)}, got ${key.slice(0, 80)}`);
      pending.delete(ref);
      totals.answered++;
    }
    wake();
  });
  let isClosed = false;
  let finished = false;
  closed.then((code) => {
    isClosed = true;
    if (!finished) problem(`hostile connection ${index} closed with ${code}`);
    wake();
  });
  for (let done = 0; done < quota && !isClosed && Date.now() < deadline; ) {
    const size = Math.min(batch, quota - done);
    for (let n = done; n < done + size; n++) {
      const frame = hostileFrame(n, `h${index}-${n}`, random);
      ws.send(frame.payload, { binary: frame.binary });
      totals.sent++;
      if (frame.answer === undefined) anonymousLeft++;
      else {
        totals.withId++;
        pending.set(`h${index}-${n}`, frame.answer);
      }
    }
    done += size;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 60000);
      wake = () => {
        if (pending.size === 0 && anonymousLeft === 0) {
          clearTimeout(timer);
          resolve();
        } else if (isClosed) {
          clearTimeout(timer);
          resolve();
        }
      };
      wake();
    });
    if (pending.size > 0 || anonymousLeft > 0) {
      problem(`connection ${index}: ${pending.size} ids and ${anonymousLeft} frames without id unanswered`);
      break;
    }
  }
  finished = true;
  ws.close(1000);
}

/** `$hello` with a token whose verify hangs, then more frames than may be held: close codes. */
async function floodWhileVerifyHangs(lane, cycles) {
  const codes = {};
  for (let i = 0; i < cycles && Date.now() < deadline; i++) {
    const { ws, opened, closed } = open(lane);
    await opened;
    ws.send(JSON.stringify({ event: '$hello', data: { token: 'hang' } }));
    const data = nestedText(20);
    for (let f = 0; f < 34; f++) ws.send(JSON.stringify({ event: 'echo', data, id: f }));
    const code = await closed;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return codes;
}

async function slowVerifies(count) {
  const codes = {};
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const { ws, opened, closed } = open(i);
      await opened;
      ws.send(JSON.stringify({ event: '$hello', data: { token: 'slow' } }));
      const code = await closed;
      codes[code] = (codes[code] ?? 0) + 1;
    }),
  );
  return codes;
}

function merge(counts) {
  const all = {};
  for (const one of counts) for (const [code, n] of Object.entries(one)) all[code] = (all[code] ?? 0) + n;
  return all;
}

const started = Date.now();
const quota = Math.ceil(frames / connections);
const LANES = 4;
const [floodCloses, slowCloses] = await Promise.all([
  Promise.all(Array.from({ length: LANES }, (_, lane) => floodWhileVerifyHangs(lane, Math.ceil(floods / LANES)))).then(merge),
  slowVerifies(slow),
  Promise.all(Array.from({ length: connections }, (_, index) => runHostileConnection(index, quota).catch((error) => problem(`connection ${index}: ${error.message}`)))),
]);
process.send({ type: 'result', ...totals, sampleProblems, floodCloses, slowCloses, elapsedMs: Date.now() - started });
setTimeout(() => process.exit(0), 200);
