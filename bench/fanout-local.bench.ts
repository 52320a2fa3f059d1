/**
 * Local fan-out to 10,000 clients (a benchmark, not a test).
 *
 * One server in this process; CLIENTS `ws` clients spread over SWARM_PROCESSES child processes
 * (each reports when every one of its clients got every message). The server broadcasts
 * MESSAGES messages of ~1 KiB to everybody; measured: time from the first broadcast call until
 * the last client got the last message, the server's synchronous send-loop time, per-client
 * completion p50/p99, and the server's heap: per-connection cost, growth right after the send
 * loop (frames built and queued, not yet collected), and what stays after delivery and a full GC.
 * Each server gets a warm-up round, then MEASURED_ROUNDS rounds; the table shows the round with
 * the median delivery time.
 *
 * Servers: BroadcastService.toAll (with sessions, and with `resume: false`), a stock Nest
 * WsAdapter gateway looping over its clients, a raw `ws` server stringifying per recipient, one
 * pre-serialised string, and, as a reference for what batching the writes of one tick buys, the
 * same with each socket corked until the end of the tick (the 20 broadcasts of a round are issued
 * in one tick). Every `ws.send` is otherwise its own write(v) system call, which dominates the
 * server's CPU time.
 */
import 'reflect-metadata';
import { SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer as WsServer, type WebSocket } from 'ws';
import { BroadcastService, ReliableGateway, SessionRegistry } from '../lib/index.js';
import {
  collectGarbage,
  fmtInt,
  MiB,
  percentile,
  printTable,
  startReliableApp,
  startStockNestApp,
  Swarm,
  systemSelected,
  waitUntil,
  wallNow,
  type RoundResult,
  runPinned,
} from './bench-support.js';

const CLIENTS = Number(process.env.BENCH_FANOUT_CLIENTS ?? 10000);
const SWARM_PROCESSES = Number(process.env.BENCH_FANOUT_PROCESSES ?? 4);
const MESSAGES = 20;
const MEASURED_ROUNDS = 3;
const EVENT = 'tick';
const PAD = 'x'.repeat(980); // a frame of about 1 KiB
const ROUND_TIMEOUT_MS = 60000;
const OPEN = 1;

interface Tick {
  r: number;
  i: number;
  t: number;
  pad: string;
}

interface System {
  name: string;
  /** How the clients connect: 'rws' waits for `$ready`. */
  kind: 'rws' | 'ws';
  url: string;
  /** Broadcasts one message to every connected client. */
  broadcast(tick: Tick): Promise<void> | void;
  connections(): number;
  close(): Promise<void>;
}

@ReliableGateway({ path: '/ws' })
class ReliableFanoutGateway {
  @SubscribeMessage('noop')
  noop(): void {}
}

@WebSocketGateway({ path: '/ws' })
class StockFanoutGateway {
  @WebSocketServer() server!: WsServer;

  @SubscribeMessage('noop')
  noop(): void {}

  /** What a stock gateway does: loop over the ws server's clients (payload serialised once). */
  broadcast(event: string, data: unknown): void {
    const frame = JSON.stringify({ event, data });
    for (const client of this.server.clients) if (client.readyState === OPEN) client.send(frame);
  }
}

async function reliableSystem(name: string, resume: boolean): Promise<System> {
  const app = await startReliableApp(
    { maxConnectionsPerIp: CLIENTS * 2, ...(resume ? {} : { resume: false }) },
    [ReliableFanoutGateway],
  );
  const broadcast = app.app.get(BroadcastService);
  const sessions = app.app.get(SessionRegistry);
  return {
    name,
    kind: 'rws',
    url: `ws://127.0.0.1:${app.port}/ws`,
    broadcast: (tick) => broadcast.toAll(EVENT, tick),
    connections: () => sessions.connectionCount,
    close: () => app.close(),
  };
}

