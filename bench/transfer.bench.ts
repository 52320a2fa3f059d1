/**
 * Chunked transfer against one big frame (a benchmark, not a test): TRANSFER_BYTES (100 MiB)
 * from client to server and back, through the library (`client.upload`, `socket.stream`: 64 KiB
 * frames, a 1 MiB window, the defaults; only `maxTransferBytes` raised) and as ONE WebSocket
 * message in raw `ws` with `maxPayload` raised. The server runs in a child process of its own
 * (transfer-server.ts) pinned to one core, the client in this process on the other; the server
 * records its event-loop delay (`monitorEventLoopDelay`, 1 ms resolution) during each transfer.
 * Each transfer is timed from the first byte sent to the answer (upload: the handler's reply;
 * download: the whole payload in the client). RUNS of each; medians, and the largest delay seen.
 *
 * Environment: BENCH_TRANSFER_MIB (default 100).
 * Run with `npm run bench` (or `node dist-bench/bench/run-all.js transfer`).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { ReliableWsClient } from '../lib/client/index.js';
import { fmtMs, MiB, percentile, pinThisProcess, placementNote, printTable, within } from './bench-support.js';
import { compiledScript, startServerChild, type BenchChild, type ChildMessage } from './child-process.js';

const TRANSFER_BYTES = Number(process.env.BENCH_TRANSFER_MIB ?? 100) * MiB;
const RUNS = 3;
const STEP_TIMEOUT_MS = 120_000;

type System = 'reliable' | 'raw';
type Direction = 'upload' | 'download';

/** A connected client of one system. */
interface Side {
  transfer(direction: Direction, payload: Uint8Array): Promise<void>;
  close(): void;
}

interface Sample {
  seconds: number;
  p99Ms: number;
  maxMs: number;
}

interface Result {
  system: System;
  direction: Direction;
  samples: Sample[];
}

export async function run(): Promise<Result[]> {
  const pinning = pinThisProcess('client');
  try {
    console.log(
      `\n== chunked transfer vs one frame: ${TRANSFER_BYTES / MiB} MiB each way, server in its own process ` +
        `(${placementNote(pinning.pinned)}), ${RUNS} runs each ==`,
    );
    const payload = randomBytes(TRANSFER_BYTES);
    const results: Result[] = [];
    for (const system of ['reliable', 'raw'] as const) results.push(...(await measure(system, payload)));
    printResults(results);
    return results;
  } finally {
    pinning.restore();
  }
}

async function measure(system: System, payload: Uint8Array): Promise<Result[]> {
  const { child: server, port } = await startServerChild(`${system} transfer server`, compiledScript('transfer-server.js'), [system, String(TRANSFER_BYTES)]);
  const side = await (system === 'reliable' ? reliableSide(port) : rawSide(port));
  try {
    const results: Result[] = [];
    for (const direction of ['upload', 'download'] as const) {
      const samples: Sample[] = [];
      for (let i = 0; i < RUNS; i++) samples.push(await timed(server, () => side.transfer(direction, payload)));
      results.push({ system, direction, samples });
    }
    return results;
  } finally {
    side.close();
    await server.stop();
  }
}

async function timed(server: BenchChild, transfer: () => Promise<void>): Promise<Sample> {
  await server.request({ type: 'delay-start' }, STEP_TIMEOUT_MS);
  const started = performance.now();
  await within(transfer(), STEP_TIMEOUT_MS, 'a transfer');
  const seconds = (performance.now() - started) / 1000;
  const delay = await server.request<ChildMessage & { p99Ms: number; maxMs: number }>({ type: 'delay-stop' }, STEP_TIMEOUT_MS);
  return { seconds, p99Ms: delay.p99Ms, maxMs: delay.maxMs };
}

function expectSize(size: number): void {
  if (size !== TRANSFER_BYTES) throw new Error(`transferred ${size} bytes, expected ${TRANSFER_BYTES}`);
}

async function reliableSide(port: number): Promise<Side> {
  const client = new ReliableWsClient(`ws://127.0.0.1:${port}/ws`, { WebSocket, maxTransferBytes: TRANSFER_BYTES });
  const downloads: Array<(bytes: Uint8Array) => void> = [];
  client.on('file', (bytes: Uint8Array) => downloads.shift()?.(bytes));
  await within(new Promise((resolve) => client.on('$ready', resolve)), STEP_TIMEOUT_MS, 'the connection');
  return {
    async transfer(direction, payload) {
      if (direction === 'upload') return expectSize(await client.upload<number>('upload', payload));
      const file = new Promise<Uint8Array>((resolve) => downloads.push(resolve));
      client.send('download');
      expectSize((await file).byteLength);
    },
    close: () => client.close(),
  };
}

async function rawSide(port: number): Promise<Side> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { maxPayload: TRANSFER_BYTES });
  await once(ws, 'open');
  const next = () => once(ws, 'message') as Promise<[Buffer, boolean]>;
  return {
    async transfer(direction, payload) {
      const answer = next();
      ws.send(direction === 'upload' ? payload : 'download');
      const [data] = await answer;
      expectSize(direction === 'upload' ? Number(String(data)) : data.length);
    },
    close: () => ws.close(),
  };
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

function printResults(results: Result[]): void {
  const megabytes = TRANSFER_BYTES / 1e6;
  printTable(
    ['system', 'direction', 'MB/s (median)', 'seconds (median)', 'server event-loop delay p99 (median)', 'max delay (any run)'],
    results.map(({ system, direction, samples }) => [
      system === 'reliable' ? 'nestjs-reliable-ws (chunked)' : 'raw ws, one frame',
      direction === 'upload' ? 'client → server' : 'server → client',
      fmtMs(megabytes / median(samples.map((s) => s.seconds)), 0),
      fmtMs(median(samples.map((s) => s.seconds))),
      `${fmtMs(median(samples.map((s) => s.p99Ms)), 1)} ms`,
      `${fmtMs(Math.max(...samples.map((s) => s.maxMs)), 1)} ms`,
    ]),
  );
  console.log('MB = 10^6 bytes; event-loop delay from monitorEventLoopDelay in the server process, reset before each transfer');
}
