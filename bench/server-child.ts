/**
 * The child side of a benchmark server (see child-process.ts): reports the port once the app
 * listens, answers `memory` (after two full garbage collections; the process runs with
 * `--expose-gc`), `counts` (connections and sessions, no collection) and app-specific requests,
 * and closes the app on `exit`.
 */
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { SessionRegistry } from '../lib/index.js';

export type RequestHandler = (message: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>;

export interface ServerChildOptions {
  /** Figures of the app itself, added to each memory report. */
  appFigures?: () => Record<string, number>;
  /** Handlers of further request types; each answer gets the request's type. */
  handlers?: Record<string, RequestHandler>;
}

export async function serveAsBenchChild(app: INestApplication, options: ServerChildOptions = {}): Promise<void> {
  const registry = app.get(SessionRegistry);
  const handlers: Record<string, RequestHandler> = {
    ...options.handlers,
    memory: () => memoryReport(registry, options.appFigures?.() ?? {}),
    counts: () => ({ connections: registry.connectionCount, sessions: count(registry.allSessions()) }),
    exit: async () => {
      await app.close();
      process.exit(0);
    },
  };
  process.on('message', (message: Record<string, unknown>) => void answer(handlers, message));
  process.on('disconnect', () => process.exit(0));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.send?.({ type: 'listening', port });
}

async function answer(handlers: Record<string, RequestHandler>, message: Record<string, unknown>): Promise<void> {
  const type = String(message.type);
  const handler = handlers[type];
  if (!handler) throw new Error(`bench server: unknown request "${type}"`);
  process.send?.({ ...(await handler(message)), type });
}

function memoryReport(registry: SessionRegistry, app: Record<string, number>): Record<string, unknown> {
  collectGarbage();
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  const { user, system } = process.cpuUsage();
  const cpuMs = (user + system) / 1000;
  return { heapUsed, rss, external, arrayBuffers, cpuMs, connections: registry.connectionCount, sessions: count(registry.allSessions()), app };
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('bench server: start it with --expose-gc');
  gc();
  gc();
}

function count(items: Iterable<unknown>): number {
  let n = 0;
  for (const _ of items) n++;
  return n;
}
