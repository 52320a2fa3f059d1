import 'reflect-metadata';
import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ReliableWsAdapter } from '../lib/index.js';
import { AppModule } from './app.module.js';

/** The configured chat app, not listening yet (tests start it on port 0). */
export async function createSampleApp(options: NestApplicationOptions = {}): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule, options);
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  app.enableShutdownHooks();
  return app;
}
