/**
 * One instance of the `scale` benchmark, in a child process of its own (`--expose-gc`): a
 * `@ReliableGateway` with default options but Redis broadcast (`broadcast: { redis, channelPrefix }`,
 * the prefix is the first argument) and a per-IP cap above the benchmark's connections (every
 * client comes from 127.0.0.1). Answers the requests of server-child.ts, and:
 *   - `cpu`: CPU time used so far (no garbage collection);
 *   - `publish { event, round }`: one `toAll(event, { r: round, t })` (t: the wall clock when it was
 *     handed over); answered with `{ t, publishMs }` once the publish resolved (publishMs: how long
 *     that took: the round trip to Redis).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BroadcastService, ReliableGateway, ReliableWsAdapter, ReliableWsModule } from '../lib/index.js';
import { REDIS_URL, wallNow } from './bench-support.js';
import { serveAsBenchChild } from './server-child.js';

@ReliableGateway({ path: '/ws' })
class ScaleGateway {}

@Module({
  imports: [ReliableWsModule.forRoot({ broadcast: { redis: REDIS_URL, channelPrefix: process.argv[2] }, maxConnectionsPerIp: 1_000_000 })],
  providers: [ScaleGateway],
})
class ScaleModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(ScaleModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  const broadcast = app.get(BroadcastService);
  await serveAsBenchChild(app, {
    handlers: {
      cpu: () => {
        const { user, system } = process.cpuUsage();
        return { cpuMs: (user + system) / 1000 };
      },
      publish: async ({ event, round }) => {
        const t = wallNow();
        await broadcast.toAll(String(event), { r: round, t });
        return { t, publishMs: wallNow() - t };
      },
    },
  });
}

await main();
