/**
 * Resume and the cost of keeping a replay buffer (a benchmark, not a test).
 *
 * 1. Resume time for 1,000 missed pushes: a client (`ws`, `rws.v1`) drops, the server pushes
 *    RESUME_MISSED messages to its session, the client reconnects with `$hello.resume`; measured
 *    from opening the new socket to `$ready` and to the last replayed push. Memory store (one
 *    app), and across instances through Redis (two apps; every resume lands on the other one, so
 *    each round is a handover: prepare / commit / snapshot through Redis). A fresh connection
 *    (no resume) is the baseline.
 * 2. Cost per push of the buffer: `Session.push` with a live no-op transport, ns per push, with
 *    sessions on (buffer 1000; acked every 100 pushes, or never acked so the buffer stays full and
 *    evicts) versus `resume: false` (one shared frame, nothing kept) and a sequenced session
 *    without buffer (a plain client: its own frame per push, nothing kept). With Redis the buffer is the same in-memory one: the handover
 *    design writes nothing to Redis per push (checked below through Redis INFO commandstats).
 * 3. End to end: pushes/s through `BroadcastService.toRoom` to FANOUT_SESSIONS sessions (clients
 *    in this process, acking every 100 pushes), memory and Redis transport, resume on vs off.
 *
 * Run with `npm run bench` (or `node dist-bench/bench/run-all.js resume`).
 */
import 'reflect-metadata';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { BroadcastService, ReliableGateway, SessionRegistry, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { preparePush } from '../lib/protocol/index.js';
import { Session } from '../lib/session/index.js';
import {
  fmtInt,
  fmtMs,
  percentile,
  printTable,
  REDIS_URL,
  sleep,
  startReliableApp,
  uniquePrefix,
  waitUntil,
  within,
  type BenchApp,
} from './bench-support.js';

const RESUME_MISSED = 1000;
const RESUME_ROUNDS = 30;
const MICRO_PUSHES = 1_000_000;
const MICRO_REPEATS = 5;
const FANOUT_SESSIONS = 100;
const FANOUT_BROADCASTS = 10_000;
const FANOUT_BATCH = 50;
const ACK_EVERY = 100;
const PAYLOAD = { text: 'x'.repeat(80), n: 0 };
const ROOM = 'bench';
const STEP_TIMEOUT_MS = 15_000;

@ReliableGateway({ path: '/ws' })
class ResumeBenchGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() room: string, @ConnectedSocket() socket: ReliableSocket): Promise<void> {
    await this.broadcast.join(socket.id, room);
  }
}

const BASE: ReliableWsOptions = { allowedOrigins: '*', rateLimit: false, shutdown: { timeoutMs: 1000 } };

// ---------------------------------------------------------------- a minimal rws.v1 client

interface Ready {
  sessionId: string;
  resumeToken: string;
  resumed: boolean;
  missed: boolean;
}

/** A raw `rws.v1` connection that counts `tick` pushes and acks every ACK_EVERY-th seq. */
class RawClient {
  readonly ws: WebSocket;
  pushes = 0;
  lastSeq = 0;
  ready: Promise<Ready>;
  readyAt = 0;
  private target = Infinity;
  private reached: (() => void) | undefined;

  constructor(url: string, hello: Record<string, unknown>, private readonly ack = true) {
    this.ws = new WebSocket(url, 'rws.v1');
    this.ws.on('error', () => undefined);
    this.ready = new Promise((resolve, reject) => {
      this.ws.once('error', reject);
      this.ws.once('open', () => this.ws.send(JSON.stringify({ event: '$hello', data: hello })));
      this.ws.on('message', (raw) => {
        const frame = JSON.parse(raw.toString()) as { event: string; data: any; seq?: number };
        if (frame.event === '$ready') {
          this.readyAt = performance.now();
          resolve(frame.data as Ready);
        } else if (frame.event === 'tick') {
          this.pushes++;
          if (frame.seq !== undefined) {
            this.lastSeq = frame.seq;
            if (this.ack && frame.seq % ACK_EVERY === 0) this.ws.send(JSON.stringify({ event: '$ack', data: { seq: frame.seq } }));
          }
          if (this.pushes >= this.target) this.reached?.();
        }
      });
    });
  }

