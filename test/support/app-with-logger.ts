import 'reflect-metadata';
import { Module, type INestApplication, type LoggerService, type NestApplicationOptions, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { ReliableWsAdapter, ReliableWsModule, type ReliableWsOptions } from '../../lib/index.js';
import type { TestApp } from './app.js';

/** A Nest `LoggerService` that records every line (message and all extra params) in `lines`. */
export interface CaptureLogger extends LoggerService {
  readonly lines: string[];
}

export function captureLogger(): CaptureLogger {
  const lines: string[] = [];
  const record =
    (level: string) =>
    (...parts: unknown[]): void => {
      lines.push(`${level} ${parts.map(show).join(' ')}`);
    };
  return {
    lines,
    log: record('log'),
    error: record('error'),
    warn: record('warn'),
    debug: record('debug'),
    verbose: record('verbose'),
    fatal: record('fatal'),
  };
}

function show(part: unknown): string {
  if (typeof part === 'string') return part;
  if (part instanceof Error) return part.stack ?? part.message;
  try {
    return JSON.stringify(part) ?? String(part);
  } catch {
    return String(part);
  }
}

/**
 * Creates (does not listen) a Nest app with ReliableWsModule, the given gateways and the given
 * Nest application options. Pass `abortOnError: false` when bootstrap is expected to fail, or
 * Nest aborts the process instead of rejecting.
 */
export async function createApp(
  options: ReliableWsOptions,
  providers: Type[],
  appOptions: NestApplicationOptions,
): Promise<INestApplication> {
  @Module({ imports: [ReliableWsModule.forRoot(options)], providers })
  class TestModule {}

  const app = await NestFactory.create(TestModule, appOptions);
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  return app;
}

/** Like `startApp`, with Nest application options of the caller's choosing (e.g. `logger`). */
export async function startAppWithOptions(
  options: ReliableWsOptions,
  providers: Type[],
  appOptions: NestApplicationOptions,
): Promise<TestApp> {
  const app = await createApp(options, providers, appOptions);
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
