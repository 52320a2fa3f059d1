import 'reflect-metadata';
import { Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { ReliableWsAdapter, ReliableWsModule, type ReliableWsOptions } from '../../lib/index.js';
import type { TestApp } from './app.js';

/**
 * Like `startApp`, but listens on a given port (e.g. the port of an app that was closed, to
 * simulate a server restart); port 0 picks a free one.
 */
export async function startAppAt(options: ReliableWsOptions, providers: Type[], port: number): Promise<TestApp> {
  @Module({ imports: [ReliableWsModule.forRoot(options)], providers })
  class TestModule {}

  const app = await NestFactory.create(TestModule, { logger: false });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  await app.listen(port, '127.0.0.1');
  const actual = (app.getHttpServer().address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    app,
    port: actual,
    wsUrl: (path = '/') => `ws://127.0.0.1:${actual}${path}`,
    httpUrl: (path) => `http://127.0.0.1:${actual}${path}`,
    close: () => (closed ??= app.close()),
  };
}

/** A port that nothing listens on (taken from the OS, then released). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
