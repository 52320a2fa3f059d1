import { jest } from '@jest/globals';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { WebSocket } from 'ws';
import { ReliableGateway } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { getHealth } from './support/health.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

// Loose enough that a busy CI machine (a stalled event loop of a few hundred ms) cuts no healthy client.
const INTERVAL_MS = 200;
const TIMEOUT_MS = 400;

describe('heartbeat (intervalMs 200, timeoutMs 400)', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  /** Opens a client, waits for `$ready`, and counts the protocol pings it receives. */
  async function connect(options: { autoPong?: boolean } = {}): Promise<{ client: TestClient; pings: () => number; createdAt: number }> {
    const createdAt = Date.now();
    const client = new TestClient(t.wsUrl('/ws'), undefined, options);
    clients.push(client);
    let pings = 0;
    client.raw.on('ping', () => pings++);
    await client.open();
    await client.next((f) => f.event === '$ready');
    return { client, pings: () => pings, createdAt };
  }

  async function connections(): Promise<number> {
    const health = await getHealth(t.httpUrl('/health/ws'));
    expect(health.status).toBe(200);
    return health.body.connections;
  }

  beforeAll(async () => {
    t = await startApp({ heartbeat: { intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS } }, [EchoGateway]);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    // let the server notice, so that the next test starts from zero connections
    await waitUntil(async () => (await connections()) === 0, { timeoutMs: 3000, what: 'no connections left' });
  });

  afterAll(() => t.close());

  it('$ready reports heartbeatMs = heartbeat.intervalMs', async () => {
    const client = new TestClient(t.wsUrl('/ws'));
    clients.push(client);
    const ready = await client.next((f) => f.event === '$ready');
    expect(ready.data.heartbeatMs).toBe(INTERVAL_MS);
  });

  it('terminates a client that sends nothing and answers no pings (close 1006) within 2 s', async () => {
    const { client, pings, createdAt } = await connect({ autoPong: false });
    const closed = await client.closed(2000);
    const elapsed = Date.now() - createdAt;
    expect(closed.code).toBe(1006); // terminated, no close frame
    expect(pings()).toBeGreaterThanOrEqual(1); // the server did ping it first
    // a peer is only dead after interval + timeout of silence (lower bound, not a speed check)
    expect(elapsed).toBeGreaterThanOrEqual(INTERVAL_MS + TIMEOUT_MS - 10);
  });

  it('keeps a normal (auto-pong) client open for over 2 s, and it still gets replies', async () => {
    const { client, pings } = await connect();
    await sleep(2000);
    expect(client.raw.readyState).toBe(WebSocket.OPEN);
    expect(pings()).toBeGreaterThanOrEqual(3); // it was pinged all along and answered
    expect(await client.request('echo', { n: 1 }, 1)).toEqual({ event: 'echo', data: { n: 1 }, ref: 1 });
  });

  it('keeps a client alive that answers no pings but keeps sending $ping frames; it dies once it stops', async () => {
    const { client, pings } = await connect({ autoPong: false });
    const ITERATIONS = 40; // 40 × 50 ms = 2 s, well beyond interval + timeout
    for (let i = 0; i < ITERATIONS; i++) {
      client.send({ event: '$ping', data: { i } });
      await sleep(50);
      expect(client.raw.readyState).toBe(WebSocket.OPEN);
    }
    expect(pings()).toBeGreaterThanOrEqual(3); // pinged, never ponged
    const pongs = client.frames.filter((f) => f.event === '$pong');
    expect(pongs.length).toBeGreaterThanOrEqual(ITERATIONS - 2);
    expect(await client.request('echo', 'still here', 2)).toEqual({ event: 'echo', data: 'still here', ref: 2 });
    // once it falls silent, the same client is cut: the frames were what kept it alive
    expect((await client.closed(3000)).code).toBe(1006);
  });

  it('answers $ping {t: 1} with $pong carrying the same data', async () => {
    const { client } = await connect();
    client.send({ event: '$ping', data: { t: 1 } });
    expect(await client.next((f) => f.event === '$pong')).toEqual({ event: '$pong', data: { t: 1 } });
  });

  describe('when the wall clock steps (NTP, a VM resumed): the heartbeat keeps time by a monotonic clock', () => {
    const realNow = Date.now;
    let stepMs = 0;
    beforeEach(() => {
      stepMs = 0;
      jest.spyOn(Date, 'now').mockImplementation(() => realNow() + stepMs);
    });
    afterEach(() => jest.restoreAllMocks());

    it('a step forward cuts no healthy client', async () => {
      const { client, pings } = await connect();
      stepMs = 60_000;
      await sleep(1000); // several sweeps
      expect(client.raw.readyState).toBe(WebSocket.OPEN);
      expect(pings()).toBeGreaterThanOrEqual(2);
    });

    it('a step back still pings, and still cuts a silent peer', async () => {
      const { client, pings } = await connect({ autoPong: false });
      stepMs = -60_000;
      expect((await client.closed(3000)).code).toBe(1006);
      expect(pings()).toBeGreaterThanOrEqual(1);
    });
  });

  it('drops a terminated connection from the health endpoint count', async () => {
    const { client: alive } = await connect();
    const { client: silent } = await connect({ autoPong: false });
    expect(await connections()).toBe(2);
    expect((await silent.closed(3000)).code).toBe(1006);
    await waitUntil(async () => (await connections()) === 1, { timeoutMs: 2000, what: 'connections to drop to 1' });
    expect(alive.raw.readyState).toBe(WebSocket.OPEN);
  });
});
