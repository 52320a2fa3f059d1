// Benchmark client swarm (not a test): a child process that opens many client connections to one
// URL and measures what they receive. Started by bench/bench-support.ts with
// child_process.fork(this file, [JSON config]).
//
// config: { url, kind, count, concurrency, lifetimeMs, room?, ackDelayMs, ackGrace, acks?, countAcks?, hello? }
//   url: one URL, or an array of them to spread the clients over round robin (client i → url[i % n]).
//   kind 'rws'  plain `ws` client of a ReliableWsAdapter gateway (no subprotocol: `$ready` at once)
//        'rws1' `ws` client speaking rws.v1 (`$hello` first, ids 1, 2, 3 … per session)
//        'ws'   plain `ws` client (raw ws servers, stock Nest WsAdapter); with hello, it sends the
//               rws1 client's `$hello` on open and is connected once a `$ready` answers it
//        'sio'  socket.io-client, websocket transport only, one Manager per client
//   room: after connecting, join it (rws: `{ event: 'join', data: { room }, id }` answered by ref;
//         sio: emitWithAck('join', room)).
//
// Parent -> child:
//   { type: 'arm', round, expect, event, parse }   count `event` messages of the next round: each
//        client is complete after `expect` of them. parse: JSON-parse each frame, keep only those
//        of this round (data.r) and take the send→receipt latency from data.t (ms, wall clock
//        with sub-ms precision: performance.timeOrigin + performance.now(), as the sender).
//        Without parse every text frame counts (fan-out: nothing else is sent to the clients).
//        An rws1 client acknowledges the pushes' seq as the rws.v1 client does (cumulative
//        `$ack` per ackDelayMs, due at a point of the period drawn per client, sent with the first
//        push from then on or ackGrace of a period later); with acks: false, never. A ws client
//        with countAcks sends the same `$ack`s, the count of frames it received as their seq.
//        Answers { type: 'armed' }, later { type: 'result', … } once every client is complete.
//   { type: 'report' }   answers { type: 'result', … } at once: the counts so far (on a timeout, or
//        after the round to see what arrived past it: `received` counts every delivery of the round).
//   { type: 'rr', total, window, payloadBytes, warmup }   request/reply over the connections
//        (total split evenly, at most `window` outstanding per connection); answers 'result'.
//   { type: 'track', event, field }   from now on, record for every client the receipt time and
//        data[field] (a number) of each `event` message, in receipt order, and when the connection
//        closed (code). Answers { type: 'tracking' }.
//   { type: 'collect' }   answers one { type: 'trace', client, indices, at, closedAt, closeCode }
//        per client (at: wall-clock ms, 0.01 ms precision), then { type: 'traced', clients }.
//   { type: 'cpu' }   answers { type: 'cpu', ms }: CPU time (user + system) this process has used so far.
//   { type: 'exit' }
// Child -> parent: { type: 'ready', opened, failed, errors }, { type: 'armed' }, { type: 'result', … }.
import { WebSocket } from 'ws';

const config = JSON.parse(process.argv[2]);
const { kind, count, concurrency = 100, lifetimeMs = 120000, room, ackDelayMs, ackGrace, acks = true, countAcks = false, hello = false } = config;
const urls = [config.url].flat();

// Hard bound on this process's life, whatever happens.
setTimeout(() => process.exit(3), lifetimeMs).unref();
process.on('disconnect', () => process.exit(0));

const now = () => performance.timeOrigin + performance.now();
const send = (message) => process.send?.(message);

/** @type {Array<{ sendText(text: string): void; close(): void; emitAck?: Function; onText?: Function; onEvent?: Function }>} */
const clients = [];
const errors = [];
let failed = 0;

// ---------------------------------------------------------------- connecting

