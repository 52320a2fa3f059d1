import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { WebSocket } from 'ws';
import { ReliableGateway, type ReliableSocket } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { getHealth } from './support/health.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

const MAX_BUFFERED = 64 * 1024;
const CHUNK = 16 * 1024;

interface FloodStats {
  attempted: number;
  /** sends made while the socket was still open (before the cut) */
  sentWhileOpen: number;
  /** largest `raw.bufferedAmount` seen right after a send */
  maxBuffered: number;
  /** bytes of the largest frame pushed */
  frameBytes: number;
  done: boolean;
}

let stats: FloodStats;
const resetStats = (): void => {
  stats = { attempted: 0, sentWhileOpen: 0, maxBuffered: 0, frameBytes: 0, done: false };
};

@ReliableGateway({ path: '/ws' })
class FloodGateway {
  /** Test-only: pushes `count` messages of `size` bytes synchronously and records the send buffer. */
  @SubscribeMessage('flood')
  flood(@MessageBody() body: { count: number; size: number }, @ConnectedSocket() socket: ReliableSocket) {
    const payload = 'x'.repeat(body.size);
    for (let i = 0; i < body.count; i++) {
      const open = socket.raw.readyState === WebSocket.OPEN;
      socket.send('chunk', { i, payload });
      stats.attempted++;
      if (open) stats.sentWhileOpen++;
      stats.frameBytes = Math.max(stats.frameBytes, JSON.stringify({ event: 'chunk', data: { i, payload }, seq: i + 1 }).length);
      stats.maxBuffered = Math.max(stats.maxBuffered, socket.raw.bufferedAmount);
    }
    stats.done = true;
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

describe('backpressure (maxBufferedBytes 64 KiB)', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  async function client(): Promise<TestClient> {
    const c = await TestClient.ready(t.wsUrl('/ws'));
    clients.push(c);
    return c;
  }

  async function connections(): Promise<number> {
    const health = await getHealth(t.httpUrl('/health/ws'));
    return health.body.connections;
  }

  beforeAll(async () => {
    t = await startApp({ backpressure: { maxBufferedBytes: MAX_BUFFERED } }, [FloodGateway]);
  });

  beforeEach(() => resetStats());

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await waitUntil(async () => (await connections()) === 0, { timeoutMs: 5000, what: 'no connections left' });
  });

  afterAll(() => t.close());

  it('cuts a paused consumer with 4009, bounds the send buffer, and keeps serving other clients', async () => {
    const slow = await client();
    const other = await client();
    expect(await connections()).toBe(2);

    slow.raw.pause(); // stop reading from the TCP socket: the receive window fills up
    slow.send({ event: 'flood', data: { count: 2000, size: CHUNK } });

    // the other client is served correctly while the flood and the cut happen
    for (let i = 0; i < 10; i++) {
      expect(await other.request('echo', { i, text: `hello ${i}` }, 100 + i)).toEqual({
        event: 'echo',
        data: { i, text: `hello ${i}` },
        ref: 100 + i,
      });
    }
    await waitUntil(() => stats.done, { timeoutMs: 5000, what: 'the flood handler to finish' });

    await sleep(300);
    slow.raw.resume(); // now read everything, including the close frame (within the server's grace)
    const closed = await slow.closed(5000);
    expect(closed.code).toBe(4009);

    // the server stopped writing: not all 2,000 messages went out
    expect(stats.sentWhileOpen).toBeLessThan(2000);
    // the unsent data never grew beyond the bound by more than one message
    expect(stats.maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED + stats.frameBytes);

    // what did arrive is intact and in order: seq 1..k without gaps
    const chunks = slow.frames.filter((f) => f.event === 'chunk');
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.length).toBeLessThan(2000);
    chunks.forEach((frame, index) => {
      expect(frame.seq).toBe(index + 1);
      expect(frame.data.i).toBe(index);
      expect(frame.data.payload.length).toBe(CHUNK);
    });

    // the other client saw none of it and is still fine
    expect(other.frames.filter((f) => f.event === 'chunk')).toEqual([]);
    expect(await other.request('echo', 'after', 200)).toEqual({ event: 'echo', data: 'after', ref: 200 });
    await waitUntil(async () => (await connections()) === 1, { timeoutMs: 3000, what: 'connections to drop to 1' });
    expect(other.raw.readyState).toBe(WebSocket.OPEN);
  });

  it('destroys a slow consumer that never reads its close frame (after a grace period)', async () => {
    const slow = await client();
    const other = await client();
    slow.raw.pause(); // and never resumed
    slow.send({ event: 'flood', data: { count: 2000, size: CHUNK } });
    await waitUntil(() => stats.done, { timeoutMs: 5000, what: 'the flood handler to finish' });
    expect(stats.sentWhileOpen).toBeLessThan(2000);
    expect(stats.maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED + stats.frameBytes);
    // the close handshake cannot complete, so the server must drop the socket on its own
    await waitUntil(async () => (await connections()) === 1, {
      timeoutMs: 8000,
      intervalMs: 100,
      what: 'the unread slow consumer to be dropped',
    });
    expect(await other.request('echo', 1, 1)).toEqual({ event: 'echo', data: 1, ref: 1 });
  });

  it('answers protocol pings within the bound: a client that pings without reading is cut, not buffered for', async () => {
    const pinger = await client();
    const other = await client();
    pinger.raw.pause(); // never reads the pongs
    const payload = Buffer.alloc(125, 7); // the largest a ping may carry
    let sent = 0;
    // 12.5 MB of pongs: more than the kernel's socket buffers take, so the rest would wait in the server
    while (sent < 100_000 && pinger.raw.readyState === WebSocket.OPEN) {
      pinger.raw.ping(payload);
      sent++;
      if (sent % 5000 === 0) await sleep(1); // let the server read
    }
    await waitUntil(async () => (await connections()) === 1, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'the pinger that never reads to be cut',
    });
    expect(await other.request('echo', 'still here', 1)).toEqual({ event: 'echo', data: 'still here', ref: 1 });
  });

  it('delivers a burst below the bound in full to a client that is not reading yet', async () => {
    const c = await client();
    c.raw.pause();
    c.send({ event: 'flood', data: { count: 3, size: CHUNK } }); // ~48 KiB < 64 KiB
    await waitUntil(() => stats.done, { timeoutMs: 5000, what: 'the flood handler to finish' });
    await sleep(100);
    c.raw.resume();
    const received = [];
    for (let i = 0; i < 3; i++) received.push(await c.next((f) => f.event === 'chunk'));
    expect(received.map((f) => [f.seq, f.data.i, f.data.payload.length])).toEqual([
      [1, 0, CHUNK],
      [2, 1, CHUNK],
      [3, 2, CHUNK],
    ]);
    expect(c.raw.readyState).toBe(WebSocket.OPEN);
    expect(await c.request('echo', 'ok', 1)).toEqual({ event: 'echo', data: 'ok', ref: 1 });
  });
});
