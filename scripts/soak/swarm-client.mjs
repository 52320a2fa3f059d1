// Connections of the soak's steady phase, in a child process: `rws.v1` sessions that stay idle
// (they only answer the server's heartbeat pings) or are active (join the room "active", check
// that its pushes arrive exactly once and in order, acknowledge them, send requests and check
// every answer, and churn: drop and resume, or close and start over, at random).
// Started with child_process.fork(this file, [JSON config]).
//
// config: { url, mode: 'idle' | 'active', count, firstUser, addresses, concurrency, seed,
//           requestEveryMs, churnMeanMs, lifetimeMs }
// Child -> parent: { type: 'opened', ready, failed, errors } once every first connection settled.
// Parent -> child: { type: 'report' } (answered { type: 'report', stats }),
//                  { type: 'stop' } (closes every connection with 1000; answered { type: 'stopped', stats }).
import { WebSocket } from 'ws';
import { seededRandom } from './hostile-frames.mjs';

const config = JSON.parse(process.argv[2]);
const { url, mode, count, firstUser, addresses, concurrency = 200, seed = 1, requestEveryMs = 2000, churnMeanMs = 60000 } = config;

setTimeout(() => process.exit(3), config.lifetimeMs ?? 3600000).unref();
process.on('disconnect', () => process.exit(0));

const random = seededRandom(seed);
/** Answers older than this count as lost. */
const ANSWER_TIMEOUT_MS = 30000;
const RECONNECT_DELAY_MS = 2000;
const ACK_EVERY = 5;

const stats = {
  /** Sessions started: the first of each client, and new ones after a close with 1000. */
  newSessions: 0,
  resumed: 0,
  /** Resumes answered with a new session and `missed: true`. */
  missed: 0,
  /** Resumes answered with a new session without `missed: true`: a silent gap. */
  silentNewSessions: 0,
  unexpectedCloses: {},
  pings: 0,
  pushes: 0,
  seqGaps: 0,
  seqDuplicates: 0,
  requests: 0,
  answered: 0,
  wrongAnswers: 0,
  repeatedAnswers: 0,
  lostAnswers: 0,
  acks: 0,
  ackAnswers: 0,
  drops: 0,
  cleanReconnects: 0,
};
let stopping = false;

/** One client: a session kept across connections, as a real rws.v1 client would keep it. */
class SoakClient {
  constructor(index) {
    this.index = index;
    this.localAddress = addresses[index % addresses.length];
    this.session = undefined; // { id, resumeToken }
    this.lastSeq = 0;
    this.nextId = 1;
    this.pending = new Map(); // id -> { data, sentAt, event }
    this.answeredIds = new Set();
    this.ws = undefined;
    this.live = false;
    this.timers = new Set();
  }

