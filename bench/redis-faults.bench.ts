/**
 * Subscriber kills during cross-instance broadcast (a benchmark, not a test).
 *
 * A throwaway redis-server of its own (never the shared one: it is sent CLIENT KILL), two server
 * instances A and B on it, CLIENTS clients connected to B in one room (one child process). A
 * broadcasts a numbered message to the room every GAP_MS while the bench issues KILLS
 * `CLIENT KILL TYPE pubsub` at regular intervals (each cuts the subscriber connection of both
 * instances; ioredis reconnects and resubscribes). Compared in the same run:
 *   - nestjs-reliable-ws: two Nest apps with ReliableWsModule `broadcast: { redis }` (defaults),
 *     A calls `BroadcastService.toRoom`; a broadcast is resolved when its promise is;
 *   - Socket.IO 4.8 with @socket.io/redis-adapter: `io.to(room).emit` on A (no promise: a
 *     broadcast counts as resolved once emit returned).
 * Counted per client: received, lost (resolved but never received), duplicated, out of order,
 * connections closed; and, for each kill, how long until the client got a broadcast sent after
 * the kill ("back"), until it held every resolved broadcast sent in the WINDOW_MS before the kill
 * ("pre-kill": what was in flight), and until it held every one from then up to that first
 * broadcast after the kill ("whole": the gap the kill opened is filled; never where one of them
 * is lost). The clients are those of bench/swarm-client.mjs, in one child process; the servers
 * run in this process, as in broadcast-redis.
 */
import 'reflect-metadata';
import { Module, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { BroadcastService, ReliableGateway, ReliableWsAdapter, ReliableWsModule, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import {
  fmtInt,
  fmtMs,
  percentile,
  printTable,
  runPinned,
  sleep,
  systemSelected,
  uniquePrefix,
  wallNow,
  within,
  type SwarmKind,
} from './bench-support.js';
import { startSocketIoRedisGroup } from './socket-io-redis.js';
import { BenchChild, plainScript, type ChildMessage } from './child-process.js';

const CLIENTS = Number(process.env.BENCH_FAULT_CLIENTS ?? 200);
const GAP_MS = 5;
const KILLS = 10;
/** The first kill comes after LEAD_MS of broadcasting, then one every KILL_EVERY_MS; broadcasting goes on TAIL_MS after the last. */
const LEAD_MS = 500;
const KILL_EVERY_MS = 500;
const TAIL_MS = 1000;
/** How long after the last broadcast the clients may still receive (recovery in progress). */
const DRAIN_MS = 3000;
/** A kill's window starts this long before it: what was in flight then, and everything after. */
const WINDOW_MS = KILL_EVERY_MS / 2;
const PAD = 'x'.repeat(100);
const ROOM = 'fault-room';
const EVENT = 'tick';

interface Tick {
  i: number;
  t: number;
  pad: string;
}

interface System {
  name: string;
  kind: SwarmKind;
  /** URL of instance B, where the clients are. */
  url: string;
  /** Instance A broadcasts one message to the room. */
  send(tick: Tick): Promise<void> | void;
  close(): Promise<void>;
}

@ReliableGateway({ path: '/ws' })
class FaultRoomGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() data: { room: string }, @ConnectedSocket() socket: ReliableSocket): Promise<{ ok: true }> {
    await this.broadcast.join(socket.id, data.room);
    return { ok: true };
  }
}

/**
 * Counts the warnings of the instances by text instead of printing each (every kill logs one per
 * instance); errors are printed at once.
 */
class CountingLogger implements LoggerService {
  readonly warnings = new Map<string, number>();

  log(): void {}

  error(message: unknown, ...rest: unknown[]): void {
    console.error('  [error]', message, ...rest);
  }

  warn(message: unknown): void {
    const text = String(message);
    this.warnings.set(text, (this.warnings.get(text) ?? 0) + 1);
  }

  /** The warnings so far, as `count × text`, and forgets them. */
  drain(): string[] {
    const lines = [...this.warnings].map(([text, count]) => `${count} × ${text}`);
    this.warnings.clear();
    return lines;
  }
}

const logger = new CountingLogger();

/** One instance: a Nest app with ReliableWsModule and the room gateway, on 127.0.0.1:0, its warnings counted. */
async function startInstance(options: ReliableWsOptions): Promise<{ app: INestApplication; port: number; close(): Promise<void> }> {
  @Module({ imports: [ReliableWsModule.forRoot(options)], providers: [FaultRoomGateway] })
  class FaultModule {}
  const app = await NestFactory.create(FaultModule, { logger });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, port, close: () => within(app.close(), 20000, 'app.close()') };
}