let io;
async function openOne(index) {
  const url = urls[index % urls.length];
  if (kind === 'sio') return openSocketIo(url);
  return new Promise((resolve) => {
    const ws = new WebSocket(url, kind === 'rws1' ? ['rws.v1'] : [], { perMessageDeflate: false, handshakeTimeout: 20000 });
    const client = {
      ws,
      nextId: 1,
      framesReceived: 0,
      ackPhase: Math.random(),
      sendText: (text) => ws.send(text),
      close: () => (ws.readyState === WebSocket.OPEN ? ws.close(1000) : ws.terminate()),
      onText: undefined,
    };
    let settled = false;
    const done = (ok, error) => {
      if (settled) return;
      settled = true;
      if (ok) clients.push(client);
      else {
        failed++;
        if (errors.length < 5) errors.push(String(error));
        ws.terminate();
      }
      resolve();
    };
    const sendsHello = kind === 'rws1' || hello;
    let phase = sendsHello || kind === 'rws' ? 'ready' : 'open';
    ws.on('open', () => {
      if (phase === 'open') done(true);
      if (sendsHello) ws.send('{"event":"$hello","data":{}}');
    });
    ws.on('message', (data) => {
      if (settled) {
        client.onText?.(data);
        return;
      }
      let frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return done(false, 'bad frame before ready');
      }
      if (phase === 'ready' && frame.event === '$ready') {
        if (!room) return done(true);
        phase = 'join';
        ws.send(JSON.stringify({ event: 'join', data: { room }, id: client.nextId++ }));
      } else if (phase === 'join' && frame.ref === client.nextId - 1) {
        done(true);
      } else if (frame.event === '$error') {
        done(false, `$error ${JSON.stringify(frame.data)}`);
      }
    });
    ws.on('error', (error) => done(false, error.message));
    ws.on('close', (code) => {
      if (settled) client.closed ??= { code, at: now() };
      done(false, `closed ${code}`);
    });
  });
}

async function openSocketIo(url) {
  io ??= (await import('socket.io-client')).io;
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20000 });
  try {
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    if (room) await socket.timeout(20000).emitWithAck('join', room);
    const client = { socket, close: () => socket.disconnect() };
    socket.on('disconnect', (reason) => (client.closed ??= { code: reason, at: now() }));
    clients.push(client);
  } catch (error) {
    failed++;
    if (errors.length < 5) errors.push(String(error?.message ?? error));
    socket.disconnect();
  }
}

async function openAll() {
  let next = 0;
  const worker = async () => {
    while (next < count) await openOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  send({ type: 'ready', opened: clients.length, failed, errors });
}

// ---------------------------------------------------------------- receiving rounds

let round;

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function latencySummary(samples, n) {
  const sorted = samples.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return { n, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: n ? sorted[n - 1] : NaN, mean: n ? sum / n : NaN };
}

function roundResult(complete) {
  return {
    type: 'result',
    complete,
    round: round.id,
    received: round.received,
    completedClients: round.completions.length,
    completions: round.completions,
    firstAt: round.firstAt,
    lastAt: round.lastAt,
    latency: round.parse ? latencySummary(round.latencies, Math.min(round.received, round.latencies.length)) : undefined,
  };
}

function arm({ round: id, expect, event, parse }) {
  round = {
    id,
    expect,
    parse,
    received: 0,
    completions: [],
    firstAt: 0,
    lastAt: 0,
    latencies: parse ? new Float64Array(expect * clients.length) : undefined,
    done: false,
  };
  const counts = new Uint32Array(clients.length);
  // Deliveries past a client's `expect` still count in `received` (a doubled push shows there).
  const receive = (index, at, data) => {
    if (round.id !== id) return;
    if (parse) {
      if (data?.r !== id) return;
      if (round.received < round.latencies.length) round.latencies[round.received] = at - data.t;
    }
    round.received++;
    if (round.firstAt === 0) round.firstAt = at;
    round.lastAt = at;
    if (++counts[index] === expect) {
      round.completions.push(at);
      if (!round.done && round.completions.length === clients.length) {
        round.done = true;
        send(roundResult(true));
      }
    }
  };
  clients.forEach((client, index) => {
    if (kind === 'sio') {
      client.socket.off(event);
      client.socket.on(event, (data) => receive(index, now(), data));
      return;
    }
    client.onText = parse
      ? (raw) => {
          const at = now();
          const frame = JSON.parse(raw.toString());
          if (frame.event !== event) return;
          if (kind === 'rws1' && typeof frame.seq === 'number') acknowledgeLater(client, frame.seq);
          else if (countAcks) acknowledgeLater(client, ++client.framesReceived);
          receive(index, at, frame.data);
        }
      : kind === 'rws1'
        ? (raw) => {
            const seq = trailingSeq(raw);
            if (seq !== undefined) acknowledgeLater(client, seq);
            receive(index, now(), undefined);
          }
        : countAcks
          ? () => {
              acknowledgeLater(client, ++client.framesReceived);
              receive(index, now(), undefined);
            }
          : () => receive(index, now(), undefined);
  });
  send({ type: 'armed' });
}

/**
 * What the rws.v1 client does: one cumulative `$ack` of the pushes' `seq` per ackDelayMs, due at a
 * point of the period of its own; sent with the first push from then on, else ackGrace of a period later.
 */
function acknowledgeLater(client, seq) {
  if (!acks) return;
  client.lastSeq = seq;
  const now = performance.now();
  if (client.ackDueAt === undefined) {
    const intoPeriod = (((now - client.ackPhase * ackDelayMs) % ackDelayMs) + ackDelayMs) % ackDelayMs;
    client.ackDueAt = now + ackDelayMs - intoPeriod;
    client.ackTimer = setTimeout(() => sendAck(client), client.ackDueAt - now + ackGrace * ackDelayMs);
  } else if (now >= client.ackDueAt) {
    sendAck(client);
  }
}

function sendAck(client) {
  clearTimeout(client.ackTimer);
  client.ackDueAt = undefined;
  if (client.ws.readyState === WebSocket.OPEN) client.ws.send(`{"event":"$ack","data":{"seq":${client.lastSeq}}}`);
}

/** The `seq` a push ends with (`…,"seq":42}`), read without parsing the frame. */
function trailingSeq(raw) {
  let i = raw.length - 2;
  let seq = 0;
  let scale = 1;
  for (; i >= 0 && raw[i] >= 0x30 && raw[i] <= 0x39; i--, scale *= 10) seq += (raw[i] - 0x30) * scale;
  return scale > 1 && raw[i] === 0x3a ? seq : undefined;
}

// ---------------------------------------------------------------- request / reply

async function requestReply({ total, window, payloadBytes }) {
  const pad = 'x'.repeat(payloadBytes);
  const perClient = Math.ceil(total / clients.length);
  const latencies = new Float64Array(perClient * clients.length);
  let n = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(
      (client) =>
        new Promise((resolve) => {
          let sent = 0;
          let answered = 0;
          const pending = new Map();
          const onAnswer = (id) => {
            const t = pending.get(id);
            if (t === undefined) return;
            pending.delete(id);
            latencies[n++] = performance.now() - t;
            if (++answered === perClient) resolve();
            else if (sent < perClient) sendOne();
          };
          const sendOne = () => {
            sent++;
            if (kind === 'sio') {
              const id = sent;
              pending.set(id, performance.now());
              client.socket.emit('echo', { p: pad }, () => onAnswer(id));
              return;
            }
            const id = client.nextId++;
            pending.set(id, performance.now());
            // Stock Nest WsAdapter replies carry no correlation: the id travels in the data.
            client.sendText(kind === 'ws' ? `{"event":"echo","data":{"id":${id},"p":"${pad}"}}` : `{"event":"echo","data":{"p":"${pad}"},"id":${id}}`);
          };
          if (kind !== 'sio') {
            client.onText = (raw) => {
              const frame = JSON.parse(raw.toString());
              if (frame.event === '$error') {
                if (errors.length < 5) errors.push(JSON.stringify(frame.data));
              }
              onAnswer(frame.ref ?? frame.data?.id ?? frame.data?.ref);
            };
          }
          for (let i = 0; i < Math.min(window, perClient); i++) sendOne();
        }),
    ),
  );
  const elapsedMs = performance.now() - started;
  send({ type: 'result', complete: true, elapsedMs, messages: n, latency: latencySummary(latencies, n), errors });
}

