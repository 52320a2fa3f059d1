/**
 * The performance goals, side by side (a benchmark, not a test): this package driven by its own
 * protocol (an `rws.v1` client: `$hello`, ids, cumulative `$ack`s) against the stock Nest
 * `WsAdapter` and a raw `ws` server, on the same machine in the same run.
 *
 * Every system runs in a fresh server child process (goals-server.ts, pinned to one core) for
 * each scenario, and every round runs each system once, in a rotated order; the goals are the
 * median and min–max of the paired per-round ratios. Scenarios:
 *   - echo: ECHO_CONNECTIONS connections × ECHO_WINDOW messages in flight, ECHO_WARMUP
 *     request/reply to warm up (its p99 is reported as the cold one), then ECHO_MESSAGES measured
 *     (a steady window of 1.5–2.5 s: a shorter one measures the compiler and the first heap growth);
 *     server CPU per message and client-side p99;
 *   - fan-out: FANOUT_CLIENTS clients, FANOUT_BROADCASTS broadcasts of ~1 KiB FANOUT_GAP_MS apart;
 *     server CPU per delivery, the clients' `$ack`s of those pushes included (the window closes
 *     once they have arrived, and opens once those of the warm-up have), and p99 (broadcast →
 *     receipt); then BURST_BROADCASTS in one tick: deliveries per second until the last client has
 *     the last one;
 *   - idle: IDLE_CONNECTIONS connections opened (server CPU per connect) and held: heap + external
 *     and RSS per connection after two full garbage collections.
 *
 * Each round also runs raw `ws` (fan-out) and the stock adapter (idle) a second time: the paired
 * ratio of a server to its own copy shows how far the machine alone moves a goal's ratio. The
 * fan-out also runs raw `ws` with clients that send the `$ack`s an rws.v1 client sends (which it
 * reads and ignores): what receiving them costs any server, and the sessions' gap without it; and
 * the connect runs the stock adapter and raw `ws` once more with clients that open with the
 * rws.v1 client's `$hello` and wait for a `$ready` (a stock gateway's `$hello` handler, a raw
 * server's answer): what that round trip costs them.
 *
 * Environment: BENCH_GOALS_ROUNDS (default 5), BENCH_GOALS_SCENARIOS (e.g. `echo,fanout`: the goals
 * of those; goals.json and the plot need all three), BENCH_GOALS_ACKS=off (the fan-out's rws.v1
 * clients send no `$ack`s: what the acks cost, not a goals run), BENCH_GOALS_PROFILE (a directory: each server
 * writes the CPU profile of its first measured window there; summarise one with
 * bench/profile-summary.mjs). Results: a table of figures, the goals table,
 * bench/results/goals.json and the plot docs/benchmarks.png (see plot.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { resolve } from 'node:path';
import { ACK_GRACE, DEFAULT_ACK_DELAY_MS } from '../lib/client/reliable-connection.js';
import { fmtInt, percentile, printTable, RESULTS_DIR, sleep, Swarm, wallNow, type SwarmKind } from './bench-support.js';
import { BenchChild, compiledScript, startServerChild, type ChildMessage } from './child-process.js';
import { GOALS_EVENT, GOALS_TOKEN, type CpuTime, type GoalsSystem } from './goals-systems.js';
import { renderPlot } from './plot.js';

const ROUNDS = Number(process.env.BENCH_GOALS_ROUNDS ?? 5);
const ECHO_CONNECTIONS = 100;
const ECHO_WINDOW = 10;
const ECHO_WARMUP = 20_000;
const ECHO_MESSAGES = 200_000;
const ECHO_PAYLOAD_BYTES = 64;
const FANOUT_CLIENTS = 2_000;
const FANOUT_PROCESSES = 2;
const FANOUT_BROADCASTS = 50;
const FANOUT_GAP_MS = 50;
const FANOUT_BYTES = 980;
const BURST_BROADCASTS = 50;
/** Long enough for an rws.v1 client's `$ack` of the pushes it has to arrive. */
const ACKS_SETTLE_MS = DEFAULT_ACK_DELAY_MS * (1 + ACK_GRACE) + 300;
const IDLE_CONNECTIONS = 10_000;
const STEP_TIMEOUT_MS = 120_000;
const PROFILE_DIR = process.env.BENCH_GOALS_PROFILE;
const ONLY = (process.env.BENCH_GOALS_SCENARIOS ?? '').split(',').filter(Boolean);
/** `off`: the rws.v1 clients send no `$ack`s, to see what the acks cost (the goals then do not hold the clients to the protocol). */
const CLIENT_ACKS = process.env.BENCH_GOALS_ACKS !== 'off';