async function stockNestSystem(): Promise<System> {
  const app = await startStockNestApp([StockFanoutGateway]);
  const gateway = app.app.get(StockFanoutGateway);
  return {
    name: 'Nest WsAdapter gateway (loop, stringify once)',
    kind: 'ws',
    url: `ws://127.0.0.1:${app.port}/ws`,
    broadcast: (tick) => gateway.broadcast(EVENT, tick),
    connections: () => gateway.server.clients.size,
    close: () => app.close(),
  };
}

type SendMode = 'per-recipient' | 'shared' | 'shared-corked';

async function rawWsSystem(name: string, mode: SendMode): Promise<System> {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const { port } = wss.address() as AddressInfo;
  const corked = new Set<Duplex>();
  const uncorkAll = () => {
    for (const socket of corked) socket.uncork();
    corked.clear();
  };
  const send = (client: WebSocket, frame: string) => {
    if (client.readyState !== OPEN) return;
    if (mode === 'shared-corked') {
      // What batching within a tick looks like: the frames of one tick leave in one write per socket.
      const socket = (client as unknown as { _socket: Duplex })._socket;
      if (!corked.has(socket)) {
        if (corked.size === 0) process.nextTick(uncorkAll);
        socket.cork();
        corked.add(socket);
      }
    }
    client.send(frame);
  };
  return {
    name,
    kind: 'ws',
    url: `ws://127.0.0.1:${port}/`,
    broadcast:
      mode === 'per-recipient'
        ? (tick) => {
            for (const client of wss.clients) send(client, JSON.stringify({ event: EVENT, data: tick }));
          }
        : (tick) => {
            const frame = JSON.stringify({ event: EVENT, data: tick });
            for (const client of wss.clients) send(client, frame);
          },
    connections: () => wss.clients.size,
    close: () => new Promise((resolve) => wss.close(() => resolve())),
  };
}

interface RoundMetrics {
  deliveryMs: number;
  sendLoopMs: number;
  /** CPU time (user + system) of this process, the server's, from the first send until every client was done. */
  serverCpuMs: number;
  p50Ms: number;
  p99Ms: number;
  heapAfterSendMiB: number;
  externalAfterSendMiB: number;
  heapRetainedMiB: number;
  received: number;
  complete: boolean;
}

interface Measured {
  name: string;
  connectHeapMiB: number;
  round: RoundMetrics;
}

async function fanoutRound(system: System, swarms: Swarm[], round: number, messages: number): Promise<RoundMetrics> {
  await Promise.all(swarms.map((swarm) => swarm.arm(round, messages, EVENT, false)));
  collectGarbage();
  const before = process.memoryUsage();
  const cpuBefore = process.cpuUsage();
  const start = wallNow();
  const sends: Array<Promise<void> | void> = [];
  for (let i = 0; i < messages; i++) sends.push(system.broadcast({ r: round, i, t: wallNow(), pad: PAD }));
  await Promise.all(sends);
  const sendLoopMs = wallNow() - start;
  const afterSend = process.memoryUsage();
  const results: RoundResult[] = await Promise.all(swarms.map((swarm) => swarm.result(ROUND_TIMEOUT_MS)));
  const cpu = process.cpuUsage(cpuBefore);
  collectGarbage();
  const after = process.memoryUsage();
  const completions = results.flatMap((r) => r.completions).map((at) => at - start).sort((a, b) => a - b);
  const received = results.reduce((sum, r) => sum + r.received, 0);
  return {
    deliveryMs: completions.length ? completions[completions.length - 1] : NaN,
    sendLoopMs,
    serverCpuMs: (cpu.user + cpu.system) / 1000,
    p50Ms: percentile(completions, 50),
    p99Ms: percentile(completions, 99),
    heapAfterSendMiB: (afterSend.heapUsed - before.heapUsed) / MiB,
    externalAfterSendMiB: (afterSend.external + afterSend.arrayBuffers - before.external - before.arrayBuffers) / MiB,
    heapRetainedMiB: (after.heapUsed - before.heapUsed) / MiB,
    received,
    complete: results.every((r) => r.complete) && completions.length === CLIENTS,
  };
}