  /** Resolves once `count` pushes arrived on this connection. */
  receive(count: number): Promise<void> {
    if (this.pushes >= count) return Promise.resolve();
    this.target = count;
    return new Promise((resolve) => (this.reached = resolve));
  }

  request(event: string, data: unknown, id: number): Promise<void> {
    return new Promise((resolve) => {
      const onMessage = (raw: Buffer): void => {
        const frame = JSON.parse(raw.toString()) as { ref?: number; data?: { ref?: number } };
        if (frame.ref === id || frame.data?.ref === id) {
          this.ws.off('message', onMessage);
          resolve();
        }
      };
      this.ws.on('message', onMessage);
      this.ws.send(JSON.stringify({ event, data, id }));
    });
  }

  /** Drops the connection without a close frame and waits for it to be gone. */
  async drop(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.terminate();
    await closed;
  }
}

const wsUrl = (app: BenchApp): string => `ws://127.0.0.1:${app.port}/ws`;

// ---------------------------------------------------------------- 1. resume time

interface ResumeRow {
  mode: string;
  toReadyP50: number;
  toReadyP95: number;
  toLastP50: number;
  toLastP95: number;
}

async function resumeTimes(mode: 'memory' | 'redis'): Promise<ResumeRow> {
  const options: ReliableWsOptions =
    mode === 'memory' ? BASE : { ...BASE, broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('resume') } };
  const apps = mode === 'memory' ? [await startReliableApp(options, [ResumeBenchGateway])] : [
    await startReliableApp(options, [ResumeBenchGateway]),
    await startReliableApp(options, [ResumeBenchGateway]),
  ];
  const toReady: number[] = [];
  const toLast: number[] = [];
  try {
    let owner = 0;
    let client = new RawClient(wsUrl(apps[owner]), {}, false);
    const ready = await within(client.ready, STEP_TIMEOUT_MS, 'the first $ready');
    for (let round = 0; round <= RESUME_ROUNDS; round++) {
      await client.drop();
      const broadcast = apps[owner].app.get(BroadcastService);
      const registry = apps[owner].app.get(SessionRegistry);
      const target = client.lastSeq + RESUME_MISSED;
      for (let i = 0; i < RESUME_MISSED; i++) void broadcast.toClient(ready.sessionId, 'tick', { ...PAYLOAD, n: i });
      await waitUntil(() => registry.getSession(ready.sessionId)?.lastSeq === target, STEP_TIMEOUT_MS, 'pushes to the detached session');
      owner = (owner + 1) % apps.length; // with Redis: resume on the other instance
      const startedAt = performance.now();
      client = new RawClient(wsUrl(apps[owner]), {
        resume: { sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: target - RESUME_MISSED },
      }, false);
      const resumed = await within(client.ready, STEP_TIMEOUT_MS, 'the resumed $ready');
      if (!resumed.resumed || resumed.missed) throw new Error(`resume failed: ${JSON.stringify(resumed)}`);
      await within(client.receive(RESUME_MISSED), STEP_TIMEOUT_MS, 'the replay');
      const doneAt = performance.now();
      if (client.lastSeq !== target) throw new Error(`replay ended at seq ${client.lastSeq}, expected ${target}`);
      if (round === 0) continue; // warm-up
      toReady.push(client.readyAt - startedAt);
      toLast.push(doneAt - startedAt);
    }
    await client.drop();
  } finally {
    for (const app of apps) await app.close();
  }
  toReady.sort((x, y) => x - y);
  toLast.sort((x, y) => x - y);
  return {
    mode: mode === 'memory' ? 'memory store, same instance' : 'Redis, handover to the other instance',
    toReadyP50: percentile(toReady, 50),
    toReadyP95: percentile(toReady, 95),
    toLastP50: percentile(toLast, 50),
    toLastP95: percentile(toLast, 95),
  };
}