/** A system's results: one of the servers, the second copy of one run as a control, or a plain server with clients that ack or open with `$hello`. */
type SystemKey = GoalsSystem | 'raw-again' | 'stock-again' | 'raw-acked' | 'stock-hello' | 'raw-hello';

interface SystemSpec {
  key: SystemKey;
  system: GoalsSystem;
  label: string;
  kind: SwarmKind;
  /** Plain clients that send `$ack`s as rws.v1 clients do. */
  countAcks?: boolean;
  /** Plain clients that open with the `$hello` an rws.v1 client sends, answered with a `$ready`. */
  hello?: boolean;
}

const RELIABLE: SystemSpec = { key: 'reliable', system: 'reliable', label: 'nestjs-reliable-ws (rws.v1, everything on)', kind: 'rws1' };
const RELIABLE_NO_RESUME: SystemSpec = { key: 'reliable-no-resume', system: 'reliable-no-resume', label: 'nestjs-reliable-ws, resume: false', kind: 'rws1' };
const STOCK: SystemSpec = { key: 'stock', system: 'stock', label: 'stock Nest WsAdapter', kind: 'ws' };
const RAW: SystemSpec = { key: 'raw', system: 'raw', label: 'raw ws', kind: 'ws' };
/** The same servers once more in every round: what a paired ratio does with nothing changed. */
const RAW_AGAIN: SystemSpec = { ...RAW, key: 'raw-again', label: 'raw ws, again (control)' };
const STOCK_AGAIN: SystemSpec = { ...STOCK, key: 'stock-again', label: 'stock Nest WsAdapter, again (control)' };
const RAW_ACKED: SystemSpec = { ...RAW, key: 'raw-acked', label: 'raw ws, clients sending $acks', countAcks: true };
const STOCK_HELLO: SystemSpec = { ...STOCK, key: 'stock-hello', label: 'stock Nest WsAdapter, clients sending $hello', hello: true };
const RAW_HELLO: SystemSpec = { ...RAW, key: 'raw-hello', label: 'raw ws, clients sending $hello', hello: true };

const cpuBetween = (before: CpuTime, after: CpuTime): CpuTime => ({ cpuMs: after.cpuMs - before.cpuMs, systemMs: after.systemMs - before.systemMs });

/** One figure of one system in one round. */
type Figures = Record<string, number>;
/** scenario → system → one Figures per round. */
export type GoalsResults = Record<string, Partial<Record<SystemKey, Figures[]>>>;

class ServerUnderTest {
  private constructor(
    readonly child: BenchChild,
    readonly url: string,
  ) {}

  static async start(spec: SystemSpec): Promise<ServerUnderTest> {
    const profile = PROFILE_DIR ? [resolve(PROFILE_DIR, `${spec.system}-${Date.now()}.cpuprofile`)] : [];
    const { child, port } = await startServerChild(spec.label, compiledScript('goals-server.js'), [spec.system, ...profile]);
    const path = spec.system === 'raw' ? '/' : `/ws${spec.kind === 'rws1' ? `?token=${GOALS_TOKEN}` : ''}`;
    return new ServerUnderTest(child, `ws://127.0.0.1:${port}${path}`);
  }

  cpu(): Promise<ChildMessage & CpuTime> {
    return this.child.request({ type: 'cpu' }, 10_000);
  }

  memory(): Promise<ChildMessage & { heapUsed: number; external: number; rss: number; connections: number }> {
    return this.child.request({ type: 'memory' }, 60_000);
  }

