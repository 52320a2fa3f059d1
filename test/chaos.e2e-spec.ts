/**
 * Exactly-once under chaos: a TCP proxy (test/support/chaos-proxy.ts) between a ReliableWsClient
 * and the server cuts every connection at random every 100–500 ms while the server pushes 10,000
 * messages to the client and the client sends 10,000 messages to the server. Every push must
 * arrive exactly once and in order, every send must be handled exactly once, and no `$ready` may
 * say `missed`.
 *
 * A: memory store, one app. B: Redis, two apps, the proxy alternating between them on every
 * reconnect (each resume moves the session through the handover). C: an instance shut down
 * gracefully mid-stream (its sessions move to the other one). Plus: a gap the buffer cannot cover
 * is reported through the client's `$ready` (`missed: true`).
 *
 * Bounded: each stream pushes for STREAM_MS and then waits at most DRAIN_TIMEOUT_MS.
 */
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { WebSocket } from 'ws';
import { ReliableWsClient, RequestError, type ReadyInfo, type WebSocketConstructor } from '../lib/client/index.js';
import { BroadcastService, ReliableGateway, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { ChaosProxy } from './support/chaos-proxy.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { sleep, waitUntil, within } from './support/wait.js';

const MESSAGES = 10_000;
const STREAM_MS = 15_000;
const TICK_MS = 25;
const DRAIN_TIMEOUT_MS = 20_000;
const ROOM = 'chaos';

// ---------------------------------------------------------------------------------------------
// Server side

/** Handler runs per message index, per run. */
const handled = new Map<string, Uint16Array>();
/** `hang` requests taken. */
let hanging = 0;

@ReliableGateway({ path: '/ws' })
class ChaosGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() room: string, @ConnectedSocket() socket: ReliableSocket): Promise<void> {
    await this.broadcast.join(socket.id, room);
  }

  @SubscribeMessage('work')
  work(@MessageBody() data: { run: string; i: number }): void {
    const counts = handled.get(data.run);
    if (counts) counts[data.i]++;
  }

  /** Never answers. */
  @SubscribeMessage('hang')
  hang(): Promise<never> {
    hanging++;
    return new Promise<never>(() => undefined);
  }
}

const SERVER_OPTIONS: ReliableWsOptions = {
  allowedOrigins: '*',
  rateLimit: false,
  heartbeat: { intervalMs: 1000, timeoutMs: 2000 },
  resume: { bufferSize: 5000, ttlMs: 30_000 },
  // also how long the last instance to close waits for takers of its sessions (nobody: it waits it all)
  shutdown: { timeoutMs: 1500 },
};

// ---------------------------------------------------------------------------------------------
// Client side

function chaosClient(url: string): ReliableWsClient {
  return new ReliableWsClient(url, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    reconnect: { initialDelayMs: 10, maxDelayMs: 100, maxRetries: 1000 },
    heartbeat: { intervalMs: 500, timeoutMs: 2000 },
    queue: { maxMessages: 20_000, maxBytes: 8 * 1024 * 1024 },
    connectTimeoutMs: 5000,
  });
}

interface Observed {
  client: ReliableWsClient;
  /** Payload indices of `tick` pushes, in arrival order. */
  received: number[];
  readies: ReadyInfo[];
  errors: unknown[];
  failures: Error[];
}

function observe(client: ReliableWsClient): Observed {
  const observed: Observed = { client, received: [], readies: [], errors: [], failures: [] };
  client.on('tick', (data: { i: number }) => observed.received.push(data.i));
  client.on('$ready', (info) => observed.readies.push(info));
  client.on('$error', (error) => observed.errors.push(error));
  client.on('$failed', (error) => observed.failures.push(error));
  return observed;
}

/** How the pushes arrived: exactly once and in order means count = n and nothing else. */
function pushReport(received: number[], n: number) {
  const seen = new Uint16Array(n);
  let outOfOrder = 0;
  for (let k = 0; k < received.length; k++) {
    seen[received[k]]++;
    if (k > 0 && received[k] <= received[k - 1]) outOfOrder++;
  }
  return {
    count: received.length,
    missing: seen.filter((c) => c === 0).length,
    duplicated: seen.filter((c) => c > 1).length,
    outOfOrder,
  };
}

function sendReport(counts: Uint16Array) {
  return { neverHandled: counts.filter((c) => c === 0).length, handledTwiceOrMore: counts.filter((c) => c > 1).length };
}

