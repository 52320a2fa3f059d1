import 'reflect-metadata';
import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ReliableWsAdapter } from '../lib/index.js';
import { AppModule, sampleConfigFromEnv, type SampleConfig } from './app.module.js';

/**
 * The configured chat app, not listening yet (tests start it on port 0). `config` defaults to
 * the environment (`REDIS_URL`, `CHANNEL_PREFIX`); tests pass their own instead.
 */
export async function createSampleApp(
  options: NestApplicationOptions = {},
  config: SampleConfig = sampleConfigFromEnv(),
): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config), options);
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  app.enableShutdownHooks();
  return app;
}
