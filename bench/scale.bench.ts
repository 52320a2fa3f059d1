/**
 * Scale on one box (a benchmark, not a test): INSTANCES server instances, each a child process
 * of its own (scale-server.ts, default options, Redis broadcast under a unique channel prefix),
 * CONNECTIONS idle `rws.v1` clients on each (`$hello`, pushes acknowledged), held by client
 * processes of at most SOCKETS_PER_CLIENT_PROCESS sockets each (a process may hold 20,000 open
 * files). One more instance without clients publishes. Measured per instance:
 *   - connect: server CPU per connection while all clients connect;
 *   - memory: RSS of the instance, and RSS and heap + external per connection over the empty
 *     instance, after two full garbage collections;
 *   - heartbeat: server CPU per second while every connection sits idle for two heartbeat
 *     intervals (the default), next to the publisher's (an instance with no connection);
 *   - broadcast: one `toAll` published once through Redis by the publisher: time from the
 *     publish to the first and the last delivery (the clients' wall clock against the
 *     publisher's), and the deliveries, which must be exactly one per connection, counted again
 *     DOUBLES_GRACE_MS after the last.
 *
 * Environment: BENCH_SCALE_INSTANCES (default 5), BENCH_SCALE_CONNECTIONS (per instance, default
 * 19,000). Results: a table and bench/results/scale.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULT_OPTIONS } from '../lib/reliable-ws.options.js';
import { fmtInt, fmtMs, MiB, printTable, RESULTS_DIR, sleep, Swarm, uniquePrefix, type RoundResult } from './bench-support.js';
import { BenchChild, compiledScript, memoryOf, shareOf, startServerChild, type ChildMessage, type MemoryReport } from './child-process.js';

const INSTANCES = Number(process.env.BENCH_SCALE_INSTANCES ?? 5);
const CONNECTIONS = Number(process.env.BENCH_SCALE_CONNECTIONS ?? 19_000);
const SOCKETS_PER_CLIENT_PROCESS = 9_500;
const CONNECT_CONCURRENCY = 50;
const CONNECT_TIMEOUT_MS = 600_000;
const IDLE_MS = 2 * DEFAULT_OPTIONS.heartbeat.intervalMs;
const BROADCAST_TIMEOUT_MS = 120_000;
const DOUBLES_GRACE_MS = 2_000;
const EVENT = 'tick';
const ROUND = 1;
/** Client processes outlive every step of the run, and no more. */
const CLIENT_LIFETIME_MS = CONNECT_TIMEOUT_MS + IDLE_MS + BROADCAST_TIMEOUT_MS + 120_000;

interface Instance {
  child: BenchChild;
  url: string;
  swarms: Swarm[];
}

interface InstanceFigures {
  connections: number;
  rssMiB: number;
  rssKbPerConnection: number;
  heapExternalKbPerConnection: number;
  cpuUsPerConnect: number;
  idleCpuMsPerSecond: number;
}

async function startInstance(name: string, prefix: string): Promise<Instance> {
  const { child, port } = await startServerChild(name, compiledScript('scale-server.js'), [prefix]);
  return { child, url: `ws://127.0.0.1:${port}/ws`, swarms: [] };
}

async function cpuMs(instance: Instance): Promise<number> {
  return (await instance.child.request<ChildMessage & { cpuMs: number }>({ type: 'cpu' }, 30_000)).cpuMs;
}

const cpuOfAll = (instances: Instance[]): Promise<number[]> => Promise.all(instances.map(cpuMs));

/** Opens the instance's clients in processes of at most SOCKETS_PER_CLIENT_PROCESS sockets. */
async function connect(instance: Instance): Promise<void> {
  const processes = Math.ceil(CONNECTIONS / SOCKETS_PER_CLIENT_PROCESS);
  const settled = await Promise.allSettled(
    Array.from({ length: processes }, (_, i) =>
      Swarm.open(
        { url: instance.url, kind: 'rws1', count: shareOf(CONNECTIONS, processes, i), concurrency: CONNECT_CONCURRENCY, lifetimeMs: CLIENT_LIFETIME_MS },
        CONNECT_TIMEOUT_MS,
      ).then((swarm) => void instance.swarms.push(swarm)),
    ),
  );
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
}

async function connectionsOf(instance: Instance): Promise<number> {
  return (await instance.child.request<ChildMessage & { connections: number }>({ type: 'counts' }, 30_000)).connections;
}

