/**
 * Request/reply round trips (a benchmark, not a test).
 *
 * CONNECTIONS clients in one child process send MESSAGES small messages in all, pipelined: at
 * most WINDOW outstanding per connection; each answer releases the next message. Latency is
 * measured in the client process (send → answer). Servers, each in this process:
 *   - ReliableWsAdapter with a `@ReliableGateway` (guard, rate-limit and validation
 *     interceptors, error filter; the rate limit raised so that nothing is rejected): a plain
 *     client with ids answered `{ event, data, ref }`, and an rws.v1 client (`$hello`, ids 1, 2, 3 …);
 *   - the stock Nest WsAdapter with a `@WebSocketGateway` returning `{ event, data }` (no id
 *     correlation in its protocol: the id travels in the data);
 *   - a raw `ws` server that parses each frame and answers with JSON.stringify;
 *   - Socket.IO 4.8 with acknowledgements (websocket transport only).
 * Each server: a warm-up run, then MEASURED_RUNS runs; the table shows the run with the median rate.
 */
import 'reflect-metadata';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer as WsServer } from 'ws';
import { ReliableGateway } from '../lib/index.js';
import {
  fmtInt,
  fmtMs,
  printTable,
  startReliableApp,
  startStockNestApp,
  Swarm,
  systemSelected,
  type RequestReplyResult,
  type SwarmKind,
  runPinned,
} from './bench-support.js';

const CONNECTIONS = 50;
const MESSAGES = 20000;
const WARMUP_MESSAGES = 2000;
const WINDOW = 10;
const PAYLOAD_BYTES = 64;
const MEASURED_RUNS = 5;
const RUN_TIMEOUT_MS = 60000;

interface System {
  name: string;
  kind: SwarmKind;
  url: string;
  close(): Promise<void>;
}

@ReliableGateway({ path: '/ws' })
class ReliableEchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }
}

@WebSocketGateway({ path: '/ws' })
class StockEchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'echo', data };
  }
}

async function reliableSystem(name: string, kind: SwarmKind): Promise<System> {
  const app = await startReliableApp({ rateLimit: { points: 1_000_000_000, durationMs: 1000 } }, [ReliableEchoGateway]);
  return { name, kind, url: `ws://127.0.0.1:${app.port}/ws`, close: () => app.close() };
}

async function stockNestSystem(): Promise<System> {
  const app = await startStockNestApp([StockEchoGateway]);
  return { name: 'Nest WsAdapter gateway', kind: 'ws', url: `ws://127.0.0.1:${app.port}/ws`, close: () => app.close() };
}

async function rawWsSystem(): Promise<System> {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (raw) => {
      const { event, data } = JSON.parse(raw.toString()) as { event: string; data: unknown };
      ws.send(JSON.stringify({ event, data }));
    });
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const { port } = wss.address() as AddressInfo;
  return {
    name: 'ws echo (parse + stringify)',
    kind: 'ws',
    url: `ws://127.0.0.1:${port}/`,
    close: () => {
      for (const client of wss.clients) client.terminate();
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}

async function socketIoSystem(): Promise<System> {
  const { Server } = await import('socket.io');
  const http = createServer();
  const io = new Server(http, { serveClient: false, transports: ['websocket'] });
  io.on('connection', (socket) => {
    socket.on('echo', (data: unknown, ack: (reply: unknown) => void) => ack(data));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return { name: 'Socket.IO (emit with ack)', kind: 'sio', url: `http://127.0.0.1:${port}`, close: () => io.close() };
}

interface Measured {
  name: string;
  run: RequestReplyResult;
  /** CPU time (user + system) of this process, the server's, during the run. */
  serverCpuMs: number;
}

async function measure(make: () => Promise<System>): Promise<Measured | undefined> {
  const system = await make();
  if (!systemSelected(system.name)) {
    await system.close();
    return undefined;
  }
  let swarm: Swarm | undefined;
  try {
    swarm = await Swarm.open({ url: system.url, kind: system.kind, count: CONNECTIONS, concurrency: CONNECTIONS });
    await swarm.requestReply(WARMUP_MESSAGES, WINDOW, PAYLOAD_BYTES, RUN_TIMEOUT_MS);
    const runs: Array<{ run: RequestReplyResult; serverCpuMs: number }> = [];
    for (let i = 0; i < MEASURED_RUNS; i++) {
      const before = process.cpuUsage();
      const run = await swarm.requestReply(MESSAGES, WINDOW, PAYLOAD_BYTES, RUN_TIMEOUT_MS);
      const cpu = process.cpuUsage(before);
      runs.push({ run, serverCpuMs: (cpu.user + cpu.system) / 1000 });
    }
    const errors = runs.flatMap((r) => r.run.errors);
    if (errors.length > 0) console.log(`  ${system.name}: errors: ${errors.slice(0, 3).join('; ')}`);
    const median = [...runs].sort((a, b) => a.run.elapsedMs - b.run.elapsedMs)[runs.length >> 1];
    return { name: system.name, ...median };
  } catch (error) {
    console.log(`  ${system.name}: failed: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  } finally {
    await swarm?.stop();
    await system.close();
  }
}

async function runBench(placement: string): Promise<Measured[]> {
  console.log(
    `\n## adapter-roundtrip: ${fmtInt(MESSAGES)} request/reply over ${CONNECTIONS} connections, window ${WINDOW} per connection, ` +
      `~${PAYLOAD_BYTES} B payload (median of ${MEASURED_RUNS} runs; ${placement})\n`,
  );
  const makers: Array<() => Promise<System>> = [
    () => reliableSystem('ReliableWsAdapter @ReliableGateway (plain client)', 'rws'),
    () => reliableSystem('ReliableWsAdapter @ReliableGateway (rws.v1 client)', 'rws1'),
    stockNestSystem,
    rawWsSystem,
    socketIoSystem,
  ];
  const results: Measured[] = [];
  for (const make of makers) {
    const measured = await measure(make);
    if (measured) results.push(measured);
  }
  printTable(
    ['server', 'msgs/s', 'server CPU µs/msg', 'p50 ms', 'p99 ms', 'max ms', 'answered'],
    results.map(({ name, run: r, serverCpuMs }) => [
      name,
      fmtInt(r.messages / (r.elapsedMs / 1000)),
      ((serverCpuMs * 1000) / r.messages).toFixed(1),
      fmtMs(r.latency.p50),
      fmtMs(r.latency.p99),
      fmtMs(r.latency.max),
      `${r.messages}/${MESSAGES}`,
    ]),
  );
  return results;
}

export function run(): ReturnType<typeof runBench> {
  return runPinned(runBench);
}