async function reliableSystem(redisUrl: string): Promise<System> {
  const options = { broadcast: { redis: redisUrl, channelPrefix: uniquePrefix('rws-faults') } };
  const a = await startInstance(options);
  const b = await startInstance(options).catch(async (error: unknown) => {
    await a.close();
    throw error;
  });
  const broadcast = a.app.get(BroadcastService);
  return {
    name: 'nestjs-reliable-ws',
    kind: 'rws',
    url: `ws://127.0.0.1:${b.port}/ws`,
    send: (tick) => broadcast.toRoom(ROOM, EVENT, tick),
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

async function socketIoSystem(redisUrl: string): Promise<System> {
  const group = await startSocketIoRedisGroup(redisUrl, uniquePrefix('sio-faults'), { quietErrors: true });
  return {
    name: 'Socket.IO + @socket.io/redis-adapter',
    kind: 'sio',
    url: `http://127.0.0.1:${group.receiverPorts[0]}`,
    send: (tick) => group.emitToRoom(ROOM, EVENT, tick),
    close: () => group.close(),
  };
}

// ---------------------------------------------------------------- a throwaway redis-server

/** A port nothing listens on right now (checked by binding it). */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found');
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 300);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** A redis-server on a free port of 127.0.0.1, without persistence, owned by this bench. */
class ThrowawayRedis {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<ThrowawayRedis> {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: 'ignore',
    });
    let spawnError: Error | undefined;
    child.on('error', (error) => (spawnError = error)); // e.g. no redis-server on the PATH
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    const server = new ThrowawayRedis(child, port);
    const deadline = Date.now() + 10000;
    while (!(await answersPing(port))) {
      if (spawnError || child.exitCode !== null || Date.now() > deadline) {
        await server.stop();
        throw new Error(`redis-server on port ${port} did not start${spawnError ? `: ${spawnError.message}` : ''}`);
      }
      await sleep(50);
    }
    return server;
  }

  async stop(): Promise<void> {
    if (this.child.pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await within(exited, 5000, 'redis-server to exit').catch(() => undefined);
  }
}

// ---------------------------------------------------------------- clients that record every message

/** Every message one client got while tracked: data[field] and wall-clock receipt time, in receipt order. */
interface ClientTrace extends ChildMessage {
  type: 'trace';
  client: number;
  indices: number[];
  at: number[];
  /** When and how its connection closed (a close code, or Socket.IO's reason), if it did. */
  closedAt?: number;
  closeCode?: number | string;
}

/** A client process (bench/swarm-client.mjs) whose clients record every message they get. */
class TracedClients {
  private constructor(private readonly child: BenchChild) {}

  /** Opens `count` clients (joined to `room`) in a child process; throws if any failed. */
  static async open(config: { url: string; kind: SwarmKind; count: number; room: string }): Promise<TracedClients> {
    const args = [JSON.stringify({ concurrency: 50, lifetimeMs: 240000, ...config })];
    const child = new BenchChild(`${config.kind} clients`, plainScript('swarm-client.mjs'), { args, role: 'client' });
    try {
      const ready = await child.next<ChildMessage & { opened: number; failed: number; errors: string[] }>('ready', 60000);
      if (ready.failed > 0) throw new Error(`${ready.failed} of ${config.count} connections failed: ${ready.errors.join('; ')}`);
    } catch (error) {
      await child.stop();
      throw error;
    }
    return new TracedClients(child);
  }

  /** From now on, every client records each `event` message (its data[field] and receipt time). */
  async track(event: string, field: string): Promise<void> {
    this.child.send({ type: 'track', event, field });
    await this.child.next('tracking', 10000);
  }

  /** What each client recorded since `track`, and whether its connection closed. */
  async collect(): Promise<ClientTrace[]> {
    this.child.send({ type: 'collect' });
    const { clients } = await this.child.next<ChildMessage & { clients: number }>('traced', 60000);
    const traces: ClientTrace[] = [];
    for (let i = 0; i < clients; i++) traces.push(await this.child.next<ClientTrace>('trace', 5000));
    return traces;
  }

  stop(): Promise<void> {
    return this.child.stop(5000);
  }
}

// ---------------------------------------------------------------- one system under kills

interface Kill {
  at: number;
  /** Connections the kill closed (both instances' subscribers: 2). */
  killed: number;
}

interface Run {
  name: string;
  /** Wall-clock time each broadcast was handed to the library. */
  sentAt: number[];
  resolved: boolean[];
  rejected: number;
  kills: Kill[];
  traces: ClientTrace[];
}

