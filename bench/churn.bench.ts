/**
 * Anonymous churn against the chat sample (a benchmark, not a test): the sample app, compiled,
 * in memory, runs in a child process of its own (`--expose-gc`); client processes connect
 * (`rws.v1`), send `$hello`, wait for the sample's `welcome` and drop the connection without a
 * close frame, as fast as they go, for CHURN_CYCLES cycles. Every dropped session is kept
 * detached for a resume (`resume.ttlMs`, 2 min), within the library's bounds.
 *
 * Reports cycles per second (over the whole run and per 10,000 cycles: a rate that sinks as
 * sessions pile up would show there) and the server's heap used and RSS after the run (two full
 * garbage collections first), with the sessions and sample names it still holds.
 *
 * The sample keeps the default `maxConnectionsPerIp` (1000), and detached sessions count toward
 * their address's share; the clients spread over CHURN_ADDRESSES loopback source addresses
 * (127.0.0.2 …), and a second run churns from one address only (127.0.0.1), which keeps at most
 * 1000 sessions: beyond, its own oldest detached sessions are evicted. A third run adds a `join`
 * of one room to every cycle: each join is a presence line to every member of the room, within
 * the sample's presence budget.
 *
 * Environment: BENCH_CHURN_CYCLES (default 50000), BENCH_CHURN_ADDRESSES (default 20).
 * Run with `npm run bench` (or `node dist-bench/bench/run-all.js churn`).
 */
import { fmtInt, MiB, printTable } from './bench-support.js';
import {
  BenchChild,
  compiledScript,
  loopbackAddresses,
  memoryOf,
  plainScript,
  shareOf,
  startServerChild,
  untilNoConnection,
  type ChildMessage,
  type MemoryReport,
} from './child-process.js';

const CHURN_CYCLES = Number(process.env.BENCH_CHURN_CYCLES ?? 50_000);
const CHURN_ADDRESSES = Number(process.env.BENCH_CHURN_ADDRESSES ?? 20);
const CLIENT_PROCESSES = 2;
const IN_FLIGHT_PER_PROCESS = 32;
const SEGMENT_CYCLES = 10_000;
const RUN_TIMEOUT_MS = 15 * 60_000;

interface ChurnRun {
  label: string;
  completed: number;
  failed: number;
  elapsedMs: number;
  /** Cycles per second of each SEGMENT_CYCLES completed cycles. */
  segmentRates: number[];
  errors: Record<string, number>;
  before: MemoryReport;
  after: MemoryReport;
}

interface ClientDone extends ChildMessage {
  completed: number;
  failed: number;
  errors: Record<string, number>;
}

export async function run(): Promise<ChurnRun[]> {
  console.log(
    `\n== churn: the chat sample (in memory, default options) in its own process; ${fmtInt(CHURN_CYCLES)} anonymous ` +
      `connect / $hello / welcome / drop cycles from ${CLIENT_PROCESSES} client processes × ${IN_FLIGHT_PER_PROCESS} in flight ==`,
  );
  const runs = [
    await churn(`${CHURN_ADDRESSES} addresses`, loopbackAddresses(CHURN_ADDRESSES)),
    await churn('1 address', [null]),
    await churn(`${CHURN_ADDRESSES} addresses, join #churn`, loopbackAddresses(CHURN_ADDRESSES), 'churn'),
  ];
  printRuns(runs);
  return runs;
}

async function churn(label: string, addresses: Array<string | null>, join?: string): Promise<ChurnRun> {
  const { child: server, port } = await startServerChild('churn server', compiledScript('churn-server.js'));
  const clients: BenchChild[] = [];
  try {
    const before = await memoryOf(server);
    const progress = new ChurnProgress(CLIENT_PROCESSES);
    const started = performance.now();
    for (let i = 0; i < CLIENT_PROCESSES; i++) {
      const client = startClient(`ws://127.0.0.1:${port}/ws`, addresses, shareOf(CHURN_CYCLES, CLIENT_PROCESSES, i), join);
      client.on('progress', (message) => progress.update(i, Number(message.completed), performance.now() - started));
      clients.push(client);
    }
    const results = await Promise.all(clients.map((client) => client.next<ClientDone>('done', RUN_TIMEOUT_MS)));
    const elapsedMs = performance.now() - started;
    await untilNoConnection(server, 30000);
    const after = await memoryOf(server);
    return {
      label,
      completed: sum(results.map((result) => result.completed)),
      failed: sum(results.map((result) => result.failed)),
      elapsedMs,
      segmentRates: progress.segmentRates(),
      errors: mergeCounts(results.map((result) => result.errors)),
      before,
      after,
    };
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await server.stop(30000);
  }
}

function startClient(url: string, addresses: Array<string | null>, cycles: number, join?: string): BenchChild {
  const config = { url, addresses, cycles, concurrency: IN_FLIGHT_PER_PROCESS, until: 'welcome', join, lifetimeMs: RUN_TIMEOUT_MS };
  return new BenchChild('churn client', plainScript('churn-client.mjs'), { args: [JSON.stringify(config)], role: 'client' });
}

/** When the completed cycles of all client processes together crossed each SEGMENT_CYCLES mark. */
class ChurnProgress {
  private readonly completedBy: number[];
  private readonly segmentEnds: number[] = [];

  constructor(processes: number) {
    this.completedBy = new Array<number>(processes).fill(0);
  }

  update(process: number, completed: number, atMs: number): void {
    this.completedBy[process] = completed;
    const total = sum(this.completedBy);
    while (total >= (this.segmentEnds.length + 1) * SEGMENT_CYCLES) this.segmentEnds.push(atMs);
  }

  segmentRates(): number[] {
    return this.segmentEnds.map((end, i) => (SEGMENT_CYCLES * 1000) / (end - (i === 0 ? 0 : this.segmentEnds[i - 1])));
  }
}

function printRuns(runs: ChurnRun[]): void {
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
  printTable(
    ['source', 'cycles done', 'failed', 'cycles/s', 'per 10k cycles (cycles/s)', 'server CPU', 'sessions kept', 'names kept', 'heap before', 'heap after', 'RSS after'],
    runs.map((r) => [
      r.label,
      fmtInt(r.completed),
      fmtInt(r.failed),
      fmtInt((r.completed * 1000) / r.elapsedMs),
      r.segmentRates.map(fmtInt).join(' / ') || '-',
      `${fmtInt(((r.after.cpuMs - r.before.cpuMs) * 1000) / (r.completed + r.failed))} µs/cycle, ${fmtInt(((r.after.cpuMs - r.before.cpuMs) / r.elapsedMs) * 100)} % busy`,
      fmtInt(r.after.sessions),
      fmtInt(r.after.app.names ?? NaN),
      mib(r.before.heapUsed),
      mib(r.after.heapUsed),
      mib(r.after.rss),
    ]),
  );
  for (const r of runs) {
    const reasons = Object.entries(r.errors);
    if (reasons.length > 0) console.log(`${r.label}, failures: ${reasons.map(([reason, n]) => `${reason} × ${fmtInt(n)}`).join('; ')}`);
  }
  console.log(
    'server CPU: user + system time of the server process per cycle, and its share of the run (100 %: one core saturated); ' +
      'heap: used after two full GCs in the server process; sessions kept: connected or detached, after the run',
  );
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function mergeCounts(counts: Array<Record<string, number>>): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const entry of counts) for (const [key, n] of Object.entries(entry)) merged[key] = (merged[key] ?? 0) + n;
  return merged;
}
