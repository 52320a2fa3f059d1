/**
 * Socket.IO servers joined by @socket.io/redis-adapter, the peer the Redis benchmarks compare
 * against: instance A broadcasts with `to(room).emit`, clients connect to the receiving instances
 * and `emit('join', room, ack)`.
 */
import { Redis } from 'ioredis';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from './bench-support.js';

export interface SocketIoRedisGroup {
  /** The ports of the receiving instances (clients connect there), A excluded. */
  receiverPorts: number[];
  /** Broadcasts from instance A to a room. */
  emitToRoom(room: string, event: string, data: unknown): void;
  close(): Promise<void>;
}

export interface SocketIoRedisOptions {
  /** Receiving instances besides A (default 1). */
  receivers?: number;
  /** Ignore Redis connection errors (a benchmark that kills connections on purpose). */
  quietErrors?: boolean;
}

export async function startSocketIoRedisGroup(redisUrl: string, key: string, options: SocketIoRedisOptions = {}): Promise<SocketIoRedisGroup> {
  const { receivers = 1, quietErrors = false } = options;
  const { Server } = await import('socket.io');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const redisClients: Redis[] = [];
  const start = async () => {
    const pub = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    const sub = pub.duplicate();
    if (quietErrors) for (const client of [pub, sub]) client.on('error', () => undefined);
    redisClients.push(pub, sub);
    const http = createServer();
    const io = new Server(http, { adapter: createAdapter(pub, sub, { key }), serveClient: false, transports: ['websocket'] });
    io.on('connection', (socket) => {
      socket.on('join', (room: string, ack: (ok: boolean) => void) => {
        void Promise.resolve(socket.join(room)).then(() => ack(true));
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return { io, port: (http.address() as AddressInfo).port };
  };
  const a = await start();
  const others: Array<Awaited<ReturnType<typeof start>>> = [];
  for (let i = 0; i < receivers; i++) others.push(await start());
  await sleep(200); // the adapters' PSUBSCRIBE / SUBSCRIBE are sent at construction
  return {
    receiverPorts: others.map((other) => other.port),
    emitToRoom: (room, event, data) => {
      a.io.to(room).emit(event, data);
    },
    close: async () => {
      await Promise.all([a, ...others].map((instance) => instance.io.close()));
      await Promise.all(redisClients.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}