  async broadcast(round: number, count: number, gapMs: number): Promise<void> {
    await this.child.request({ type: 'broadcast', round, count, bytes: FANOUT_BYTES, gapMs }, STEP_TIMEOUT_MS);
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

/** Runs `measure` against a fresh server of `spec`, then stops both the server and its clients. */
async function withServer<T>(spec: SystemSpec, measure: (server: ServerUnderTest, swarms: Swarm[]) => Promise<T>): Promise<T> {
  const server = await ServerUnderTest.start(spec);
  const swarms: Swarm[] = [];
  try {
    return await measure(server, swarms);
  } finally {
    await Promise.all(swarms.map((swarm) => swarm.stop()));
    await server.stop();
  }
}

async function echo(spec: SystemSpec): Promise<Figures> {
  return withServer(spec, async (server, swarms) => {
    const swarm = await Swarm.open({ url: server.url, kind: spec.kind, count: ECHO_CONNECTIONS, concurrency: ECHO_CONNECTIONS });
    swarms.push(swarm);
    const warmup = await swarm.requestReply(ECHO_WARMUP, ECHO_WINDOW, ECHO_PAYLOAD_BYTES, STEP_TIMEOUT_MS);
    const before = await server.cpu();
    const run = await swarm.requestReply(ECHO_MESSAGES, ECHO_WINDOW, ECHO_PAYLOAD_BYTES, STEP_TIMEOUT_MS);
    const cpu = cpuBetween(before, await server.cpu());
    if (run.errors.length > 0 || run.messages < ECHO_MESSAGES) {
      throw new Error(`${spec.label}: echo answered ${run.messages}/${ECHO_MESSAGES}: ${run.errors.slice(0, 3).join('; ')}`);
    }
    return {
      cpuUsPerMessage: (cpu.cpuMs * 1000) / run.messages,
      systemUsPerMessage: (cpu.systemMs * 1000) / run.messages,
      p99Ms: run.latency.p99,
      coldP99Ms: warmup.latency.p99,
      messagesPerSecond: run.messages / (run.elapsedMs / 1000),
    };
  });
}

async function fanout(spec: SystemSpec, round: number): Promise<Figures> {
  return withServer(spec, async (server, swarms) => {
    const clients = { url: server.url, kind: spec.kind, count: FANOUT_CLIENTS, concurrency: 100, acks: CLIENT_ACKS, countAcks: spec.countAcks };
    swarms.push(...(await Swarm.openMany(clients, FANOUT_PROCESSES)));
    await broadcastRound(server, swarms, 1, 2, 0, false); // warm-up
    await sleep(ACKS_SETTLE_MS);
    const before = await server.cpu();
    await broadcastRound(server, swarms, 2, FANOUT_BROADCASTS, FANOUT_GAP_MS, false);
    await sleep(ACKS_SETTLE_MS);
    const cpu = cpuBetween(before, await server.cpu());
    const paced = await broadcastRound(server, swarms, 3, FANOUT_BROADCASTS, FANOUT_GAP_MS, true);
    const burst = await broadcastRound(server, swarms, 4, BURST_BROADCASTS, 0, false);
    return {
      cpuUsPerDelivery: (cpu.cpuMs * 1000) / (FANOUT_CLIENTS * FANOUT_BROADCASTS),
      systemUsPerDelivery: (cpu.systemMs * 1000) / (FANOUT_CLIENTS * FANOUT_BROADCASTS),
      p99Ms: paced.p99Ms,
      clientsCpuUsPerDelivery: (paced.clientsCpuMs * 1000) / (FANOUT_CLIENTS * FANOUT_BROADCASTS),
      burstDeliveriesPerSecond: (FANOUT_CLIENTS * BURST_BROADCASTS) / (burst.lastMs / 1000),
      round,
    };
  });
}

/**
 * One broadcast round: when the last delivery arrived and, if the clients parse the frames
 * (`timed`), the latency p99 over every delivery.
 */
async function broadcastRound(
  server: ServerUnderTest,
  swarms: Swarm[],
  round: number,
  count: number,
  gapMs: number,
  timed: boolean,
): Promise<{ p99Ms: number; lastMs: number; clientsCpuMs: number }> {
  await Promise.all(swarms.map((swarm) => swarm.arm(round, count, GOALS_EVENT, timed)));
  const clientsCpuBefore = await clientsCpuMs(swarms);
  const start = wallNow();
  await server.broadcast(round, count, gapMs);
  const results = await Promise.all(swarms.map((swarm) => swarm.result(STEP_TIMEOUT_MS)));
  const clientsCpu = (await clientsCpuMs(swarms)) - clientsCpuBefore;
  const missing = results.find((result) => !result.complete);
  if (missing) throw new Error(`fan-out round ${round}: ${missing.received} deliveries, not ${count} to every client`);
  const p99s = results.map((result) => result.latency?.p99 ?? NaN);
  return { p99Ms: Math.max(...p99s), lastMs: Math.max(...results.map((result) => result.lastAt)) - start, clientsCpuMs: clientsCpu };
}

/** The CPU time of all client processes so far, in ms. */
async function clientsCpuMs(swarms: Swarm[]): Promise<number> {
  const times = await Promise.all(swarms.map((swarm) => swarm.cpuMs()));
  return times.reduce((sum, ms) => sum + ms, 0);
}

async function idle(spec: SystemSpec): Promise<Figures> {
  return withServer(spec, async (server, swarms) => {
    const empty = await server.memory();
    const before = await server.cpu();
    swarms.push(await Swarm.open({ url: server.url, kind: spec.kind, count: IDLE_CONNECTIONS, concurrency: 100, hello: spec.hello }, STEP_TIMEOUT_MS));
    const cpu = cpuBetween(before, await server.cpu());
    const held = await server.memory();
    if (held.connections !== IDLE_CONNECTIONS) throw new Error(`${spec.label}: ${held.connections} connections, not ${IDLE_CONNECTIONS}`);
    return {
      cpuUsPerConnect: (cpu.cpuMs * 1000) / IDLE_CONNECTIONS,
      systemUsPerConnect: (cpu.systemMs * 1000) / IDLE_CONNECTIONS,
      kbPerConnection: (held.heapUsed + held.external - empty.heapUsed - empty.external) / 1000 / IDLE_CONNECTIONS,
      rssKbPerConnection: (held.rss - empty.rss) / 1000 / IDLE_CONNECTIONS,
    };
  });
}

const SCENARIOS: Array<{ name: string; systems: SystemSpec[]; run: (spec: SystemSpec, round: number) => Promise<Figures> }> = [
  { name: 'echo', systems: [RELIABLE, STOCK, RAW], run: echo },
  { name: 'fanout', systems: [RELIABLE, RELIABLE_NO_RESUME, STOCK, RAW, RAW_AGAIN, RAW_ACKED], run: fanout },
  { name: 'idle', systems: [RELIABLE, STOCK, RAW, STOCK_AGAIN, STOCK_HELLO, RAW_HELLO], run: idle },
];

/** Each system once per round, the order rotated from round to round. */
async function runRounds(): Promise<GoalsResults> {
  const results: GoalsResults = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const { name, systems, run } of SCENARIOS.filter(({ name }) => ONLY.length === 0 || ONLY.includes(name))) {
      const bySystem = (results[name] ??= {});
      for (let i = 0; i < systems.length; i++) {
        const spec = systems[(i + round) % systems.length];
        (bySystem[spec.key] ??= []).push(await run(spec, round));
      }
    }
    console.log(`  round ${round + 1} of ${ROUNDS} done`);
  }
  return results;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), min: sorted[0], max: sorted[sorted.length - 1] };
}

