/**
 * Benchmark child processes that talk over IPC: a server with a heap of its own (started with
 * `--expose-gc`, answering the requests of server-child.ts) and client processes. Each message
 * is an object with a `type`; a request is answered by a message of the same type.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinProcess, sleep, stopChild } from './bench-support.js';

export interface ChildMessage {
  type: string;
  [key: string]: unknown;
}

/** Compiled scripts sit next to this module in dist-bench/bench/; plain .mjs ones stay in bench/. */
const HERE = dirname(fileURLToPath(import.meta.url));
export const compiledScript = (name: string): string => resolve(HERE, name);
export const plainScript = (name: string): string => resolve(HERE, '../../bench', name);

export class BenchChild {
  private readonly child: ChildProcess;
  private readonly inbox: ChildMessage[] = [];
  private readonly waiters: Array<() => void> = [];
  private readonly listeners = new Map<string, (message: ChildMessage) => void>();
  private exited = false;

  constructor(
    readonly name: string,
    script: string,
    options: { args?: string[]; execArgv?: string[]; role: 'server' | 'client' },
  ) {
    this.child = fork(script, options.args ?? [], {
      execArgv: options.execArgv ?? [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    if (this.child.pid !== undefined) pinProcess(this.child.pid, options.role);
    this.child.on('message', (message: ChildMessage) => {
      const listener = this.listeners.get(message.type);
      if (listener) return listener(message);
      this.inbox.push(message);
      this.wake();
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  /** Hands every later message of `type` to `listener` instead of the inbox. */
  on(type: string, listener: (message: ChildMessage) => void): void {
    this.listeners.set(type, listener);
  }

  send(message: ChildMessage): void {
    this.child.send(message);
  }

  /** Sends a request and waits for the answer of the same type. */
  async request<T extends ChildMessage>(message: ChildMessage, timeoutMs: number): Promise<T> {
    this.send(message);
    return this.next<T>(message.type, timeoutMs);
  }

  /** The next message of `type` (taken from the inbox). */
  next<T extends ChildMessage>(type: string, timeoutMs: number): Promise<T> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(check);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        const index = this.inbox.findIndex((m) => m.type === type);
        if (index >= 0) {
          clearTimeout(timer);
          resolvePromise(this.inbox.splice(index, 1)[0] as T);
        } else if (this.exited) {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited before "${type}"`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Asks the child to exit, and kills it if it has not within `timeoutMs`. */
  async stop(timeoutMs = 10000): Promise<void> {
    if (!this.exited) await stopChild(this.child, timeoutMs);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** What a server child reports about itself (after two full garbage collections). */
export interface MemoryReport extends ChildMessage {
  type: 'memory';
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  /** CPU time (user + system) the process has used so far. */
  cpuMs: number;
  /** Open connections. */
  connections: number;
  /** Sessions, connected or detached. */
  sessions: number;
  /** Figures of the app itself, by name. */
  app: Record<string, number>;
}

/** A server child: forks `script` with `--expose-gc` and waits for the port it listens on. */
export async function startServerChild(name: string, script: string, args: string[] = []): Promise<{ child: BenchChild; port: number }> {
  const child = new BenchChild(name, script, { args, execArgv: ['--expose-gc'], role: 'server' });
  try {
    const { port } = await child.next<ChildMessage & { port: number }>('listening', 60000);
    return { child, port };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/** Waits until every connection the server had is closed on its side. */
export async function untilNoConnection(server: BenchChild, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await server.request<ChildMessage & { connections: number }>({ type: 'counts' }, timeoutMs)).connections > 0) {
    if (Date.now() > deadline) throw new Error(`${server.name} still has connections after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export function memoryOf(server: BenchChild): Promise<MemoryReport> {
  return server.request<MemoryReport>({ type: 'memory' }, 60000);
}

/** `count` loopback addresses from 127.0.0.2 on, to spread clients over the per-IP connection cap. */
export function loopbackAddresses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`);
}

/** The `index`-th of `parts` near-equal shares of `total`. */
export function shareOf(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0);
}