async function expectConnections(instances: Instance[], when: string): Promise<void> {
  const counts = await Promise.all(instances.map(connectionsOf));
  const wrong = counts.findIndex((count) => count !== CONNECTIONS);
  if (wrong >= 0) throw new Error(`${when}: instance ${wrong + 1} has ${counts[wrong]} connections, not ${CONNECTIONS}`);
}

interface BroadcastFigures {
  deliveries: number;
  expected: number;
  completeClients: number;
  /** Until the publisher's `toAll` resolved (numbered, kept and published by Redis). */
  publishMs: number;
  firstMs: number;
  p50Ms: number;
  p99Ms: number;
  lastMs: number;
}

/** One `toAll` from the publisher, through Redis, to every client of every instance. */
async function broadcastOnce(publisher: Instance, instances: Instance[]): Promise<BroadcastFigures> {
  const swarms = instances.flatMap((instance) => instance.swarms);
  await Promise.all(swarms.map((swarm) => swarm.arm(ROUND, 1, EVENT, true)));
  const { t, publishMs } = await publisher.child.request<ChildMessage & { t: number; publishMs: number }>({ type: 'publish', event: EVENT, round: ROUND }, BROADCAST_TIMEOUT_MS);
  const results = await Promise.all(swarms.map((swarm) => swarm.result(BROADCAST_TIMEOUT_MS)));
  await sleep(DOUBLES_GRACE_MS);
  const tallies = await Promise.all(swarms.map((swarm) => swarm.tally()));
  const weighted = (pick: (result: RoundResult) => number): number =>
    results.reduce((sum, result) => sum + pick(result) * (result.latency?.n ?? 0), 0) / results.reduce((sum, result) => sum + (result.latency?.n ?? 0), 0);
  return {
    deliveries: tallies.reduce((sum, tally) => sum + tally.received, 0),
    expected: INSTANCES * CONNECTIONS,
    completeClients: tallies.reduce((sum, tally) => sum + tally.completedClients, 0),
    publishMs,
    firstMs: Math.min(...results.map((result) => result.firstAt)) - t,
    // Per client process medians and p99s, weighted by deliveries: close to, not exactly, the overall ones.
    p50Ms: weighted((result) => result.latency?.p50 ?? NaN),
    p99Ms: weighted((result) => result.latency?.p99 ?? NaN),
    lastMs: Math.max(...results.map((result) => result.lastAt)) - t,
  };
}

async function measure(publisher: Instance, instances: Instance[]): Promise<{ perInstance: InstanceFigures[]; publisherIdleCpuMsPerSecond: number; broadcast: BroadcastFigures }> {
  const empty = await Promise.all(instances.map((instance) => memoryOf(instance.child)));
  const beforeConnect = await cpuOfAll(instances);
  const connectStarted = Date.now();
  // One instance after another: five servers share one core, and a $hello answered after its
  // deadline (5 s) closes the connection with 4008.
  for (const instance of instances) await connect(instance);
  const afterConnect = await cpuOfAll(instances);
  console.log(`  ${fmtInt(INSTANCES * CONNECTIONS)} connections open in ${((Date.now() - connectStarted) / 1000).toFixed(1)} s`);
  await expectConnections(instances, 'after connecting');
  const held: MemoryReport[] = await Promise.all(instances.map((instance) => memoryOf(instance.child)));

  const everyone = [publisher, ...instances];
  const idleBefore = await cpuOfAll(everyone);
  const idleStarted = performance.now();
  await sleep(IDLE_MS);
  const idleAfter = await cpuOfAll(everyone);
  const idleSeconds = (performance.now() - idleStarted) / 1000;
  const idlePerSecond = idleAfter.map((after, i) => (after - idleBefore[i]) / idleSeconds);
  await expectConnections(instances, `after ${IDLE_MS / 1000} s idle`);
  console.log(`  idle ${idleSeconds.toFixed(1)} s (two heartbeat intervals) measured`);

  const broadcast = await broadcastOnce(publisher, instances);
  const perInstance = instances.map((_, i) => ({
    connections: held[i].connections,
    rssMiB: held[i].rss / MiB,
    rssKbPerConnection: (held[i].rss - empty[i].rss) / 1000 / CONNECTIONS,
    heapExternalKbPerConnection: (held[i].heapUsed + held[i].external - empty[i].heapUsed - empty[i].external) / 1000 / CONNECTIONS,
    cpuUsPerConnect: ((afterConnect[i] - beforeConnect[i]) * 1000) / CONNECTIONS,
    idleCpuMsPerSecond: idlePerSecond[i + 1],
  }));
  return { perInstance, publisherIdleCpuMsPerSecond: idlePerSecond[0], broadcast };
}