function figure(results: GoalsResults, scenario: string, system: SystemKey, name: string): number[] {
  return (results[scenario][system] ?? []).map((figures) => figures[name]);
}

/** The per-round ratios of one figure between two systems (paired by round). */
function pairedRatio(results: GoalsResults, scenario: string, name: string, system: SystemKey, baseline: SystemKey): Spread {
  const ours = figure(results, scenario, system, name);
  const theirs = figure(results, scenario, baseline, name);
  return spread(ours.map((value, round) => value / theirs[round]));
}

export interface Goal {
  /** The scenario the goal is measured in. */
  scenario: string;
  goal: string;
  target: string;
  measured: Spread;
  unit: '×' | 'KB';
  met: boolean;
}

/** The goals of the scenarios in `results` (all of them once every scenario ran). */
export function goalsOf(results: GoalsResults): Goal[] {
  const ratio = (goal: string, scenario: string, name: string, system: GoalsSystem, baseline: GoalsSystem, limit: number, atLeast = false) => (): Goal => {
    const measured = pairedRatio(results, scenario, name, system, baseline);
    return { scenario, goal, target: `${atLeast ? '≥' : '≤'} ${limit.toFixed(1)}×`, measured, unit: '×', met: atLeast ? measured.median >= limit : measured.median <= limit };
  };
  const memory = (): Goal => {
    const measured = spread(figure(results, 'idle', 'reliable', 'kbPerConnection'));
    return { scenario: 'idle', goal: `memory per idle rws.v1 connection at ${fmtInt(IDLE_CONNECTIONS)}`, target: '≤ 7 KB', measured, unit: 'KB', met: measured.median <= 7 };
  };
  const goals: Array<[scenario: string, goal: () => Goal]> = [
    ['echo', ratio('echo: server CPU per message, vs stock WsAdapter', 'echo', 'cpuUsPerMessage', 'reliable', 'stock', 1.0)],
    ['fanout', ratio('fan-out with sessions: server CPU per delivery, vs raw ws', 'fanout', 'cpuUsPerDelivery', 'reliable', 'raw', 1.0)],
    ['fanout', ratio('fan-out, resume: false: server CPU per delivery, vs raw ws', 'fanout', 'cpuUsPerDelivery', 'reliable-no-resume', 'raw', 0.8)],
    ['idle', memory],
    ['idle', ratio('connect: server CPU per connection, vs stock WsAdapter', 'idle', 'cpuUsPerConnect', 'reliable', 'stock', 1.1)],
    ['echo', ratio('echo p99, vs stock WsAdapter', 'echo', 'p99Ms', 'reliable', 'stock', 1.2)],
    ['fanout', ratio('broadcast p99, vs stock WsAdapter', 'fanout', 'p99Ms', 'reliable', 'stock', 1.2)],
    ['fanout', ratio(`burst (${BURST_BROADCASTS} broadcasts in one tick): deliveries/s, vs raw ws`, 'fanout', 'burstDeliveriesPerSecond', 'reliable', 'raw', 1.5, true)],
  ];
  return goals.filter(([scenario]) => results[scenario]).map(([, goal]) => goal());
}

