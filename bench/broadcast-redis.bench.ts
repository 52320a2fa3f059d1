/**
 * Cross-instance broadcast through Redis (a benchmark, not a test).
 *
 * Two server instances share one Redis; K clients (one child process) are connected to instance B
 * and sit in one room; instance A broadcasts to that room. Compared, on the same load:
 *   - nestjs-reliable-ws: two Nest apps with ReliableWsModule `broadcast: { redis }`, A calls
 *     `BroadcastService.toRoom`;
 *   - Socket.IO 4.8 with @socket.io/redis-adapter: two socket.io servers on plain http servers,
 *     A calls `io.to(room).emit`.
 * Rounds on the same connections: a warm-up burst, a burst of M messages fired back to back
 * (throughput; the latency then includes queueing), and a paced run (one message every
 * PACED_GAP_MS) for latency under moderate load. Latency = the sender's wall clock when the
 * message was handed to the library → receipt at the client (parsed), over every client.
 *
 * Then a rate sweep, on instances of its own: A broadcasts to 200 clients spread over two other
 * instances B and C, at increasing offered rates for a few seconds each, both systems interleaved
 * per rate. A system's sweep stops at the first rate it does not sustain: broadcasts fully
 * delivered per second below 90 % of the offered rate, p99 above a bound, or deliveries missing
 * after the drain time. The sweep goes to bench/results/broadcast-redis.json, which plot.ts
 * draws as the latency curve by rate.
 */
import 'reflect-metadata';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { Redis } from 'ioredis';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { BroadcastService, ReliableGateway, type ReliableSocket } from '../lib/index.js';
import {
  fmtInt,
  fmtMs,
  printTable,
  REDIS_URL,
  RESULTS_DIR,
  sleep,
  startReliableApp,
  Swarm,
  systemSelected,
  uniquePrefix,
  wallNow,
  within,
  type BenchApp,
  type RoundResult,
  type SwarmKind,
  runPinned,
} from './bench-support.js';
import { renderPlot, type SweepPoint } from './plot.js';
import { startSocketIoRedisGroup } from './socket-io-redis.js';

const CLIENTS = 200;
const WARMUP_MESSAGES = 200;
const BURST_MESSAGES = 2000;
const PACED_MESSAGES = 400;
const PACED_GAP_MS = 5;
const PAD = 'x'.repeat(100);
const ROOM = 'bench-room';
const EVENT = 'tick';
const ROUND_TIMEOUT_MS = 60000;

const SWEEP_RATES = [250, 500, 1000, 2000, 3000, 4000];
const SWEEP_RECEIVERS = 2;
const SWEEP_STEP_MS = 3000;
const SWEEP_WARMUP_RATE = 500;
const SWEEP_WARMUP_MS = 1000;
/** How long a step's deliveries may take to arrive once its last broadcast is sent. */
const SWEEP_DRAIN_MS = 10000;
const SWEEP_PAUSE_MS = 300;
const SWEEP_TICK_MS = 1;
const SATURATED_BELOW = 0.9;
const SATURATED_P99_MS = 250;

interface Tick {
  r: number;
  i: number;
  t: number;
  pad: string;
}

interface System {
  name: string;
  kind: SwarmKind;
  /** URLs of the receiving instances (B, C, …), where the clients are. */
  urls: string[];
  /** Instance A broadcasts one message to the room. */
  send(tick: Tick): Promise<void> | void;
  close(): Promise<void>;
}

@ReliableGateway({ path: '/ws' })
class RoomGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() data: { room: string }, @ConnectedSocket() socket: ReliableSocket): Promise<{ ok: true }> {
    await this.broadcast.join(socket.id, data.room);
    return { ok: true };
  }
}

async function reliableSystem(receivers: number): Promise<System> {
  const options = { broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('rws') } };
  const apps: BenchApp[] = [];
  try {
    for (let i = 0; i <= receivers; i++) apps.push(await startReliableApp(options, [RoomGateway]));
  } catch (error) {
    await Promise.all(apps.map((app) => app.close()));
    throw error;
  }
  const [a, ...others] = apps;
  const broadcast = a.app.get(BroadcastService);
  return {
    name: 'nestjs-reliable-ws (toRoom)',
    kind: 'rws',
    urls: others.map((other) => `ws://127.0.0.1:${other.port}/ws`),
    send: (tick) => broadcast.toRoom(ROOM, EVENT, tick),
    close: async () => {
      await Promise.all(apps.map((app) => app.close()));
    },
  };
}

