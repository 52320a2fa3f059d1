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
 */
import 'reflect-metadata';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { Redis } from 'ioredis';
import { BroadcastService, ReliableGateway, type ReliableSocket } from '../lib/index.js';
import {
  fmtInt,
  fmtMs,
  printTable,
  REDIS_URL,
  sleep,
  startReliableApp,
  Swarm,
  systemSelected,
  uniquePrefix,
  wallNow,
  within,
  type RoundResult,
  type SwarmKind,
  runPinned,
} from './bench-support.js';
import { startSocketIoRedisPair } from './socket-io-redis.js';

const CLIENTS = 200;
const WARMUP_MESSAGES = 200;
const BURST_MESSAGES = 2000;
const PACED_MESSAGES = 400;
const PACED_GAP_MS = 5;
const PAD = 'x'.repeat(100);
const ROOM = 'bench-room';
const EVENT = 'tick';
const ROUND_TIMEOUT_MS = 60000;

interface Tick {
  r: number;
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
class RoomGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() data: { room: string }, @ConnectedSocket() socket: ReliableSocket): Promise<{ ok: true }> {
    await this.broadcast.join(socket.id, data.room);
    return { ok: true };
  }
}

async function reliableSystem(): Promise<System> {
  const options = { broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('rws') } };
  const a = await startReliableApp(options, [RoomGateway]);
  const b = await startReliableApp(options, [RoomGateway]).catch(async (error: unknown) => {
    await a.close();
    throw error;
  });
  const broadcast = a.app.get(BroadcastService);
  return {
    name: 'nestjs-reliable-ws (toRoom)',
    kind: 'rws',
    url: `ws://127.0.0.1:${b.port}/ws`,
    send: (tick) => broadcast.toRoom(ROOM, EVENT, tick),
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

async function socketIoSystem(): Promise<System> {
  const pair = await startSocketIoRedisPair(REDIS_URL, uniquePrefix('sio'));
  return {
    name: 'Socket.IO + redis-adapter (to(room).emit)',
    kind: 'sio',
    url: `http://127.0.0.1:${pair.portOfB}`,
    send: (tick) => pair.emitToRoom(ROOM, EVENT, tick),
    close: () => pair.close(),
  };
}

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
  const swarm = await Swarm.open({ url: system.url, kind: system.kind, count: CLIENTS, concurrency: 50, room: ROOM });
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

async function runBench(placement: string): Promise<Measured[]> {
  console.log(
    `\n## broadcast-redis: A → Redis → B → ${CLIENTS} clients in one room (burst ${BURST_MESSAGES} msgs, ` +
      `paced ${PACED_MESSAGES} msgs every ${PACED_GAP_MS} ms; payload ~${PAD.length + 60} B; ${placement})\n`,
  );
  if (!(await redisReachable())) {
    console.log(`skipped: no Redis at ${REDIS_URL}`);
    return [];
  }
  const results: Measured[] = [];
  for (const make of [reliableSystem, socketIoSystem]) {
    const system = await make();
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
  return results;
}

export function run(): ReturnType<typeof runBench> {
  return runPinned(runBench);
}
