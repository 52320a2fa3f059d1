/**
 * What a `send()` costs the client while earlier sends wait for their answer (not a test): a
 * client on a socket that takes everything and answers nothing, the time per send as the queue
 * grows. Flat means O(1) per send; a queue walked on every send would grow with it.
 */
import { ReliableWsClient } from '../lib/client/reliable-ws-client.js';
import type { WebSocketLike } from '../lib/client/reliable-ws-client.interfaces.js';

/** A socket that opens at once, answers `$hello` with `$ready`, and then answers nothing. */
class SilentSocket implements WebSocketLike {
  readyState = 0;
  bufferedAmount = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor() {
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }

  send(data: string | Uint8Array): void {
    if (typeof data === 'string' && data.includes('"$hello"')) {
      const ready = { sessionId: 'bench', resumeToken: 'bench', resumed: false, missed: false, lastId: 0, heartbeatMs: 30000 };
      queueMicrotask(() => this.onmessage?.({ data: JSON.stringify({ event: '$ready', data: ready }) }));
    }
  }

  close(): void {
    this.readyState = 3;
  }
}

const STEPS = [1_000, 5_000, 10_000, 20_000];

export async function run(): Promise<void> {
  console.log('\n## client-queue: µs per send() while earlier sends wait for their answer');
  const client = new ReliableWsClient('ws://bench.invalid/ws', {
    WebSocket: SilentSocket,
    heartbeat: false,
    queue: { maxMessages: 100_000, maxBytes: 64 * 1024 * 1024 },
  });
  await new Promise<void>((resolve) => client.on('$ready', () => resolve()));
  console.log('| queued before | sends | µs per send |\n|--:|--:|--:|');
  let queued = 0;
  for (const step of STEPS) {
    const count = step - queued;
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) client.send('note', i);
    const micros = Number(process.hrtime.bigint() - started) / 1000 / count;
    console.log(`| ${queued.toLocaleString('en')} | ${count.toLocaleString('en')} | ${micros.toFixed(2)} |`);
    queued = step;
  }
  client.close();
}