// ---------------------------------------------------------------- tracking every message

let traces;

function track({ event, field }) {
  traces = clients.map(() => ({ indices: [], at: [] }));
  clients.forEach((client, index) => {
    const trace = traces[index];
    const record = (at, data) => {
      trace.indices.push(data?.[field]);
      trace.at.push(Math.round(at * 100) / 100);
    };
    if (kind === 'sio') {
      client.socket.off(event);
      client.socket.on(event, (data) => record(now(), data));
      return;
    }
    client.onText = (raw) => {
      const at = now();
      const frame = JSON.parse(raw.toString());
      if (frame.event === event) record(at, frame.data);
    };
  });
  send({ type: 'tracking' });
}

function collect() {
  clients.forEach((client, index) => {
    const trace = traces?.[index] ?? { indices: [], at: [] };
    send({ type: 'trace', client: index, indices: trace.indices, at: trace.at, closedAt: client.closed?.at, closeCode: client.closed?.code });
  });
  send({ type: 'traced', clients: clients.length });
}

function reportCpu() {
  const { user, system } = process.cpuUsage();
  send({ type: 'cpu', ms: (user + system) / 1000 });
}

// ---------------------------------------------------------------- control

process.on('message', (message) => {
  if (message?.type === 'arm') arm(message);
  else if (message?.type === 'report') send(round ? roundResult(round.done) : { type: 'result', complete: false });
  else if (message?.type === 'rr') void requestReply(message);
  else if (message?.type === 'track') track(message);
  else if (message?.type === 'collect') collect();
  else if (message?.type === 'cpu') reportCpu();
  else if (message?.type === 'exit') {
    // A normal close (1000) ends a ReliableWs session for good: nothing is kept for a resume.
    for (const client of clients) client.close();
    setTimeout(() => process.exit(0), 300);
  }
});

void openAll();
