/**
 * Memory per detached session (a benchmark, not a test): a minimal gateway on the library with
 * its default options runs in a child process of its own (`--expose-gc`). Client processes open
 * DETACHED_SESSIONS `rws.v1` sessions, the server pushes to every session (broadcasts, whose
 * serialised payload all the replay buffers share, or a payload of each session's own), the
 * clients receive the pushes (and acknowledge them, in the first scenario) and drop their
 * connections without a close frame, so that every session waits detached for a resume.
 *
 * Heap used is taken after two full garbage collections: before any connection, with every
 * session connected, and once every connection is gone. Per session = growth / sessions kept.
 * Each scenario starts a fresh server.
 *
 * The default `maxConnectionsPerIp` (1000) counts detached sessions too, so the clients spread
 * over SOURCE_ADDRESSES loopback addresses (127.0.0.2 …).
 *
 * Environment: BENCH_DETACHED_SESSIONS (default 10000).
 * Run with `npm run bench` (or `node dist-bench/bench/run-all.js detached-memory`).
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

const DETACHED_SESSIONS = Number(process.env.BENCH_DETACHED_SESSIONS ?? 10_000);
const SOURCE_ADDRESSES = 20;
const CLIENT_PROCESSES = 2;
const STEP_TIMEOUT_MS = 120_000;

interface Scenario {
  label: string;
  pushes: number;
  bytes: number;
  /** 'all': broadcasts, whose payload every session's buffer shares; 'each': a payload per session. */
  to: 'all' | 'each';
  acknowledged: boolean;
}

const SCENARIOS: Scenario[] = [
  { label: '3 small broadcasts, acknowledged', pushes: 3, bytes: 16, to: 'all', acknowledged: true },
  { label: '3 small broadcasts, kept', pushes: 3, bytes: 16, to: 'all', acknowledged: false },
  { label: '10 × 1 KB broadcasts, kept', pushes: 10, bytes: 1024, to: 'all', acknowledged: false },
  { label: '10 × 1 KB pushes of its own, kept', pushes: 10, bytes: 1024, to: 'each', acknowledged: false },
];

interface Measurement {
  scenario: Scenario;
  sessions: number;
  empty: MemoryReport;
  connected: MemoryReport;
  detached: MemoryReport;
}

export async function run(): Promise<Measurement[]> {
  console.log(
    `\n== memory per session: ${fmtInt(DETACHED_SESSIONS)} rws.v1 sessions on a minimal gateway (default options) ` +
      `in its own process, pushed to, then dropped (detached, waiting for a resume) ==`,
  );
  const measurements: Measurement[] = [];
  for (const scenario of SCENARIOS) measurements.push(await measure(scenario));
  printMeasurements(measurements);
  return measurements;
}

async function measure(scenario: Scenario): Promise<Measurement> {
  const { child: server, port } = await startServerChild('detached-memory server', compiledScript('detached-memory-server.js'));
  const clients: BenchChild[] = [];
  try {
    const empty = await memoryOf(server);
    const addresses = loopbackAddresses(SOURCE_ADDRESSES);
    for (let i = 0; i < CLIENT_PROCESSES; i++) {
      // Each process takes its own half of the addresses, so that the per-address counts stay even.
      const own = addresses.filter((_, index) => index % CLIENT_PROCESSES === i);
      clients.push(startClient(`ws://127.0.0.1:${port}/ws`, own, shareOf(DETACHED_SESSIONS, CLIENT_PROCESSES, i)));
    }
    await Promise.all(clients.map(expectAllOpened));
    await server.request({ type: 'push', count: scenario.pushes, bytes: scenario.bytes, to: scenario.to }, STEP_TIMEOUT_MS);
    await Promise.all(
      clients.map((client) => client.request({ type: 'pushes', seq: scenario.pushes, ack: scenario.acknowledged }, STEP_TIMEOUT_MS)),
    );
    const connected = await memoryOf(server);
    await Promise.all(clients.map((client) => client.request({ type: 'drop' }, STEP_TIMEOUT_MS)));
    await untilNoConnection(server, STEP_TIMEOUT_MS);
    const detached = await memoryOf(server);
    return { scenario, sessions: detached.sessions, empty, connected, detached };
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await server.stop(30000);
  }
}

function startClient(url: string, addresses: string[], count: number): BenchChild {
  const config = { url, addresses, count, concurrency: 100, lifetimeMs: 10 * 60_000 };
  return new BenchChild('session client', plainScript('session-client.mjs'), { args: [JSON.stringify(config)], role: 'client' });
}

async function expectAllOpened(client: BenchChild): Promise<void> {
  const opened = await client.next<ChildMessage & { failed: number; errors: string[] }>('opened', STEP_TIMEOUT_MS);
  if (opened.failed > 0) throw new Error(`${opened.failed} connections failed: ${opened.errors.join('; ')}`);
}

/** Bytes of push payload each session holds for replay (the serialised `data` of each push, shared or not). */
function payloadKept({ pushes, bytes, acknowledged }: Scenario): number {
  return acknowledged ? 0 : pushes * JSON.stringify({ i: pushes - 1, text: 'x'.repeat(bytes) }).length;
}

function printMeasurements(measurements: Measurement[]): void {
  const perSession = (grown: number, sessions: number) => fmtInt(grown / sessions);
  printTable(
    ['scenario', 'sessions kept', 'payload kept/session', 'heap/connected session', 'heap/detached session', 'heap, all detached', 'RSS empty → detached'],
    measurements.map(({ scenario, sessions, empty, connected, detached }) => [
      scenario.label,
      fmtInt(sessions),
      `${fmtInt(payloadKept(scenario))} B`,
      `${perSession(connected.heapUsed - empty.heapUsed, connected.connections)} B`,
      `${perSession(detached.heapUsed - empty.heapUsed, sessions)} B`,
      `${((detached.heapUsed - empty.heapUsed) / MiB).toFixed(1)} MiB`,
      `${(empty.rss / MiB).toFixed(0)} → ${(detached.rss / MiB).toFixed(0)} MiB`,
    ]),
  );
  console.log('heap: used after two full GCs in the server process, growth over the empty server; RSS: the whole server process');
}