  /** Connects (resuming the session when there is one); resolves on `$ready` or a failure. */
  connect() {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, ['rws.v1'], { localAddress: this.localAddress, perMessageDeflate: false, handshakeTimeout: 30000 });
      this.ws = ws;
      let settled = false;
      const settle = (error) => {
        if (settled) return;
        settled = true;
        resolve(error);
      };
      ws.on('open', () => ws.send(JSON.stringify({ event: '$hello', data: this.helloData() })));
      ws.on('ping', () => stats.pings++);
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString());
        if (frame.event === '$ready') {
          this.onReady(frame.data);
          settle();
        } else this.onFrame(frame);
      });
      ws.on('error', (error) => settle(error.message));
      ws.on('close', (code) => {
        settle(`closed ${code} before $ready`);
        this.onClose(ws, code);
      });
    });
  }

  helloData() {
    const data = { token: `user-${firstUser + this.index}` };
    if (this.session) data.resume = { sessionId: this.session.id, resumeToken: this.session.resumeToken, lastSeq: this.lastSeq };
    return data;
  }

  onReady({ sessionId, resumeToken, resumed, missed }) {
    this.live = true;
    if (resumed) stats.resumed++;
    else {
      if (!this.session) stats.newSessions++;
      else if (missed) stats.missed++;
      else stats.silentNewSessions++;
      this.lastSeq = 0;
      this.nextId = 1;
      stats.lostAnswers += this.pending.size; // a new session: the old one's requests are gone with it
      this.pending.clear();
      this.answeredIds.clear();
    }
    this.session = { id: sessionId, resumeToken };
    if (mode !== 'active') return;
    if (resumed) this.resendPending();
    else this.request('join', null);
    this.schedule(() => this.requestLoop(), random() * requestEveryMs);
    this.schedule(() => this.churn(), -Math.log(1 - random()) * churnMeanMs);
  }

  onFrame(frame) {
    if (typeof frame.seq === 'number') return this.onPush(frame.seq);
    const ref = frame.ref ?? frame.data?.ref;
    if (frame.event === '$ack' && typeof ref === 'string' && ref.startsWith('ack-')) {
      stats.ackAnswers++;
      return;
    }
    if (ref === undefined) return;
    const request = this.pending.get(ref);
    if (!request) {
      if (this.answeredIds.has(ref)) stats.repeatedAnswers++;
      else stats.wrongAnswers++;
      return;
    }
    this.pending.delete(ref);
    this.answeredIds.add(ref);
    stats.answered++;
    const expected = request.event === 'join' ? { joined: 'active' } : request.data;
    if (frame.event !== request.event || JSON.stringify(frame.data) !== JSON.stringify(expected)) stats.wrongAnswers++;
  }

  onPush(seq) {
    stats.pushes++;
    if (seq <= this.lastSeq) stats.seqDuplicates++;
    else if (seq !== this.lastSeq + 1) stats.seqGaps++;
    this.lastSeq = Math.max(this.lastSeq, seq);
    if (seq % ACK_EVERY === 0) {
      stats.acks++;
      this.send({ event: '$ack', data: { seq }, id: `ack-${seq}` });
    }
  }

  request(event, data) {
    const id = this.nextId++;
    this.pending.set(id, { event, data, sentAt: Date.now() });
    stats.requests++;
    this.send({ event, data, id });
  }

  /** Requests the dropped connection may not have answered go again with the same ids (answered once, by the server's cache). */
  resendPending() {
    for (const [id, { event, data }] of this.pending) this.send({ event, data, id });
  }

  requestLoop() {
    if (!this.live) return;
    this.request('echo', { client: this.index, at: Date.now() });
    this.schedule(() => this.requestLoop(), requestEveryMs * (0.5 + random()));
  }

  churn() {
    if (!this.live || stopping) return;
    this.live = false;
    this.clearTimers();
    // Only a client with nothing in flight ends its session: its requests would go with it.
    if (random() < 0.7 || this.pending.size > 0) {
      stats.drops++;
      this.ws.terminate(); // the session stays detached: resume it
    } else {
      stats.cleanReconnects++;
      this.session = undefined; // a close with 1000 ends the session
      this.ws.close(1000);
    }
  }

  onClose(ws, code) {
    if (ws !== this.ws) return;
    const expected = !this.live || stopping;
    this.live = false;
    this.clearTimers();
    if (stopping) return;
    if (!expected) stats.unexpectedCloses[code] = (stats.unexpectedCloses[code] ?? 0) + 1;
    setTimeout(() => {
      if (!stopping) void this.connect();
    }, random() * RECONNECT_DELAY_MS);
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  schedule(callback, delayMs) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      callback();
    }, delayMs);
    this.timers.add(timer);
  }

  clearTimers() {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Requests that stayed unanswered for too long. */
  overdue(now) {
    let n = 0;
    for (const { sentAt } of this.pending.values()) if (now - sentAt > ANSWER_TIMEOUT_MS) n++;
    return n;
  }

  stop() {
    this.clearTimers();
    if (!this.ws || this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', resolve);
      this.ws.close(1000);
    });
  }
}

const clients = Array.from({ length: count }, (_, index) => new SoakClient(index));

function report() {
  const now = Date.now();
  const open = clients.filter((c) => c.live).length;
  const overdue = clients.reduce((sum, c) => sum + c.overdue(now), 0);
  return { ...stats, open, overdue };
}

async function openAll() {
  const errors = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < clients.length) {
      const error = await clients[next++].connect();
      if (error !== undefined) {
        failed++;
        if (errors.length < 5) errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, clients.length) }, worker));
  process.send({ type: 'opened', ready: clients.length - failed, failed, errors });
}

process.on('message', async (message) => {
  if (message?.type === 'report') process.send({ type: 'report', stats: report() });
  if (message?.type === 'stop') {
    stopping = true;
    const closing = Promise.all(clients.map((c) => c.stop()));
    await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 20000))]);
    process.send({ type: 'stopped', stats: report() });
    setTimeout(() => process.exit(0), 200);
  }
});

void openAll();