async function measure(make: () => Promise<System>): Promise<Measured | undefined> {
  collectGarbage();
  const baseline = process.memoryUsage().heapUsed;
  const system = await make();
  if (!systemSelected(system.name)) {
    await system.close();
    return undefined;
  }
  let swarms: Swarm[] = [];
  try {
    swarms = await Swarm.openMany({ url: system.url, kind: system.kind, count: CLIENTS, concurrency: 100 }, SWARM_PROCESSES);
    await waitUntil(() => system.connections() === CLIENTS, 10000, `${system.name}: ${CLIENTS} server-side connections`);
    collectGarbage();
    const connectHeapMiB = (process.memoryUsage().heapUsed - baseline) / MiB;
    await fanoutRound(system, swarms, 1, 2); // warm-up
    const rounds: RoundMetrics[] = [];
    for (let r = 0; r < MEASURED_ROUNDS; r++) rounds.push(await fanoutRound(system, swarms, 2 + r, MESSAGES));
    const incomplete = rounds.find((r) => !r.complete);
    if (incomplete) console.log(`  ${system.name}: a round was incomplete (${incomplete.received} of ${CLIENTS * MESSAGES} frames)`);
    const median = [...rounds].sort((a, b) => a.deliveryMs - b.deliveryMs)[rounds.length >> 1];
    return { name: system.name, connectHeapMiB, round: median };
  } catch (error) {
    console.log(`  ${system.name}: failed: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  } finally {
    await Promise.all(swarms.map((swarm) => swarm.stop()));
    await waitUntil(() => system.connections() === 0, 20000, `${system.name}: connections closed`).catch((error: Error) =>
      console.log(`  ${error.message}`),
    );
    await system.close();
  }
}

async function runBench(placement: string): Promise<Measured[]> {
  console.log(
    `\n## fanout-local: broadcast ${MESSAGES} × ~1 KiB to ${fmtInt(CLIENTS)} clients (${SWARM_PROCESSES} client processes; ` +
      `median of ${MEASURED_ROUNDS} rounds; ${placement})\n`,
  );
  const makers: Array<() => Promise<System>> = [
    () => reliableSystem('nestjs-reliable-ws toAll (sessions: seq per recipient)', true),
    () => reliableSystem('nestjs-reliable-ws toAll (resume: false)', false),
    () => stockNestSystem(),
    () => rawWsSystem('ws: JSON.stringify per recipient', 'per-recipient'),
    () => rawWsSystem('ws: one pre-serialised string', 'shared'),
    () => rawWsSystem('ws: pre-serialised, writes corked per tick', 'shared-corked'),
  ];
  const results: Measured[] = [];
  for (const make of makers) {
    const measured = await measure(make);
    if (measured) results.push(measured);
  }
  const deliveries = CLIENTS * MESSAGES;
  printTable(
    ['server', 'delivery ms', 'frames/s', 'send loop ms', 'server CPU ms', 'client p50 ms', 'client p99 ms', 'heap/conn KiB', 'heap Δ send MiB', 'ext Δ send MiB', 'heap kept MiB'],
    results.map(({ name, connectHeapMiB, round }) => [
      name,
      round.deliveryMs.toFixed(0),
      fmtInt(deliveries / (round.deliveryMs / 1000)),
      round.sendLoopMs.toFixed(0),
      round.serverCpuMs.toFixed(0),
      round.p50Ms.toFixed(0),
      round.p99Ms.toFixed(0),
      ((connectHeapMiB * 1024) / CLIENTS).toFixed(2),
      round.heapAfterSendMiB.toFixed(1),
      round.externalAfterSendMiB.toFixed(1),
      round.heapRetainedMiB.toFixed(1),
    ]),
  );
  return results;
}

export function run(): ReturnType<typeof runBench> {
  return runPinned(runBench);
}