/** Baseline: a fresh connection to `$ready`, no resume. */
async function freshConnectTimes(): Promise<number[]> {
  const app = await startReliableApp(BASE, [ResumeBenchGateway]);
  const times: number[] = [];
  try {
    for (let round = 0; round <= RESUME_ROUNDS; round++) {
      const startedAt = performance.now();
      const client = new RawClient(wsUrl(app), {}, false);
      await within(client.ready, STEP_TIMEOUT_MS, '$ready');
      if (round > 0) times.push(client.readyAt - startedAt);
      client.ws.close(1000);
    }
  } finally {
    await app.close();
  }
  return times.sort((x, y) => x - y);
}

// ---------------------------------------------------------------- 2. Session.push cost

interface PushCostRow {
  variant: string;
  nsPerPush: number;
}

function sessionPushCost(): PushCostRow[] {
  const push = preparePush('tick', JSON.stringify(PAYLOAD), 'bench:1');
  let sink = 0;
  const transport = {
    deliver: (delivered: typeof push, seq: number | undefined) => void (sink += delivered.frame(seq).length),
    write: (frame: string) => void (sink += frame.length),
    close: () => undefined,
    terminate: () => undefined,
  };
  const variants: Array<{ variant: string; make: () => Session; ackEvery: number }> = [
    { variant: 'resume: false (no seq, no buffer)', make: () => new Session(false, 0), ackEvery: 0 },
    { variant: 'seq, no buffer (a plain client)', make: () => new Session(true, 0), ackEvery: 0 },
    { variant: `buffer 1000, acked every ${ACK_EVERY} (memory or Redis)`, make: () => new Session(true, 1000), ackEvery: ACK_EVERY },
    { variant: 'buffer 1000, never acked (full, evicting)', make: () => new Session(true, 1000), ackEvery: 0 },
  ];
  const rows: PushCostRow[] = [];
  for (const { variant, make, ackEvery } of variants) {
    const samples: number[] = [];
    for (let repeat = 0; repeat < MICRO_REPEATS; repeat++) {
      const session = make();
      session.attach(transport);
      const startedAt = process.hrtime.bigint();
      for (let i = 1; i <= MICRO_PUSHES; i++) {
        session.push(push);
        if (ackEvery !== 0 && i % ackEvery === 0) session.acknowledge(session.lastSeq);
      }
      samples.push(Number(process.hrtime.bigint() - startedAt) / MICRO_PUSHES);
    }
    samples.sort((x, y) => x - y);
    rows.push({ variant, nsPerPush: percentile(samples, 50) });
  }
  if (sink === 0) console.log(''); // keep the writes observable
  return rows;
}

// ---------------------------------------------------------------- 3. end-to-end fan-out

interface FanoutRow {
  config: string;
  broadcastsPerS: number;
  deliveriesPerS: number;
  redisWrites?: string;
}

async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls.set(match[1], Number(match[2]));
  return calls;
}

async function fanout(transport: 'memory' | 'redis', resume: boolean, admin: Redis | undefined): Promise<FanoutRow> {
  const options: ReliableWsOptions = {
    ...BASE,
    ...(resume ? {} : { resume: false }),
    ...(transport === 'redis' ? { broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('resume-fanout') } } : {}),
  };
  const app = await startReliableApp(options, [ResumeBenchGateway]);
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < FANOUT_SESSIONS; i++) clients.push(new RawClient(wsUrl(app), {}, resume));
    await within(Promise.all(clients.map((client) => client.ready)), STEP_TIMEOUT_MS, 'clients ready');
    await within(Promise.all(clients.map((client) => client.request('join', ROOM, 1))), STEP_TIMEOUT_MS, 'joins');
    const broadcast = app.app.get(BroadcastService);
    const send = async (count: number): Promise<void> => {
      for (let sent = 0; sent < count; ) {
        const batch: Array<Promise<void>> = [];
        for (let k = 0; k < FANOUT_BATCH && sent < count; k++, sent++) batch.push(broadcast.toRoom(ROOM, 'tick', { ...PAYLOAD, n: sent }));
        await Promise.all(batch);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    // warm-up
    await send(300);
    await within(Promise.all(clients.map((client) => client.receive(300))), STEP_TIMEOUT_MS, 'warm-up');
    const before = admin ? await commandCalls(admin) : undefined;
    const startedAt = performance.now();
    await send(FANOUT_BROADCASTS);
    await within(Promise.all(clients.map((client) => client.receive(300 + FANOUT_BROADCASTS))), 60_000, 'all deliveries');
    const seconds = (performance.now() - startedAt) / 1000;
    let redisWrites: string | undefined;
    if (admin && before) {
      const after = await commandCalls(admin);
      const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
      const writes = ['set', 'getdel', 'rpush', 'lpush', 'xadd', 'hset', 'zadd'].reduce((sum, name) => sum + delta(name), 0);
      redisWrites = `${(delta('publish') / FANOUT_BROADCASTS).toFixed(2)} PUBLISH, ${(writes / FANOUT_BROADCASTS).toFixed(3)} writes`;
    }
    return {
      config: `${transport}, ${resume ? 'resume on (buffer 1000)' : 'resume: false'}`,
      broadcastsPerS: FANOUT_BROADCASTS / seconds,
      deliveriesPerS: (FANOUT_BROADCASTS * FANOUT_SESSIONS) / seconds,
      redisWrites,
    };
  } finally {
    for (const client of clients) client.ws.terminate();
    await sleep(50);
    await app.close();
  }
}

