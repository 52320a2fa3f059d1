/**
 * Shared helpers of the network benchmarks (not tests): client swarms in child processes, Nest
 * apps on port 0, forced garbage collection, and table printing.
 */
import 'reflect-metadata';
import { Module, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ACK_GRACE, DEFAULT_ACK_DELAY_MS } from '../lib/client/reliable-connection.js';
import { ReliableWsAdapter, ReliableWsModule, type ReliableWsOptions } from '../lib/index.js';

/** The child script stays in bench/ (plain JS, not compiled): dist-bench/bench/ → ../../bench/. */
const SWARM_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/swarm-client.mjs');

/** Where benchmarks write their JSON results (gitignored): bench/results/ of the source tree. */
export const RESULTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/results');

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Wall clock in ms with sub-ms precision, comparable between processes of this machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function uniquePrefix(name: string): string {
  return `bench-${name}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects after `ms` with a message naming what was awaited. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 20 ms until it holds (bounded). */
export async function waitUntil(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

let gcFunction: (() => void) | undefined;

/** A full garbage collection, without needing `--expose-gc` on the command line. */
export function collectGarbage(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

export const MiB = 1024 * 1024;

/**
 * Whether a compared system runs: `BENCH_SYSTEMS=reliable,socket` keeps only systems whose name
 * contains one of the comma-separated words (case-insensitive); unset runs them all.
 */
export function systemSelected(name: string): boolean {
  const words = (process.env.BENCH_SYSTEMS ?? '').split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
  return words.length === 0 || words.some((word) => name.toLowerCase().includes(word));
}

// ---------------------------------------------------------------- CPU placement

/**
 * On a machine with at least two cores the benchmarks keep the servers (this process) on the
 * first core and the client processes on the others, so that clients and server do not steal
 * each other's time slices (which makes wall-clock figures swing by ±30 % on two cores).
 * Without `taskset` (or on one core) nothing is pinned.
 */
const CORES = availableParallelism();
const SERVER_CPUS = '0';
const CLIENT_CPUS = CORES > 2 ? `1-${CORES - 1}` : '1';
let pinningWorks = CORES >= 2;

function pin(pid: number, cpus: string): boolean {
  if (!pinningWorks) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    pinningWorks = false;
    return false;
  }
}

/** Pins a child process: a server to the first core, clients to the others (where possible). */
export function pinProcess(pid: number, role: 'server' | 'client'): boolean {
  return pin(pid, role === 'server' ? SERVER_CPUS : CLIENT_CPUS);
}

/** Pins this process where `role` goes (where possible); returns a function that undoes it. */
export function pinThisProcess(role: 'server' | 'client'): { pinned: boolean; restore: () => void } {
  const pinned = pin(process.pid, role === 'server' ? SERVER_CPUS : CLIENT_CPUS);
  return { pinned, restore: () => void (pinned && pin(process.pid, `0-${CORES - 1}`)) };
}

export function placementNote(pinned: boolean): string {
  return pinned ? `servers pinned to CPU ${SERVER_CPUS}, clients to CPU ${CLIENT_CPUS}` : 'no CPU pinning';
}

/** Runs a benchmark with the servers pinned to one core (where possible), then unpins them. */
export async function runPinned<T>(runBench: (placement: string) => Promise<T>): Promise<T> {
  const pinning = pinThisProcess('server');
  try {
    return await runBench(placementNote(pinning.pinned));
  } finally {
    pinning.restore();
  }
}

// ---------------------------------------------------------------- client swarms

export type SwarmKind = 'rws' | 'rws1' | 'ws' | 'sio';

export interface SwarmConfig {
  /** One URL, or several to spread the clients over round robin. */
  url: string | string[];
  kind: SwarmKind;
  count: number;
  concurrency?: number;
  lifetimeMs?: number;
  room?: string;
  /** The period of an rws1 client's acks of pushes, and how long past its due point an ack waits for a push (default: the client's own). */
  ackDelayMs?: number;
  ackGrace?: number;
  /** false: rws1 clients never ack (a diagnostic of what the acks cost; the server keeps every push up to its bounds). */
  acks?: boolean;
  /** ws clients send the `$ack`s an rws1 client would, with the count of frames received as the seq (for a server that reads and ignores them). */
  countAcks?: boolean;
  /** ws clients send the `$hello` an rws1 client sends on open and count as connected once a `$ready` answers it. */
  hello?: boolean;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface RoundResult {
  type: 'result';
  complete: boolean;
  received: number;
  completedClients: number;
  /** Wall-clock time at which each complete client got its last message. */
  completions: number[];
  firstAt: number;
  lastAt: number;
  latency?: LatencySummary;
}

export interface RequestReplyResult {
  type: 'result';
  complete: boolean;
  elapsedMs: number;
  messages: number;
  latency: LatencySummary;
  errors: string[];
}

interface SwarmMessage {
  type: string;
  [key: string]: unknown;
}

/** A child process holding client connections (see swarm-client.mjs). */
export class Swarm {
  private readonly child: ChildProcess;
  private readonly inbox: SwarmMessage[] = [];
  private readonly waiters: Array<() => void> = [];
  private exited = false;
  opened = 0;

  private constructor(readonly config: SwarmConfig) {
    this.child = fork(SWARM_SCRIPT, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (this.child.pid !== undefined) pin(this.child.pid, CLIENT_CPUS);
    this.child.on('message', (message: SwarmMessage) => {
      this.inbox.push(message);
      this.wake();
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  /** Forks a swarm and waits until all its connections are open (and joined); throws if any failed. */
  static async open(config: SwarmConfig, timeoutMs = 60000): Promise<Swarm> {
    const swarm = new Swarm({ lifetimeMs: 240000, ackDelayMs: DEFAULT_ACK_DELAY_MS, ackGrace: ACK_GRACE, ...config });
    try {
      const ready = (await swarm.next('ready', timeoutMs)) as unknown as { opened: number; failed: number; errors: string[] };
      swarm.opened = ready.opened;
      if (ready.failed > 0) {
        throw new Error(`${config.kind} swarm: ${ready.failed} of ${config.count} connections failed: ${ready.errors.join('; ')}`);
      }
    } catch (error) {
      await swarm.stop();
      throw error;
    }
    return swarm;
  }

  /** Opens several swarms side by side, splitting `count` between them. */
  static async openMany(config: SwarmConfig, processes: number, timeoutMs = 90000): Promise<Swarm[]> {
    const sizes = Array.from({ length: processes }, (_, i) => Math.floor(config.count / processes) + (i < config.count % processes ? 1 : 0));
    const settled = await Promise.allSettled(sizes.map((count) => Swarm.open({ ...config, count }, timeoutMs)));
    const swarms = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await Promise.all(swarms.map((swarm) => swarm.stop()));
      throw failure.reason;
    }
    return swarms;
  }

  /** Prepares the next receiving round; resolves once the child listens for it. */
  async arm(round: number, expect: number, event: string, parse: boolean): Promise<void> {
    // A late result of an earlier round that timed out must not be taken for this round's.
    this.inbox.splice(0, this.inbox.length, ...this.inbox.filter((m) => m.type !== 'result'));
    this.child.send({ type: 'arm', round, expect, event, parse });
    await this.next('armed', 10000);
  }

  /** The result of the armed round; on timeout, the partial counts (complete: false). */
  async result(timeoutMs: number): Promise<RoundResult> {
    try {
      return (await this.next('result', timeoutMs)) as unknown as RoundResult;
    } catch {
      if (this.exited) throw new Error('swarm exited during the round');
      this.child.send({ type: 'report' });
      return (await this.next('result', 5000)) as unknown as RoundResult;
    }
  }

  /** The armed round's counts now, including deliveries that arrived after it was complete. */
  async tally(timeoutMs = 10000): Promise<RoundResult> {
    this.child.send({ type: 'report' });
    return (await this.next('result', timeoutMs)) as unknown as RoundResult;
  }

  async requestReply(total: number, window: number, payloadBytes: number, timeoutMs: number): Promise<RequestReplyResult> {
    this.child.send({ type: 'rr', total, window, payloadBytes });
    return (await this.next('result', timeoutMs)) as unknown as RequestReplyResult;
  }

  /** CPU time (user + system) the client process has used so far. */
  async cpuMs(): Promise<number> {
    this.child.send({ type: 'cpu' });
    return (await this.next('cpu', 10000)).ms as number;
  }

  /** Closes the connections and ends the child (bounded; killed if it does not exit). */
  async stop(timeoutMs = 5000): Promise<void> {
    if (!this.exited) await stopChild(this.child, timeoutMs);
  }

  private next(type: string, timeoutMs: number): Promise<SwarmMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(check);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`${this.config.kind} swarm: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        const index = this.inbox.findIndex((m) => m.type === type);
        if (index >= 0) {
          clearTimeout(timer);
          resolve(this.inbox.splice(index, 1)[0]);
        } else if (this.exited) {
          clearTimeout(timer);
          reject(new Error(`${this.config.kind} swarm exited before "${type}"`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** Asks a child to exit (an IPC `{ type: 'exit' }`) and kills it if it has not within `timeoutMs`. */
export async function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    child.send({ type: 'exit' });
  } catch {
    // the channel is already closed
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- Nest apps

export interface BenchApp {
  app: INestApplication;
  port: number;
  close(): Promise<void>;
}

/** A Nest app with ReliableWsModule, ReliableWsAdapter and the given gateways, listening on 127.0.0.1:0. */
export async function startReliableApp(options: ReliableWsOptions, providers: Type[]): Promise<BenchApp> {
  @Module({ imports: [ReliableWsModule.forRoot(options)], providers })
  class BenchModule {}
  const app = await NestFactory.create(BenchModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  return listen(app);
}

/** A Nest app with the stock WsAdapter of @nestjs/platform-ws and the given gateways. */
export async function startStockNestApp(providers: Type[]): Promise<BenchApp> {
  const { WsAdapter } = await import('@nestjs/platform-ws');
  @Module({ providers })
  class StockModule {}
  const app = await NestFactory.create(StockModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new WsAdapter(app));
  return listen(app);
}

async function listen(app: INestApplication): Promise<BenchApp> {
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, port, close: () => within(app.close(), 20000, 'app.close()') };
}

// ---------------------------------------------------------------- output

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

export function fmtMs(value: number | undefined, digits = 2): string {
  return value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : '-';
}

/** Prints rows as an aligned table: the first column left-aligned, the others right-aligned. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}
