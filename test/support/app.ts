import 'reflect-metadata';
import { Module, type INestApplication, type LoggerService, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { ReliableWsAdapter, ReliableWsModule, type ReliableWsOptions } from '../../lib/index.js';

export interface TestApp {
  app: INestApplication;
  port: number;
  /** `ws://127.0.0.1:<port><path>` */
  wsUrl(path?: string): string;
  httpUrl(path: string): string;
  close(): Promise<void>;
}

/** `logger`: where the app's log lines go (none by default). */
type Extra = { imports?: any[]; controllers?: Type[]; logger?: LoggerService };

/** A real Nest app with ReliableWsModule, its adapter and the given gateways, not yet listening. */
export async function createApp(options: ReliableWsOptions, providers: Type[], extra: Extra = {}): Promise<INestApplication> {
  @Module({
    imports: [ReliableWsModule.forRoot(options), ...(extra.imports ?? [])],
    providers,
    controllers: extra.controllers ?? [],
  })
  class TestModule {}

  const app = await NestFactory.create(TestModule, { logger: extra.logger ?? false });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  return app;
}

/** Starts a real Nest app with ReliableWsModule and the given gateways on a free port. */
export async function startApp(options: ReliableWsOptions, providers: Type[], extra: Extra = {}): Promise<TestApp> {
  const app = await createApp(options, providers, extra);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    app,
    port,
    wsUrl: (path = '/') => `ws://127.0.0.1:${port}${path}`,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
    close: () => (closed ??= app.close()),
  };
}