// ---------------------------------------------------------------- run

export interface ResumeBenchResult {
  resume: ResumeRow[];
  freshConnectP50: number;
  pushCost: PushCostRow[];
  fanout: FanoutRow[];
}

export async function run(): Promise<ResumeBenchResult> {
  const startedAt = Date.now();
  console.log(`\n## resume: ${RESUME_MISSED} missed pushes, and the cost of the replay buffer`);

  const fresh = await freshConnectTimes();
  const resume = [await resumeTimes('memory'), await resumeTimes('redis')];
  console.log(`\nResume with ${RESUME_MISSED} missed pushes (~${JSON.stringify(PAYLOAD).length} B payload), ${RESUME_ROUNDS} rounds, ms from opening the socket:`);
  printTable(
    ['mode', '$ready p50', '$ready p95', 'last replayed p50', 'last replayed p95'],
    [
      ['fresh connection, no resume (baseline)', fmtMs(percentile(fresh, 50)), fmtMs(percentile(fresh, 95)), '-', '-'],
      ...resume.map((row) => [row.mode, fmtMs(row.toReadyP50), fmtMs(row.toReadyP95), fmtMs(row.toLastP50), fmtMs(row.toLastP95)]),
    ],
  );

  const pushCost = sessionPushCost();
  const base = pushCost[0].nsPerPush;
  console.log(`\nSession.push with a live no-op transport, ns per push (median of ${MICRO_REPEATS} × ${fmtInt(MICRO_PUSHES)}):`);
  printTable(
    ['variant', 'ns/push', 'vs resume: false'],
    pushCost.map((row) => [row.variant, row.nsPerPush.toFixed(1), `${row.nsPerPush - base >= 0 ? '+' : ''}${(row.nsPerPush - base).toFixed(1)} ns`]),
  );

  let admin: Redis | undefined;
  try {
    admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    await admin.connect();
  } catch {
    admin = undefined;
  }
  const fanoutRows: FanoutRow[] = [];
  try {
    for (const transport of ['memory', 'redis'] as const) {
      for (const resumeOn of [false, true]) fanoutRows.push(await fanout(transport, resumeOn, transport === 'redis' ? admin : undefined));
    }
  } finally {
    admin?.disconnect();
  }
  console.log(`\nBroadcastService.toRoom to ${FANOUT_SESSIONS} sessions (clients in this process), ${fmtInt(FANOUT_BROADCASTS)} broadcasts:`);
  printTable(
    ['config', 'broadcasts/s', 'deliveries/s', 'Redis per broadcast (INFO commandstats, server-wide)'],
    fanoutRows.map((row) => [row.config, fmtInt(row.broadcastsPerS), fmtInt(row.deliveriesPerS), row.redisWrites ?? '-']),
  );
  console.log(`\nresume bench done in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  return { resume, freshConnectP50: percentile(fresh, 50), pushCost, fanout: fanoutRows };
}
