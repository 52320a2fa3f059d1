/**
 * Micro-benchmark of the per-message cost of rate limiting and validation (not a test).
 * Run with `npm run bench`. Each case: a warm-up round, then ROUNDS timed rounds of N
 * iterations with process.hrtime.bigint(); the median round gives ns/op and ops/s.
 */
import 'reflect-metadata';
import type { IncomingMessage } from 'node:http';
import { IsInt, IsString, MaxLength, Min } from 'class-validator';
import type { WebSocket } from 'ws';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { of } from 'rxjs';
import { RateLimit } from '../lib/rate-limit/rate-limit.decorator.js';
import { RateLimiter } from '../lib/rate-limit/rate-limiter.js';
import { WsRateLimitInterceptor } from '../lib/rate-limit/ws-rate-limit.interceptor.js';
import { TokenBucket } from '../lib/rate-limit/token-bucket.js';
import { ReliableSocket } from '../lib/session/reliable-socket.js';
import { validatePayload } from '../lib/validation/payload-validator.js';
import type { ValidationOptions } from '../lib/validation/validation.options.js';

class ChatGateway {
  @RateLimit({ points: 1_000_000_000, durationMs: 1000 })
  say(): void {}
}

class SayDto {
  @IsString()
  @MaxLength(64)
  room!: string;

  @IsString()
  @MaxLength(500)
  text!: string;

  @IsInt()
  @Min(0)
  n!: number;
}

/** The module's default validation options. */
const VALIDATION: ValidationOptions = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true };

const ROUNDS = 7;

export interface BenchResult {
  name: string;
  iterations: number;
  nsPerOp: number;
  opsPerSec: number;
}

let sink = 0;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function result(name: string, iterations: number, roundsNs: number[]): BenchResult {
  const nsPerOp = median(roundsNs) / iterations;
  return { name, iterations, nsPerOp, opsPerSec: 1e9 / nsPerOp };
}

function benchSync(name: string, iterations: number, op: (i: number) => number): BenchResult {
  const rounds: number[] = [];
  for (let round = -1; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += op(i);
    const elapsed = Number(process.hrtime.bigint() - start);
    if (round >= 0) rounds.push(elapsed); // round -1 is the warm-up
  }
  return result(name, iterations, rounds);
}

async function benchAsync(name: string, iterations: number, op: (i: number) => Promise<number>): Promise<BenchResult> {
  const rounds: number[] = [];
  for (let round = -1; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += await op(i);
    const elapsed = Number(process.hrtime.bigint() - start);
    if (round >= 0) rounds.push(elapsed);
  }
  return result(name, iterations, rounds);
}

/** A real ReliableSocket around a stand-in for the `ws` socket (the limiter never writes to it). */
function standInSocket(): ReliableSocket {
  const raw = { readyState: 1, bufferedAmount: 0, close: () => undefined, send: () => undefined };
  return new ReliableSocket(raw as unknown as WebSocket, {} as IncomingMessage, '127.0.0.1', { maxBufferedBytes: 1 << 20 });
}

function printTable(results: BenchResult[]): void {
  const rows = results.map((r) => ({
    case: r.name,
    iterations: String(r.iterations),
    'ns/op': r.nsPerOp.toFixed(1),
    'ops/s': Math.round(r.opsPerSec).toLocaleString('en-US'),
  }));
  const headers = ['case', 'iterations', 'ns/op', 'ops/s'] as const;
  const width = (h: (typeof headers)[number]) => Math.max(h.length, ...rows.map((row) => row[h].length));
  const line = (cells: Record<(typeof headers)[number], string>) =>
    headers.map((h, i) => (i === 0 ? cells[h].padEnd(width(h)) : cells[h].padStart(width(h)))).join('  ');
  console.log(line({ case: 'case', iterations: 'iterations', 'ns/op': 'ns/op', 'ops/s': 'ops/s' }));
  console.log(headers.map((h) => '-'.repeat(width(h))).join('  '));
  for (const row of rows) console.log(line(row));
}

export async function run(): Promise<BenchResult[]> {
  console.log(`\n## interceptors: per-message cost (median of ${ROUNDS} rounds after 1 warm-up round)\n`);
  const results: BenchResult[] = [];

  // (a) RateLimiter.consume: the module bucket of one connection, with Date.now() as in production;
  // a bucket large enough never to reject, so every call is the allowed path.
  const limiter = new RateLimiter({ points: 1_000_000_000, durationMs: 1000, maxViolations: 20 });
  const socket = standInSocket();
  results.push(benchSync('RateLimiter.consume (allowed, Date.now)', 1_000_000, () => (limiter.consume(socket).allowed ? 1 : 0)));

  // (a') the same with the rejection path (empty bucket, maxViolations never reached)
  const rejecting = new RateLimiter({ points: 1, durationMs: 1_000_000, maxViolations: Number.MAX_SAFE_INTEGER });
  const socket2 = standInSocket();
  results.push(
    benchSync('RateLimiter.consume (rejected, explicit now)', 1_000_000, (i) => (rejecting.consume(socket2, undefined, 1000 + (i & 1023)).allowed ? 1 : 0)),
  );

  // (b) TokenBucket.take with explicit, increasing timestamps
  const bucket = new TokenBucket({ points: 50, durationMs: 1000 }, 0);
  results.push(benchSync('TokenBucket.take', 2_000_000, (i) => bucket.take(i)));

  // (c) validatePayload with a small DTO (class-transformer + class-validator), valid payload
  const payload = { room: 'lobby', text: 'hello world', n: 3 };
  results.push(
    await benchAsync('validatePayload(SayDto, valid)', 20_000, async () => ((await validatePayload(payload, SayDto, 'data', VALIDATION)).ok ? 1 : 0)),
  );
  const invalid = { room: 'lobby', text: 42, n: -1, extra: true };
  results.push(
    await benchAsync('validatePayload(SayDto, invalid)', 20_000, async () => ((await validatePayload(invalid, SayDto, 'data', VALIDATION)).ok ? 1 : 0)),
  );

  // (d) validatePayload with a primitive (typeof check only)
  results.push(
    await benchAsync('validatePayload(String)', 500_000, async () => ((await validatePayload('hello', String, 'data', VALIDATION)).ok ? 1 : 0)),
  );

  // (e) WsRateLimitInterceptor.intercept: the per-message work around the limiter (metadata of the
  // handler, its own limit), with an allowed message; the handler's observable is a shared one.
  const interceptor = new WsRateLimitInterceptor(limiter, new Reflector());
  const context = new ExecutionContextHost([standInSocket(), {}], ChatGateway, ChatGateway.prototype.say);
  context.setType('ws');
  const handled = of(1);
  const next = { handle: () => handled };
  results.push(benchSync('WsRateLimitInterceptor.intercept (@RateLimit)', 1_000_000, () => (interceptor.intercept(context, next) === handled ? 1 : 0)));

  printTable(results);
  if (sink === -1) console.log(sink); // keeps the results observable
  return results;
}