async function socketIoSystem(receivers: number): Promise<System> {
  const group = await startSocketIoRedisGroup(REDIS_URL, uniquePrefix('sio'), { receivers });
  return {
    name: 'Socket.IO + redis-adapter (to(room).emit)',
    kind: 'sio',
    urls: group.receiverPorts.map((port) => `http://127.0.0.1:${port}`),
    send: (tick) => group.emitToRoom(ROOM, EVENT, tick),
    close: () => group.close(),
  };
}

const SYSTEMS = [reliableSystem, socketIoSystem];

interface Measured {
  name: string;
  burst: RoundResult;
  burstStart: number;
  /** CPU time of this process (both server instances) during the burst round. */
  burstCpuMs: number;
  paced: RoundResult;
  pacedStart: number;
  pacedEnd: number;
  lost: number;
}

async function burstRound(
  system: System,
  swarm: Swarm,
  round: number,
  messages: number,
): Promise<{ result: RoundResult; start: number; cpuMs: number }> {
  await swarm.arm(round, messages, EVENT, true);
  const cpuBefore = process.cpuUsage();
  const start = wallNow();
  const sends: Array<Promise<void> | void> = [];
  for (let i = 0; i < messages; i++) sends.push(system.send({ r: round, i, t: wallNow(), pad: PAD }));
  await Promise.all(sends);
  const result = await swarm.result(ROUND_TIMEOUT_MS);
  const cpu = process.cpuUsage(cpuBefore);
  return { result, start, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function measure(system: System): Promise<Measured> {
  const swarm = await Swarm.open({ url: system.urls, kind: system.kind, count: CLIENTS, concurrency: 50, room: ROOM });
  try {
    const warmup = await burstRound(system, swarm, 1, WARMUP_MESSAGES);
    if (!warmup.result.complete) console.log(`  ${system.name}: warm-up incomplete (${warmup.result.received} of ${WARMUP_MESSAGES * CLIENTS})`);
    const burst = await burstRound(system, swarm, 2, BURST_MESSAGES);

    await swarm.arm(3, PACED_MESSAGES, EVENT, true);
    const pacedStart = wallNow();
    for (let i = 0; i < PACED_MESSAGES; i++) {
      await system.send({ r: 3, i, t: wallNow(), pad: PAD });
      await sleep(PACED_GAP_MS);
    }
    const pacedEnd = wallNow();
    const paced = await swarm.result(ROUND_TIMEOUT_MS);
    const lost = BURST_MESSAGES * CLIENTS - burst.result.received + (PACED_MESSAGES * CLIENTS - paced.received);
    return { name: system.name, burst: burst.result, burstStart: burst.start, burstCpuMs: burst.cpuMs, paced, pacedStart, pacedEnd, lost };
  } finally {
    await swarm.stop();
  }
}

async function redisReachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  probe.on('error', () => undefined);
  try {
    await within(probe.connect().then(() => probe.ping()), 3000, 'redis ping');
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function runBench(placement: string): Promise<{ results: Measured[]; sweep: SweepPoint[] }> {
  console.log(
    `\n## broadcast-redis: A → Redis → B → ${CLIENTS} clients in one room (burst ${BURST_MESSAGES} msgs, ` +
      `paced ${PACED_MESSAGES} msgs every ${PACED_GAP_MS} ms; payload ~${PAD.length + 60} B; ${placement})\n`,
  );
  if (!(await redisReachable())) {
    console.log(`skipped: no Redis at ${REDIS_URL}`);
    return { results: [], sweep: [] };
  }
  const results: Measured[] = [];
  for (const make of SYSTEMS) {
    const system = await make(1);
    if (!systemSelected(system.name)) {
      await system.close();
      continue;
    }
    try {
      results.push(await measure(system));
    } catch (error) {
      console.log(`  ${system.name}: failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      await system.close();
    }
  }

  const rows = results.map((m) => {
    const burstEnd = m.burst.completions.length ? Math.max(...m.burst.completions) : m.burst.lastAt;
    const burstSeconds = (burstEnd - m.burstStart) / 1000;
    const pacedRate = PACED_MESSAGES / ((m.pacedEnd - m.pacedStart) / 1000);
    return [
      m.name,
      `${(burstSeconds * 1000).toFixed(0)}`,
      fmtInt(BURST_MESSAGES / burstSeconds),
      fmtInt(m.burst.received / burstSeconds),
      m.burstCpuMs.toFixed(0),
      fmtMs(m.burst.latency?.p50),
      fmtMs(m.burst.latency?.p99),
      fmtInt(pacedRate),
      fmtMs(m.paced.latency?.p50),
      fmtMs(m.paced.latency?.p99),
      fmtMs(m.paced.latency?.max),
      String(m.lost),
    ];
  });
  printTable(
    ['system', 'burst ms', 'msgs/s', 'deliveries/s', 'servers CPU ms', 'burst p50 ms', 'burst p99 ms', 'paced msg/s', 'paced p50 ms', 'paced p99 ms', 'paced max ms', 'lost'],
    rows,
  );
  const sweep = await runSweep();
  return { results, sweep };
}

// ---------------------------------------------------------------- rate sweep

/** A sweep point with what explains it: CPU of the servers' process and of the clients' process. */
interface SweepStep extends SweepPoint {
  /** CPU time of this process (every instance, and the sender) over the step, in % of its wall time. */
  serverCpuPct: number;
  /** The same CPU time per delivery, in µs. */
  serverCpuUsPerDelivery: number;
  /** CPU time of the clients' process over the step, in % of its wall time. */
  clientCpuPct: number;
  /** Why the rate is not sustained; empty when it is. */
  saturated: string;
}

interface Entrant {
  system: System;
  swarm: Swarm;
  retired: boolean;
}

/**
 * Hands `count` broadcasts to the system at `rate` per second from `start` on. Open loop: a late
 * tick sends everything due by then, so a busy process shows as a lower achieved rate.
 */
async function sendAtRate(system: System, round: number, rate: number, count: number, start: number): Promise<void> {
  const sends: Array<Promise<void>> = [];
  const failures: unknown[] = [];
  while (sends.length < count) {
    const due = Math.min(count, Math.floor(((wallNow() - start) * rate) / 1000) + 1);
    while (sends.length < due) {
      const tick = { r: round, i: sends.length, t: wallNow(), pad: PAD };
      sends.push(Promise.resolve(system.send(tick)).catch((error: unknown) => void failures.push(error)));
    }
    await sleep(SWEEP_TICK_MS);
  }
  await Promise.all(sends);
  if (failures.length > 0) throw new Error(`${failures.length} of ${count} broadcasts rejected: ${String(failures[0])}`);
}

function saturation(rate: number, achieved: number, p99Ms: number, delivered: number, expected: number): string {
  if (delivered < expected) return `${fmtInt(expected - delivered)} deliveries missing after ${SWEEP_DRAIN_MS / 1000} s`;
  if (achieved < SATURATED_BELOW * rate) return `achieved ${((achieved / rate) * 100).toFixed(0)} % of the rate`;
  if (!(p99Ms <= SATURATED_P99_MS)) return `p99 above ${SATURATED_P99_MS} ms`;
  return '';
}

async function sweepStep({ system, swarm }: Entrant, round: number, rate: number, durationMs: number): Promise<SweepStep> {
  const broadcasts = Math.round((rate * durationMs) / 1000);
  await swarm.arm(round, broadcasts, EVENT, true);
  const clientCpuBefore = await swarm.cpuMs();
  const serverCpuBefore = process.cpuUsage();
  const start = wallNow();
  await sendAtRate(system, round, rate, broadcasts, start);
  const result = await swarm.result(SWEEP_DRAIN_MS);
  const elapsedMs = wallNow() - start;
  const serverCpu = process.cpuUsage(serverCpuBefore);
  const serverCpuMs = (serverCpu.user + serverCpu.system) / 1000;
  const clientCpuMs = (await swarm.cpuMs()) - clientCpuBefore;
  const expected = broadcasts * swarm.opened;
  const achieved = result.lastAt > start ? result.received / swarm.opened / ((result.lastAt - start) / 1000) : 0;
  const p50Ms = result.latency?.p50 ?? NaN;
  const p99Ms = result.latency?.p99 ?? NaN;
  return {
    system: system.name,
    rate,
    achieved,
    p50Ms,
    p99Ms,
    delivered: result.received,
    expected,
    serverCpuPct: (serverCpuMs / elapsedMs) * 100,
    serverCpuUsPerDelivery: (serverCpuMs * 1000) / result.received,
    clientCpuPct: (clientCpuMs / elapsedMs) * 100,
    saturated: saturation(rate, achieved, p99Ms, result.received, expected),
  };
}

async function retire(entrant: Entrant): Promise<void> {
  if (entrant.retired) return;
  entrant.retired = true;
  await entrant.swarm.stop();
  await entrant.system.close();
}

async function openEntrants(): Promise<Entrant[]> {
  const entrants: Entrant[] = [];
  for (const make of SYSTEMS) {
    const system = await make(SWEEP_RECEIVERS);
    if (!systemSelected(system.name)) {
      await system.close();
      continue;
    }
    try {
      const swarm = await Swarm.open({ url: system.urls, kind: system.kind, count: CLIENTS, concurrency: 50, room: ROOM });
      entrants.push({ system, swarm, retired: false });
    } catch (error) {
      console.log(`  ${system.name}: failed: ${error instanceof Error ? error.message : String(error)}`);
      await system.close();
    }
  }
  return entrants;
}

/** Every rate in turn, each system once per rate; a system leaves the sweep at its first unsustained rate. */
async function sweep(entrants: Entrant[]): Promise<SweepStep[]> {
  const steps: SweepStep[] = [];
  let round = 1;
  for (const entrant of entrants) {
    const warmup = await sweepStep(entrant, round++, SWEEP_WARMUP_RATE, SWEEP_WARMUP_MS);
    if (warmup.saturated) console.log(`  ${entrant.system.name}: warm-up at ${SWEEP_WARMUP_RATE}/s: ${warmup.saturated}`);
  }
  for (const rate of SWEEP_RATES) {
    for (const entrant of entrants.filter((e) => !e.retired)) {
      try {
        const step = await sweepStep(entrant, round++, rate, SWEEP_STEP_MS);
        steps.push(step);
        if (step.saturated) await retire(entrant);
      } catch (error) {
        console.log(`  ${entrant.system.name} at ${rate}/s: failed: ${error instanceof Error ? error.message : String(error)}`);
        await retire(entrant);
      }
      await sleep(SWEEP_PAUSE_MS);
    }
  }
  return steps;
}

async function runSweep(): Promise<SweepStep[]> {
  console.log(
    `
## broadcast-redis sweep: A → Redis → ${SWEEP_RECEIVERS} instances → ${CLIENTS} clients spread over them, ` +
      `${SWEEP_STEP_MS / 1000} s per rate, systems interleaved per rate; saturated: under ${SATURATED_BELOW * 100} % of the rate ` +
      `fully delivered per second, p99 above ${SATURATED_P99_MS} ms, or deliveries missing ${SWEEP_DRAIN_MS / 1000} s after the last send\n`,
  );
  const entrants = await openEntrants();
  let steps: SweepStep[];
  try {
    steps = await sweep(entrants);
  } finally {
    for (const entrant of entrants) await retire(entrant);
  }
  printTable(
    ['system', 'offered/s', 'achieved/s', 'p50 ms', 'p99 ms', 'delivered', 'expected', 'servers CPU %', 'servers CPU µs/delivery', 'clients CPU %', 'saturated'],
    steps.map((step) => [
      step.system,
      fmtInt(step.rate),
      fmtInt(step.achieved),
      fmtMs(step.p50Ms),
      fmtMs(step.p99Ms),
      fmtInt(step.delivered),
      fmtInt(step.expected),
      step.serverCpuPct.toFixed(0),
      fmtMs(step.serverCpuUsPerDelivery),
      step.clientCpuPct.toFixed(0),
      step.saturated || 'no',
    ]),
  );
  console.log(
    '\nCPU % is of one core over the step (servers pinned to one core, clients to another): near 100 the servers or ' +
      'the clients are the limit; both well under 100 at a saturated rate means other processes took the cores.',
  );
  writeSweep(steps);
  const plot = await renderPlot();
  console.log(plot ? `plot: ${plot}` : 'plot: not drawn (needs bench/results/goals.json from the goals bench, and Chromium)');
  return steps;
}

function writeSweep(steps: SweepStep[]): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = resolve(RESULTS_DIR, 'broadcast-redis.json');
  const setup = { clients: CLIENTS, receivers: SWEEP_RECEIVERS, stepMs: SWEEP_STEP_MS, payloadBytes: PAD.length + 60 };
  const machine = { cpus: availableParallelism(), node: process.version };
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, setup, sweep: steps }, null, 2)}\n`);
  console.log(`\nresults: ${file}`);
}

export function run(): ReturnType<typeof runBench> {
  return runPinned(runBench);
}