/** A paired ratio that is no goal: of a server to its own copy (a control), or one that says what a goal's ratio is made of. */
export interface NamedRatio {
  scenario: string;
  label: string;
  measured: Spread;
}

type RatioSpec = Omit<NamedRatio, 'measured'> & { name: string; system: SystemKey; baseline: SystemKey };

/** One server against its second copy in the same rounds: how far a paired ratio moves when nothing differs. */
const CONTROLS: RatioSpec[] = [
  { scenario: 'fanout', label: 'fan-out: raw ws, again, vs raw ws (server CPU per delivery)', name: 'cpuUsPerDelivery', system: 'raw-again', baseline: 'raw' },
  { scenario: 'idle', label: 'connect: stock WsAdapter, again, vs stock WsAdapter (server CPU per connection)', name: 'cpuUsPerConnect', system: 'stock-again', baseline: 'stock' },
];

/**
 * What receiving the clients' `$ack`s costs any server, and the sessions' figures with the same
 * traffic both ways; the same for the round trip every rws.v1 connection opens with (`$hello`
 * answered with a `$ready` of the same size as this package's).
 */
const COMPARISONS: RatioSpec[] = [
  { scenario: 'fanout', label: 'fan-out: raw ws, clients sending $acks, vs raw ws (server CPU per delivery)', name: 'cpuUsPerDelivery', system: 'raw-acked', baseline: 'raw' },
  { scenario: 'fanout', label: 'fan-out with sessions vs raw ws, clients sending $acks (server CPU per delivery)', name: 'cpuUsPerDelivery', system: 'reliable', baseline: 'raw-acked' },
  { scenario: 'fanout', label: 'broadcast p99: raw ws, clients sending $acks, vs raw ws', name: 'p99Ms', system: 'raw-acked', baseline: 'raw' },
  { scenario: 'fanout', label: 'broadcast p99 with sessions vs raw ws, clients sending $acks', name: 'p99Ms', system: 'reliable', baseline: 'raw-acked' },
  { scenario: 'idle', label: 'connect: raw ws, clients sending $hello, vs raw ws (server CPU per connection)', name: 'cpuUsPerConnect', system: 'raw-hello', baseline: 'raw' },
  { scenario: 'idle', label: 'connect: stock WsAdapter, clients sending $hello, vs stock WsAdapter', name: 'cpuUsPerConnect', system: 'stock-hello', baseline: 'stock' },
  { scenario: 'idle', label: 'connect: this package vs stock WsAdapter, clients sending $hello', name: 'cpuUsPerConnect', system: 'reliable', baseline: 'stock-hello' },
];

function ratiosOf(results: GoalsResults, specs: RatioSpec[]): NamedRatio[] {
  return specs
    .filter(({ scenario }) => results[scenario])
    .map(({ scenario, label, name, system, baseline }) => ({ scenario, label, measured: pairedRatio(results, scenario, name, system, baseline) }));
}

