/**
 * Two Socket.IO servers joined by @socket.io/redis-adapter, the peer the Redis benchmarks compare
 * against: clients `emit('join', room, ack)`, and A broadcasts with `to(room).emit`.
 */
import { Redis } from 'ioredis';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from './bench-support.js';

export interface SocketIoRedisPair {
  /** The port of instance B (clients connect there). */
  portOfB: number;
  /** Broadcasts from instance A to a room. */
  emitToRoom(room: string, event: string, data: unknown): void;
  close(): Promise<void>;
}

/** @param quietErrors ignore Redis connection errors (a benchmark that kills connections on purpose) */
export async function startSocketIoRedisPair(redisUrl: string, key: string, quietErrors = false): Promise<SocketIoRedisPair> {
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
  const b = await start();
  await sleep(200); // the adapters' PSUBSCRIBE / SUBSCRIBE are sent at construction
  return {
    portOfB: b.port,
    emitToRoom: (room, event, data) => {
      a.io.to(room).emit(event, data);
    },
    close: async () => {
      await Promise.all([a.io.close(), b.io.close()]);
      await Promise.all(redisClients.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}