async function runUnderKills(system: System, admin: Redis): Promise<Run> {
  const swarm = await TracedClients.open({ url: system.url, kind: system.kind, count: CLIENTS, room: ROOM });
  try {
    await swarm.track(EVENT, 'i');
    const sentAt: number[] = [];
    const resolved: boolean[] = [];
    const pending: Array<Promise<void>> = [];
    let rejected = 0;
    const kills: Kill[] = [];
    const start = wallNow();
    const endAt = start + LEAD_MS + (KILLS - 1) * KILL_EVERY_MS + TAIL_MS;

    const sender = (async () => {
      for (let i = 0; wallNow() < endAt; i++) {
        sentAt[i] = wallNow();
        resolved[i] = false;
        pending.push(
          Promise.resolve(system.send({ i, t: sentAt[i], pad: PAD })).then(
            () => void (resolved[i] = true),
            () => void rejected++,
          ),
        );
        await sleep(GAP_MS);
      }
    })();
    const killer = (async () => {
      for (let k = 0; k < KILLS; k++) {
        const due = start + LEAD_MS + k * KILL_EVERY_MS;
        await sleep(Math.max(0, due - wallNow()));
        const at = wallNow();
        const killed = Number(await admin.client('KILL', 'TYPE', 'pubsub'));
        kills.push({ at, killed });
      }
    })();
    await Promise.all([sender, killer]);
    await within(Promise.all(pending), 30000, 'the broadcasts to settle');
    await sleep(DRAIN_MS);
    const traces = await swarm.collect();
    return { name: system.name, sentAt, resolved, rejected, kills, traces };
  } finally {
    await swarm.stop();
  }
}

// ---------------------------------------------------------------- analysis

interface Summary {
  name: string;
  sent: number;
  resolved: number;
  rejected: number;
  killed: number;
  clients: number;
  received: number;
  lost: number;
  clientsWithLoss: number;
  duplicated: number;
  outOfOrder: number;
  closed: string;
  /** Per (client, kill): kill → first broadcast sent after the kill received. */
  back: number[];
  backNever: number;
  /** Per (client, kill): kill → every resolved broadcast sent in the WINDOW_MS before the kill received. */
  preKill: number[];
  preKillNever: number;
  /** Per (client, kill): kill → every resolved broadcast from WINDOW_MS before the kill up to the first one after it received. */
  whole: number[];
  wholeNever: number;
  /** Warnings the instances logged, `count × text`. */
  warnings: string[];
}

/** The last index whose broadcast was handed to the library before `at` (-1: none). */
function lastSentBefore(sentAt: number[], at: number): number {
  let lo = 0;
  let hi = sentAt.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sentAt[mid] < at) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** When every resolved index in (from, to] had arrived (NaN: one never did). */
function completeAt(firstAt: Float64Array, resolved: boolean[], from: number, to: number): number {
  let latest = -Infinity;
  for (let i = from + 1; i <= to; i++) {
    if (!resolved[i]) continue;
    if (Number.isNaN(firstAt[i])) return NaN;
    latest = Math.max(latest, firstAt[i]);
  }
  return latest;
}

function summarize(run: Run): Summary {
  const total = run.sentAt.length;
  const lastBefore = run.kills.map((kill) => lastSentBefore(run.sentAt, kill.at));
  // What a kill may cut: the broadcasts from WINDOW_MS before it on (well past the previous kill's outage).
  const windowStart = run.kills.map((kill) => lastSentBefore(run.sentAt, kill.at - WINDOW_MS + 1e-6));
  const summary: Summary = {
    name: run.name,
    sent: total,
    resolved: run.resolved.filter(Boolean).length,
    rejected: run.rejected,
    killed: run.kills.reduce((sum, kill) => sum + kill.killed, 0),
    clients: run.traces.length,
    received: 0,
    lost: 0,
    clientsWithLoss: 0,
    duplicated: 0,
    outOfOrder: 0,
    closed: '',
    back: [],
    backNever: 0,
    preKill: [],
    preKillNever: 0,
    whole: [],
    wholeNever: 0,
    warnings: [],
  };
  const closeCodes = new Map<string, number>();
  for (const trace of run.traces) {
    if (trace.closedAt !== undefined) closeCodes.set(String(trace.closeCode), (closeCodes.get(String(trace.closeCode)) ?? 0) + 1);
    const firstAt = new Float64Array(total).fill(NaN);
    let highest = -1;
    summary.received += trace.indices.length;
    trace.indices.forEach((index, n) => {
      if (!Number.isNaN(firstAt[index])) {
        summary.duplicated++;
        return;
      }
      firstAt[index] = trace.at[n];
      if (index < highest) summary.outOfOrder++;
      highest = Math.max(highest, index);
    });
    let lost = 0;
    for (let i = 0; i < total; i++) if (run.resolved[i] && Number.isNaN(firstAt[i])) lost++;
    summary.lost += lost;
    if (lost > 0) summary.clientsWithLoss++;

    run.kills.forEach((kill, k) => {
      const before = lastBefore[k];
      const previous = windowStart[k];
      // The first broadcast sent after the kill that this client received.
      const n = trace.indices.findIndex((index) => index > before);
      const preKill = completeAt(firstAt, run.resolved, previous, before);
      if (Number.isNaN(preKill)) summary.preKillNever++;
      else summary.preKill.push(Math.max(0, preKill - kill.at));
      if (n < 0) {
        summary.backNever++;
        summary.wholeNever++;
        return;
      }
      summary.back.push(trace.at[n] - kill.at);
      const whole = completeAt(firstAt, run.resolved, previous, trace.indices[n]);
      if (Number.isNaN(whole)) summary.wholeNever++;
      else summary.whole.push(Math.max(0, whole - kill.at));
    });
  }
  summary.closed = closeCodes.size === 0 ? '0' : [...closeCodes].map(([code, count]) => `${count} (${code})`).join(', ');
  return summary;
}

