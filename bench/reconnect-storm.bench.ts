/**
 * Reconnect storm (a simulation, not a test; pure computation, no sockets): 10,000 clients lose
 * the server at t = 0 and reconnect with the client's schedule (`reconnectDelay`, default
 * options), against the same schedule without jitter. The server is back at t = 20 s: every
 * attempt before that fails at once (so the client schedules the next one), the first attempt at
 * or after it succeeds. Counts attempts per 100 ms bucket over the first 5 minutes and reports
 * the peak and the number of buckets with more than 500 attempts.
 *
 * Run with `npm run bench` (or `node dist-bench/bench/run-all.js reconnect-storm`).
 */
import { DEFAULT_RECONNECT, reconnectDelay, type ReconnectOptions } from '../lib/client/backoff.js';

const CLIENTS = 10_000;
const SERVER_BACK_AT_MS = 20_000;
const WINDOW_MS = 5 * 60_000;
const BUCKET_MS = 100;
const BUSY_BUCKET = 500;
const SEED = 0x5eed;

export interface StormResult {
  schedule: string;
  attempts: number;
  peakPer100ms: number;
  peakAtMs: number;
  bucketsOver500: number;
  /** When the last client got back in (or undefined when some gave up or are still waiting). */
  allBackAtMs: number | undefined;
  gaveUp: number;
  /** Attempts in the first second after the server came back. */
  firstSecondBack: number;
}

/** mulberry32: a small seeded PRNG, so that every run prints the same numbers. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Each client: attempt n at t(n-1) + reconnectDelay(n), until one lands at or after the server's return. */
export function simulate(schedule: string, options: ReconnectOptions, random = seeded(SEED)): StormResult {
  const buckets = new Uint32Array(WINDOW_MS / BUCKET_MS);
  let attempts = 0;
  let gaveUp = 0;
  let allBackAtMs = 0;
  for (let client = 0; client < CLIENTS; client++) {
    let t = 0;
    let back = false;
    for (let attempt = 1; attempt <= options.maxRetries; attempt++) {
      t += reconnectDelay(attempt, options, random);
      if (t >= WINDOW_MS) break;
      buckets[Math.floor(t / BUCKET_MS)]++;
      attempts++;
      if (t >= SERVER_BACK_AT_MS) {
        back = true;
        break;
      }
    }
    if (back) allBackAtMs = Math.max(allBackAtMs, t);
    else gaveUp++;
  }
  let peak = 0;
  let peakBucket = 0;
  let busy = 0;
  buckets.forEach((count, index) => {
    if (count > peak) {
      peak = count;
      peakBucket = index;
    }
    if (count > BUSY_BUCKET) busy++;
  });
  const backBucket = SERVER_BACK_AT_MS / BUCKET_MS;
  const firstSecondBack = buckets.slice(backBucket, backBucket + 1000 / BUCKET_MS).reduce((sum, count) => sum + count, 0);
  return {
    schedule,
    attempts,
    peakPer100ms: peak,
    peakAtMs: peakBucket * BUCKET_MS,
    bucketsOver500: busy,
    allBackAtMs: gaveUp === 0 ? allBackAtMs : undefined,
    gaveUp,
    firstSecondBack,
  };
}

function printTable(results: StormResult[]): void {
  const header = ['schedule', 'attempts', 'peak /100ms', 'peak at', 'buckets > 500', 'in 1st s back', 'all back by', 'gave up'];
  const rows = results.map((r) => [
    r.schedule,
    String(r.attempts),
    String(r.peakPer100ms),
    `${(r.peakAtMs / 1000).toFixed(1)} s`,
    String(r.bucketsOver500),
    String(r.firstSecondBack),
    r.allBackAtMs === undefined ? '–' : `${(r.allBackAtMs / 1000).toFixed(1)} s`,
    String(r.gaveUp),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  console.log(line(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function run(): StormResult[] {
  const { initialDelayMs, maxDelayMs, factor, jitter, maxRetries } = DEFAULT_RECONNECT;
  console.log(
    `\n== reconnect storm: ${CLIENTS} clients drop at t = 0, server back at t = ${SERVER_BACK_AT_MS / 1000} s, ` +
      `attempts per ${BUCKET_MS} ms over ${WINDOW_MS / 60_000} min ` +
      `(initialDelayMs ${initialDelayMs}, maxDelayMs ${maxDelayMs}, factor ${factor}, maxRetries ${maxRetries}) ==`,
  );
  const results = [
    simulate(`jitter ${jitter} (default)`, DEFAULT_RECONNECT),
    simulate('jitter 0', { ...DEFAULT_RECONNECT, jitter: 0 }),
  ];
  printTable(results);
  return results;
}
