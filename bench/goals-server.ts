/**
 * One server of the `goals` benchmark, in a child process of its own (`--expose-gc`), chosen by
 * the first argument:
 *   - `reliable`: `@ReliableGateway` with everything on: auth (a handshake token), the rate
 *     limit (raised so that nothing is refused), a class-validator DTO, sessions;
 *   - `reliable-no-resume`: the same with `resume: false`;
 *   - `stock`: the stock Nest `WsAdapter` with a plain `@WebSocketGateway` returning `{ event, data }`
 *     and, for fan-out, looping over its clients with one string;
 *   - `raw`: a `ws` server that parses each frame and answers with `JSON.stringify` (an `$ack`
 *     it reads and ignores), and sends one prepared string per client on fan-out.
 * The stock and raw servers answer a `$hello` with a `$ready` like this package's.
 * IPC requests (each answered with a message of the same type): `cpu` (CPU time used so far),
 * `memory` (after two full garbage collections), `connections`, `broadcast { round, count, bytes,
 * gapMs }` (`count` broadcasts of `{ r, i, t, pad }`, `gapMs` apart, or all in one tick when 0;
 * answered once the last is handed over), `exit`.
 * With a second argument (a file name), the CPU profile of the first measured window (from the
 * first `cpu` request to the second) is written there.
 */
import 'reflect-metadata';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import { IsString } from 'class-validator';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { WebSocketServer as WsServer } from 'ws';
import { BroadcastService, ReliableGateway, ReliableWsAdapter, ReliableWsModule, SessionRegistry, SystemEvent } from '../lib/index.js';
import { sleep, wallNow } from './bench-support.js';
import { GOALS_EVENT, GOALS_TOKEN, type CpuTime, type GoalsSystem } from './goals-systems.js';


interface Server {
  connections(): number;
  broadcast(frameData: Record<string, unknown>): Promise<void> | void;
  close(): Promise<void>;
  port: number;
}

type Request = Record<string, unknown> & { type: string };

class EchoDto {
  @IsString()
  p!: string;
}

/** A `$ready` of the size of this package's, for the stock and raw servers' clients that open with `$hello`. */
const READY_LIKE = {
  sessionId: 'x'.repeat(22),
  resumeToken: 'x'.repeat(22),
  resumed: false,
  missed: false,
  lastId: 0,
  heartbeatMs: 25_000,
  maxPayloadBytes: 1_048_576,
};

@ReliableGateway({ path: '/ws' })
class ReliableEchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() body: EchoDto): EchoDto {
    return body;
  }
}

@WebSocketGateway({ path: '/ws' })
class StockEchoGateway {
  @WebSocketServer() server!: WsServer;

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'echo', data };
  }

  @SubscribeMessage(SystemEvent.HELLO)
  hello(): { event: string; data: unknown } {
    return { event: SystemEvent.READY, data: READY_LIKE };
  }
}

async function reliableServer(resume: boolean): Promise<Server> {
  @Module({
    imports: [
      ReliableWsModule.forRoot({
        auth: { verify: (token) => (token === GOALS_TOKEN ? { id: 'bench' } : null), mode: 'any' },
        rateLimit: { points: 1_000_000_000, durationMs: 1000 },
        maxConnectionsPerIp: 1_000_000,
        ...(resume ? {} : { resume: false }),
      }),
    ],
    providers: [ReliableEchoGateway],
  })
  class GoalsModule {}
  const app = await NestFactory.create(GoalsModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  const port = await listen(app);
  const broadcast = app.get(BroadcastService);
  const registry = app.get(SessionRegistry);
  return {
    port,
    connections: () => registry.connectionCount,
    broadcast: (data) => broadcast.toAll(GOALS_EVENT, data),
    close: () => app.close(),
  };
}

async function stockServer(): Promise<Server> {
  const { WsAdapter } = await import('@nestjs/platform-ws');
  @Module({ providers: [StockEchoGateway] })
  class StockModule {}
  const app = await NestFactory.create(StockModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new WsAdapter(app));
  const port = await listen(app);
  const { server } = app.get(StockEchoGateway);
  return {
    port,
    connections: () => server.clients.size,
    broadcast: (data) => sendToEveryClient(server, JSON.stringify({ event: GOALS_EVENT, data })),
    close: () => app.close(),
  };
}

async function rawServer(): Promise<Server> {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (raw) => {
      const { event, data } = JSON.parse(raw.toString()) as { event: string; data: unknown };
      if (event === SystemEvent.HELLO) ws.send(JSON.stringify({ event: SystemEvent.READY, data: READY_LIKE }));
      else if (event !== SystemEvent.ACK) ws.send(JSON.stringify({ event, data }));
    });
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  return {
    port: (wss.address() as AddressInfo).port,
    connections: () => wss.clients.size,
    broadcast: (data) => sendToEveryClient(wss, JSON.stringify({ event: GOALS_EVENT, data })),
    close: () => new Promise((resolve) => wss.close(() => resolve())),
  };
}

function sendToEveryClient(wss: WsServer, frame: string): void {
  for (const client of wss.clients) if (client.readyState === client.OPEN) client.send(frame);
}

async function listen(app: INestApplication): Promise<number> {
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

async function broadcastRound(server: Server, { round, count, bytes, gapMs }: Request): Promise<void> {
  const pad = 'x'.repeat(Number(bytes));
  const sends: Array<Promise<void> | void> = [];
  for (let i = 0; i < Number(count); i++) {
    if (i > 0 && Number(gapMs) > 0) await sleep(Number(gapMs));
    sends.push(server.broadcast({ r: round, i, t: wallNow(), pad }));
  }
  await Promise.all(sends);
}

function memory(server: Server): Record<string, number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('goals server: start it with --expose-gc');
  gc();
  gc();
  const { heapUsed, external, rss } = process.memoryUsage();
  return { heapUsed, external, rss, connections: server.connections() };
}

function cpuTime(): CpuTime {
  const { user, system } = process.cpuUsage();
  return { cpuMs: (user + system) / 1000, systemMs: system / 1000 };
}

/** Profiles the window between the first two `cpu` requests into `file`. */
function windowProfiler(file: string | undefined): () => Promise<void> {
  if (!file) return async () => {};
  const session = new Session();
  let requests = 0;
  return async () => {
    requests++;
    if (requests === 1) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    } else if (requests === 2) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    }
  };
}

async function main(system: GoalsSystem, profileFile: string | undefined): Promise<void> {
  const profileWindow = windowProfiler(profileFile);
  const server = system === 'stock' ? await stockServer() : system === 'raw' ? await rawServer() : await reliableServer(system === 'reliable');
  const handlers: Record<string, (request: Request) => unknown> = {
    cpu: async () => {
      const answer = cpuTime();
      await profileWindow();
      return answer;
    },
    memory: () => memory(server),
    connections: () => ({ connections: server.connections() }),
    broadcast: async (request) => {
      await broadcastRound(server, request);
      return {};
    },
    exit: async () => {
      await server.close();
      process.exit(0);
    },
  };
  process.on('message', (request: Request) => {
    void Promise.resolve(handlers[request.type]?.(request)).then((answer) => process.send?.({ ...(answer as object), type: request.type }));
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'listening', port: server.port });
}

await main(process.argv[2] as GoalsSystem, process.argv[3]);
