/**
 * A minimal gateway on the library with its default options, as a benchmark server child:
 * started by detached-memory.bench.ts with `--expose-gc`. Besides the requests of
 * server-child.ts it answers `push { count, bytes, to }`: `count` pushes to every session, each
 * carrying a text of `bytes` characters; `to: 'all'` broadcasts them (`toAll`: one serialised
 * payload shared by every session), `to: 'each'` sends each session its own (`toClient`).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BroadcastService, ReliableGateway, ReliableWsAdapter, ReliableWsModule, SessionRegistry } from '../lib/index.js';
import { serveAsBenchChild } from './server-child.js';

@ReliableGateway({ path: '/ws' })
class PushOnlyGateway {}

@Module({ imports: [ReliableWsModule.forRoot({})], providers: [PushOnlyGateway] })
class DetachedMemoryModule {}

const app = await NestFactory.create(DetachedMemoryModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new ReliableWsAdapter(app));
const broadcast = app.get(BroadcastService);
const registry = app.get(SessionRegistry);

async function push(message: Record<string, unknown>): Promise<Record<string, unknown>> {
  const text = 'x'.repeat(Number(message.bytes));
  for (let i = 0; i < Number(message.count); i++) {
    if (message.to === 'all') await broadcast.toAll('tick', { i, text });
    else await Promise.all([...registry.allSessions()].map((session) => broadcast.toClient(session.id, 'tick', { i, text })));
  }
  return {};
}

await serveAsBenchChild(app, { handlers: { push } });