function spread(samples: number[], never: number): string[] {
  const sorted = Float64Array.from(samples).sort();
  const cells = [fmtMs(percentile(sorted, 50), 0), fmtMs(percentile(sorted, 99), 0), fmtMs(sorted[sorted.length - 1], 0)];
  return [...cells, fmtInt(never)];
}

// ---------------------------------------------------------------- the bench

async function runBench(placement: string, redis: ThrowawayRedis): Promise<Summary[]> {
  const duration = LEAD_MS + (KILLS - 1) * KILL_EVERY_MS + TAIL_MS;
  console.log(
    `\n## redis-faults: A → Redis → B → ${CLIENTS} clients in one room, a broadcast every ${GAP_MS} ms for ${(duration / 1000).toFixed(1)} s ` +
      `with ${KILLS} CLIENT KILL TYPE pubsub, one every ${KILL_EVERY_MS} ms (throwaway redis-server; ${placement})\n`,
  );
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  const summaries: Summary[] = [];
  try {
    for (const make of [reliableSystem, socketIoSystem]) {
      const system = await make(redis.url);
      if (!systemSelected(system.name)) {
        await system.close();
        continue;
      }
      try {
        const summary = summarize(await runUnderKills(system, admin));
        await system.close();
        summaries.push({ ...summary, warnings: logger.drain() });
      } catch (error) {
        console.log(`  ${system.name}: failed: ${error instanceof Error ? error.message : String(error)}`);
        await system.close();
      }
    }
  } finally {
    admin.disconnect();
  }

  printTable(
    ['system', 'broadcasts', 'resolved', 'conns killed', 'received', 'lost', 'clients with loss', 'duplicated', 'out of order', 'closed'],
    summaries.map((s) => [
      s.name,
      fmtInt(s.sent),
      fmtInt(s.resolved),
      fmtInt(s.killed),
      fmtInt(s.received),
      fmtInt(s.lost),
      `${s.clientsWithLoss} of ${s.clients}`,
      fmtInt(s.duplicated),
      fmtInt(s.outOfOrder),
      s.closed,
    ]),
  );
  console.log(`\nrecovery per client and kill (${KILLS} kills × ${CLIENTS} clients), ms from the kill:\n`);
  printTable(
    ['system', 'back p50', 'back p99', 'back max', 'back never', 'pre-kill p50', 'pre-kill p99', 'pre-kill max', 'pre-kill never', 'whole p50', 'whole p99', 'whole max', 'whole never'],
    summaries.map((s) => [s.name, ...spread(s.back, s.backNever), ...spread(s.preKill, s.preKillNever), ...spread(s.whole, s.wholeNever)]),
  );
  console.log(
    `\nback: a broadcast sent after the kill arrived; pre-kill: every resolved broadcast sent in the ${WINDOW_MS} ms before the kill arrived; ` +
      `whole: every resolved broadcast from ${WINDOW_MS} ms before the kill up to the first one after it arrived (the gap is filled); ` +
      'never: (client, kill) pairs where it did not happen. Socket.IO emit has no promise: its broadcasts count as resolved once emit returned.',
  );
  for (const s of summaries) {
    if (s.warnings.length > 0) console.log(`\n${s.name} logged:\n${s.warnings.map((line) => `  ${line}`).join('\n')}`);
  }
  return summaries;
}

export async function run(): Promise<Summary[]> {
  // Started before the servers are pinned, so that redis-server does not inherit their CPU (as the shared Redis would not).
  let redis: ThrowawayRedis;
  try {
    redis = await ThrowawayRedis.start();
  } catch (error) {
    console.log(`\n## redis-faults\n\nskipped: ${error instanceof Error ? error.message : String(error)}`);
    return [];
  }
  try {
    return await runPinned((placement) => runBench(placement, redis));
  } finally {
    await redis.stop();
  }
}