interface StreamPlan {
  run: string;
  /** Who pushes (may change while streaming). */
  pusher: () => BroadcastService;
  /** Runs once, halfway through the stream, without holding it up. */
  midway?: () => Promise<void>;
}

/**
 * Streams MESSAGES pushes (alternately to the session's room and to the session itself) and
 * MESSAGES client sends over STREAM_MS, then waits (bounded) until everything arrived.
 */
async function stream(observed: Observed, plan: StreamPlan): Promise<void> {
  const { client } = observed;
  const counts = new Uint16Array(MESSAGES);
  handled.set(plan.run, counts);
  const sessionId = client.sessionId!;
  const ticks = Math.ceil(STREAM_MS / TICK_MS);
  const perTick = Math.ceil(MESSAGES / ticks);
  let pushed = 0;
  let sent = 0;
  let midway: Promise<void> | undefined;
  const pushFailures: unknown[] = [];
  for (let tick = 0; tick < ticks && (pushed < MESSAGES || sent < MESSAGES); tick++) {
    const batch: Array<Promise<void>> = [];
    const broadcast = plan.pusher();
    for (let k = 0; k < perTick && pushed < MESSAGES; k++, pushed++) {
      const data = { i: pushed };
      batch.push(pushed % 2 === 0 ? broadcast.toRoom(ROOM, 'tick', data) : broadcast.toClient(sessionId, 'tick', data));
    }
    for (let k = 0; k < perTick && sent < MESSAGES; k++, sent++) client.send('work', { run: plan.run, i: sent });
    await Promise.all(batch).catch((error: unknown) => pushFailures.push(error));
    if (!midway && plan.midway && pushed >= MESSAGES / 2) midway = plan.midway();
    await sleep(TICK_MS);
  }
  if (midway) await within(midway, 15_000, 'the midway step');
  expect(pushFailures).toEqual([]);
  await waitUntil(
    () => observed.received.length >= MESSAGES && counts.every((c) => c > 0) && client.queueLength === 0,
    {
      timeoutMs: DRAIN_TIMEOUT_MS,
      intervalMs: 50,
      what: `all pushes and sends (${observed.received.length} received, ${counts.filter((c) => c > 0).length} handled, queue ${client.queueLength})`,
    },
  ).catch(() => undefined); // the assertions below say what is missing
  await sleep(200); // anything doubled would arrive now
  expect({
    pushes: pushReport(observed.received, MESSAGES),
    sends: sendReport(counts),
    missedReadies: observed.readies.filter((r) => r.missed).length,
    newSessions: observed.readies.filter((r) => !r.resumed).length,
    errors: observed.errors,
    failures: observed.failures.map(String),
    queueLength: client.queueLength,
  }).toEqual({
    pushes: { count: MESSAGES, missing: 0, duplicated: 0, outOfOrder: 0 },
    sends: { neverHandled: 0, handledTwiceOrMore: 0 },
    missedReadies: 0,
    newSessions: 1, // the first one
    errors: [],
    failures: [],
    queueLength: 0,
  });
  expect(client.sessionId).toBe(sessionId);
}

/** Opens the client and waits for its first session, then joins the room. */
async function connected(url: string): Promise<Observed> {
  const observed = observe(chaosClient(url));
  await waitUntil(() => observed.readies.length > 0, { what: 'the first $ready' });
  await observed.client.request('join', ROOM, { timeoutMs: 5000 });
  return observed;
}

const clients: ReliableWsClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

// ---------------------------------------------------------------------------------------------

describe('chaos: connections cut at random every 100–500 ms', () => {
  it('A (memory, one app): 10,000 pushes exactly once in order, 10,000 sends handled exactly once, never missed', async () => {
    const app = await startApp(SERVER_OPTIONS, [ChaosGateway]);
    const proxy = await ChaosProxy.start(app.port);
    try {
      const observed = await connected(proxy.url('/ws'));
      clients.push(observed.client);
      proxy.startChaos(100, 500);
      await stream(observed, { run: 'A', pusher: () => app.app.get(BroadcastService) });
      proxy.stopChaos();
      expect(proxy.cuts).toBeGreaterThanOrEqual(10);
      expect(observed.readies.filter((r) => r.resumed).length).toBeGreaterThanOrEqual(10);
    } finally {
      await proxy.close();
      await app.close();
    }
  }, 60_000);

  it('B (Redis, two apps, every reconnect on the other instance): exactly once through the handovers', async () => {
    const options: ReliableWsOptions = { ...SERVER_OPTIONS, broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('chaos-b') } };
    const a = await startApp(options, [ChaosGateway]);
    const b = await startApp(options, [ChaosGateway]);
    const proxy = await ChaosProxy.start(ChaosProxy.alternating([a.port, b.port]));
    try {
      const observed = await connected(proxy.url('/ws'));
      clients.push(observed.client);
      proxy.startChaos(100, 500);
      await stream(observed, { run: 'B', pusher: () => a.app.get(BroadcastService) });
      proxy.stopChaos();
      expect(proxy.cuts).toBeGreaterThanOrEqual(10);
      expect(observed.readies.filter((r) => r.resumed).length).toBeGreaterThanOrEqual(10);
      // the client did move between the instances
      expect(new Set(proxy.upstreams)).toEqual(new Set([a.port, b.port]));
    } finally {
      await proxy.close();
      await a.close();
      await b.close();
    }
  }, 90_000);
});