function total(figures: InstanceFigures[]): InstanceFigures {
  const sum = (pick: (f: InstanceFigures) => number): number => figures.reduce((s, f) => s + pick(f), 0);
  const mean = (pick: (f: InstanceFigures) => number): number => sum(pick) / figures.length;
  return {
    connections: sum((f) => f.connections),
    rssMiB: sum((f) => f.rssMiB),
    rssKbPerConnection: mean((f) => f.rssKbPerConnection),
    heapExternalKbPerConnection: mean((f) => f.heapExternalKbPerConnection),
    cpuUsPerConnect: mean((f) => f.cpuUsPerConnect),
    idleCpuMsPerSecond: sum((f) => f.idleCpuMsPerSecond),
  };
}

function printResults(perInstance: InstanceFigures[], publisherIdle: number, broadcast: BroadcastFigures): void {
  const row = (name: string, f: InstanceFigures): string[] => [
    name,
    fmtInt(f.connections),
    fmtMs(f.rssMiB, 0),
    fmtMs(f.rssKbPerConnection),
    fmtMs(f.heapExternalKbPerConnection),
    fmtMs(f.cpuUsPerConnect, 0),
    fmtMs(f.idleCpuMsPerSecond),
  ];
  printTable(
    ['instance', 'connections', 'RSS MiB', 'RSS KB/conn', 'heap+ext KB/conn', 'connect CPU µs', 'idle CPU ms/s'],
    [...perInstance.map((f, i) => row(`instance ${i + 1}`, f)), row('all (sum; per connection: mean)', total(perInstance))],
  );
  console.log(`\npublisher (no connection), idle CPU: ${fmtMs(publisherIdle)} ms/s\n`);
  printTable(
    ['one toAll through Redis', 'deliveries', 'expected', 'publish ms', 'first ms', 'p50 ms', 'p99 ms', 'last ms'],
    [
      [
        `${INSTANCES} instances`,
        fmtInt(broadcast.deliveries),
        fmtInt(broadcast.expected),
        fmtMs(broadcast.publishMs, 1),
        fmtMs(broadcast.firstMs, 1),
        fmtMs(broadcast.p50Ms, 1),
        fmtMs(broadcast.p99Ms, 1),
        fmtMs(broadcast.lastMs, 1),
      ],
    ],
  );
}

export async function run(): Promise<void> {
  console.log(
    `\n## scale: ${INSTANCES} instances × ${fmtInt(CONNECTIONS)} idle rws.v1 connections behind Redis, ` +
      `each instance a child process (servers on CPU 0, clients on the other core)\n`,
  );
  const prefix = uniquePrefix('scale');
  const started: Instance[] = [];
  try {
    const publisher = await startInstance('scale publisher', prefix);
    started.push(publisher);
    for (let i = 0; i < INSTANCES; i++) started.push(await startInstance(`scale instance ${i + 1}`, prefix));
    const instances = started.slice(1);
    const { perInstance, publisherIdleCpuMsPerSecond, broadcast } = await measure(publisher, instances);
    printResults(perInstance, publisherIdleCpuMsPerSecond, broadcast);
    mkdirSync(RESULTS_DIR, { recursive: true });
    const machine = { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 1024 ** 3, node: process.version };
    const file = resolve(RESULTS_DIR, 'scale.json');
    const config = { instances: INSTANCES, connectionsPerInstance: CONNECTIONS, heartbeatIntervalMs: DEFAULT_OPTIONS.heartbeat.intervalMs, idleMs: IDLE_MS };
    const results = { perInstance, total: total(perInstance), publisherIdleCpuMsPerSecond, broadcast };
    writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, config, results }, null, 2)}\n`);
    console.log(`\nresults: ${file}`);
    if (broadcast.deliveries !== broadcast.expected || broadcast.completeClients !== broadcast.expected) {
      throw new Error(`scale: ${broadcast.deliveries} deliveries to ${broadcast.completeClients} clients, not exactly one to each of ${broadcast.expected}`);
    }
  } finally {
    await Promise.all(started.flatMap((instance) => instance.swarms).map((swarm) => swarm.stop()));
    await Promise.all(started.map((instance) => instance.child.stop(30_000)));
  }
}