const FIGURES: Array<{ scenario: string; name: string; label: string; digits: number }> = [
  { scenario: 'echo', name: 'cpuUsPerMessage', label: 'echo: server CPU µs/message', digits: 1 },
  { scenario: 'echo', name: 'systemUsPerMessage', label: 'echo: of which in the kernel', digits: 1 },
  { scenario: 'echo', name: 'p99Ms', label: 'echo: p99 ms', digits: 1 },
  { scenario: 'echo', name: 'coldP99Ms', label: 'echo: p99 ms of the warm-up (cold)', digits: 1 },
  { scenario: 'echo', name: 'messagesPerSecond', label: 'echo: messages/s', digits: 0 },
  { scenario: 'fanout', name: 'cpuUsPerDelivery', label: 'fan-out: server CPU µs/delivery', digits: 2 },
  { scenario: 'fanout', name: 'systemUsPerDelivery', label: 'fan-out: of which in the kernel', digits: 2 },
  { scenario: 'fanout', name: 'p99Ms', label: 'fan-out: p99 ms', digits: 1 },
  { scenario: 'fanout', name: 'clientsCpuUsPerDelivery', label: 'fan-out: the clients\' CPU µs/delivery (p99 round)', digits: 2 },
  { scenario: 'fanout', name: 'burstDeliveriesPerSecond', label: 'burst: deliveries/s', digits: 0 },
  { scenario: 'idle', name: 'cpuUsPerConnect', label: 'connect: server CPU µs', digits: 0 },
  { scenario: 'idle', name: 'systemUsPerConnect', label: 'connect: of which in the kernel', digits: 0 },
  { scenario: 'idle', name: 'kbPerConnection', label: 'idle: heap + external KB/conn', digits: 2 },
  { scenario: 'idle', name: 'rssKbPerConnection', label: 'idle: RSS KB/conn', digits: 2 },
];

const fmtSpread = ({ median, min, max }: Spread, digits: number): string =>
  digits === 0 ? `${fmtInt(median)} (${fmtInt(min)}–${fmtInt(max)})` : `${median.toFixed(digits)} (${min.toFixed(digits)}–${max.toFixed(digits)})`;

function printFigures(results: GoalsResults): void {
  const systems: SystemSpec[] = [RELIABLE, RELIABLE_NO_RESUME, STOCK, RAW, RAW_ACKED, STOCK_HELLO, RAW_HELLO];
  printTable(
    ['median (min–max) of rounds', ...systems.map((spec) => spec.label)],
    FIGURES.filter(({ scenario }) => results[scenario]).map(({ scenario, name, label, digits }) => [
      label,
      ...systems.map((spec) => (results[scenario][spec.key] ? fmtSpread(spread(figure(results, scenario, spec.key, name)), digits) : '')),
    ]),
  );
}

function printGoals(goals: Goal[]): void {
  printTable(
    ['goal', 'target', 'measured: median (min–max)', 'met'],
    goals.map(({ goal, target, measured, unit, met }) => [goal, target, `${fmtSpread(measured, 2)}${unit === '×' ? '×' : ' KB'}`, met ? 'yes' : 'no']),
  );
}

function printRatios(heading: string, ratios: NamedRatio[]): void {
  printTable(
    [heading, 'measured: median (min–max)'],
    ratios.map(({ label, measured }) => [label, `${fmtSpread(measured, 2)}×`]),
  );
}

export async function run(): Promise<void> {
  console.log(
    `\n## goals: this package against the stock Nest WsAdapter and raw ws, ${ROUNDS} interleaved rounds, ` +
      `a fresh server child per system and scenario (servers on CPU 0, clients on the other core)` +
      `${CLIENT_ACKS ? '' : '; the fan-out\'s rws.v1 clients send no $acks (BENCH_GOALS_ACKS=off): not a goals run, nothing saved'}\n`,
  );
  const results = await runRounds();
  console.log('');
  printFigures(results);
  const goals = goalsOf(results);
  console.log('');
  printGoals(goals);
  const controls = ratiosOf(results, CONTROLS);
  console.log('');
  printRatios('control: the same server twice in every round', controls);
  const comparisons = ratiosOf(results, COMPARISONS);
  console.log('');
  printRatios('comparison (no goal)', comparisons);
  if (SCENARIOS.some(({ name }) => !results[name]) || !CLIENT_ACKS) return;
  mkdirSync(RESULTS_DIR, { recursive: true });
  const machine = { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', node: process.version };
  const file = resolve(RESULTS_DIR, 'goals.json');
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, rounds: ROUNDS, results, goals, controls, comparisons }, null, 2)}\n`);
  console.log(`\nresults: ${file}`);
  const plot = await renderPlot();
  console.log(plot ? `plot: ${plot}` : 'plot: not drawn (no Chromium at /usr/bin/chromium)');
}