describe('chaos: graceful shutdown of an instance mid-stream', () => {
  it('C (Redis): the session moves to the other instance; nothing lost or doubled', async () => {
    const options: ReliableWsOptions = { ...SERVER_OPTIONS, broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('chaos-c') } };
    const a = await startApp(options, [ChaosGateway]);
    const b = await startApp(options, [ChaosGateway]);
    const proxy = await ChaosProxy.start(a.port);
    try {
      const observed = await connected(proxy.url('/ws'));
      clients.push(observed.client);
      const pusher = b.app.get(BroadcastService);
      let closedA = false;
      await stream(observed, {
        run: 'C',
        pusher: () => pusher,
        midway: async () => {
          proxy.upstream = b.port;
          await a.close();
          closedA = true;
        },
      });
      expect(closedA).toBe(true);
      expect(observed.readies.map((r) => [r.resumed, r.missed])).toEqual([
        [false, false],
        [true, false],
      ]);
      expect(proxy.upstreams).toEqual([a.port, b.port]);
    } finally {
      await proxy.close();
      await a.close();
      await b.close();
    }
  }, 90_000);
});

describe('chaos: a gap the buffer cannot cover', () => {
  it('is reported as $ready { missed: true }; requests of the lost session fail with SESSION_LOST; queued sends go out once', async () => {
    const app = await startApp({ ...SERVER_OPTIONS, resume: { bufferSize: 5, ttlMs: 30_000 } }, [ChaosGateway]);
    const proxy = await ChaosProxy.start(app.port);
    const broadcast = app.app.get(BroadcastService);
    try {
      const observed = await connected(proxy.url('/ws'));
      const { client } = observed;
      clients.push(client);
      const counts = new Uint16Array(1);
      handled.set('gap', counts);
      const firstSession = client.sessionId!;
      for (let i = 0; i < 2; i++) await broadcast.toClient(firstSession, 'tick', { i });
      await waitUntil(() => observed.received.length === 2, { what: 'the first pushes' });
      const hangsBefore = hanging;
      const lost = client.request('hang', null, { timeoutMs: 20_000 }).then(
        () => 'resolved',
        (error: unknown) => (error instanceof RequestError ? error.code : String(error)),
      );
      await waitUntil(() => hanging === hangsBefore + 1, { what: 'the hanging request to reach the server' });

      proxy.refusing = true;
      proxy.cutAll();
      await waitUntil(() => client.state === 'reconnecting', { what: 'the client to notice' });
      for (let i = 2; i < 12; i++) await broadcast.toClient(firstSession, 'tick', { i }); // 10 > bufferSize 5
      client.send('work', { run: 'gap', i: 0 });
      proxy.refusing = false;

      await waitUntil(() => observed.readies.length === 2, { timeoutMs: 5000, what: 'the second $ready' });
      expect(observed.readies[1]).toMatchObject({ resumed: false, missed: true });
      expect(client.sessionId).not.toBe(firstSession);
      expect(await within(lost, 5000, 'the lost request')).toBe('SESSION_LOST');
      await waitUntil(() => counts[0] > 0 && client.queueLength === 0, { what: 'the queued send to be handled' });
      // nothing of the lost session is replayed; the new one numbers afresh and delivers
      await broadcast.toClient(client.sessionId!, 'tick', { i: 100 });
      await waitUntil(() => observed.received.length === 3, { what: 'a push in the new session' });
      await sleep(150);
      expect(observed.received).toEqual([0, 1, 100]);
      expect(counts[0]).toBe(1);
    } finally {
      await proxy.close();
      await app.close();
    }
  }, 30_000);
});
