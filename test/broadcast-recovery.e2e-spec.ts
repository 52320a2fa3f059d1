import { Redis } from 'ioredis';
import { BroadcastService, type BroadcastOptions, type ReliableWsOptions } from '../lib/index.js';
import type { TestApp } from './support/app.js';
import { startApp } from './support/app.js';
import { broadcastLoop, expectExactlyOnceInOrder } from './support/broadcast-loop.js';
import { BroadcastGateway, call, closeAll, connectPeer, pushesOf, type Peer } from './support/broadcast-app.js';
import { getHealth } from './support/health.js';
import { adminConnection, freePort, ThrowawayRedis, uniquePrefix } from './support/redis.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

/**
 * DESIGN.md §8.2: a broadcast whose promise resolved reaches every recipient session on every
 * instance, in order, across subscriber reconnects and a paused Redis; where it cannot (history
 * trimmed, Redis restarted without its data) the sessions are closed with 1012 and their resume
 * answers `missed: true`. Every fault here is real: a throwaway redis-server, CLIENT KILL,
 * SIGSTOP, a TCP proxy between an instance and Redis.
 */

interface Instance {
  app: TestApp;
  service: BroadcastService;
}

let redis: ThrowawayRedis;
let admin: Redis;
const instances: Instance[] = [];
const clients: TestClient[] = [];
const proxies: TcpProxy[] = [];
let ids = 1;
/** What the instances of the current test logged: shown when an expected close does not come. */
const appLog: string[] = [];
const startedAt = performance.now();
const record =
  (level: string) =>
  (message: unknown, context?: string): void => {
    appLog.push(`${(performance.now() - startedAt).toFixed(0)} ms ${level} ${context ?? ''}: ${String(message)}`);
  };
const logger = { log: record('log'), warn: record('warn'), error: record('error'), debug: () => undefined, verbose: () => undefined };

async function closeCode(client: TestClient, timeoutMs: number): Promise<number> {
  try {
    return (await client.closed(timeoutMs)).code;
  } catch (error) {
    throw new Error(`${(error as Error).message}\nthe instances logged:\n${appLog.join('\n')}`);
  }
}

function options(url: string, channelPrefix: string, extra: Partial<BroadcastOptions>): ReliableWsOptions {
  return {
    heartbeat: { intervalMs: 60000, timeoutMs: 60000 },
    rateLimit: false,
    allowedOrigins: '*',
    broadcast: { redis: url, channelPrefix, canaryIntervalMs: 60000, commandTimeoutMs: 500, ...extra },
  };
}

async function instance(url: string, prefix: string, extra: Partial<BroadcastOptions> = {}): Promise<Instance> {
  const app = await within(startApp(options(url, prefix, extra), [BroadcastGateway], { logger }), 15000, 'starting an instance');
  const created = { app, service: app.app.get(BroadcastService) };
  instances.push(created);
  return created;
}

async function peer(on: Instance, room?: string): Promise<Peer> {
  const p = await connectPeer(on.app.wsUrl('/ws'), { resumable: true });
  clients.push(p.client);
  if (room) await call(p.client, 'join', { room }, ids++);
  return p;
}

async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await TcpProxy.start(port);
  proxies.push(proxy);
  return proxy;
}

const ticks = (client: TestClient, event: string): number[] => pushesOf(client, event).map((frame) => frame.data as number);

async function healthStatus(on: Instance): Promise<number> {
  return (await getHealth(on.app.httpUrl('/health/ws'))).status;
}

beforeAll(async () => {
  redis = new ThrowawayRedis(await freePort());
  await redis.start();
  admin = await adminConnection(redis.url);
});

afterEach(async () => {
  appLog.length = 0;
  redis.resume();
  for (const proxy of proxies.splice(0)) await proxy.close();
  await closeAll(clients);
  await Promise.all(instances.splice(0).map((i) => within(i.app.close(), 15000, 'app.close()')));
});

afterAll(async () => {
  admin?.disconnect();
  await redis?.kill();
});

describe('no loss across subscriber reconnects', () => {
  it('10 CLIENT KILL TYPE pubsub while broadcasting every 5 ms: every resolved broadcast arrives once, in order', async () => {
    const prefix = uniquePrefix('kill10');
    const A = await instance(redis.url, prefix);
    const B = await instance(redis.url, prefix);
    const onB = await peer(B, 'r');
    const onA = await peer(A, 'r');
    const room = broadcastLoop((n) => A.service.toRoom('r', 'tick', n), 5);
    const all = broadcastLoop((n) => B.service.toAll('all', n), 5);
    try {
      for (let kill = 0; kill < 10; kill++) {
        await sleep(200);
        expect(Number(await admin.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2);
      }
      await sleep(300);
    } finally {
      await room.stop();
      await all.stop();
    }
    expect(room.resolved.length).toBeGreaterThan(200);
    for (const [client, event, loop] of [
      [onB.client, 'tick', room],
      [onA.client, 'tick', room],
      [onA.client, 'all', all],
      [onB.client, 'all', all],
    ] as const) {
      await waitUntil(() => ticks(client, event).length >= loop.resolved.length, {
        timeoutMs: 5000,
        what: `${loop.resolved.length} "${event}" pushes (got ${ticks(client, event).length})`,
      });
      expectExactlyOnceInOrder(ticks(client, event), loop.resolved);
    }
    expect(onB.client.raw.readyState).toBe(onB.client.raw.OPEN);
    await waitUntil(async () => (await healthStatus(B)) === 200, { what: 'B healthy again' });
  }, 60000);

  it('an instance cut from Redis for a second catches up from the history: nothing lost, health 503 meanwhile', async () => {
    const prefix = uniquePrefix('outage');
    const proxy = await proxyTo(redis.port);
    const A = await instance(redis.url, prefix);
    const B = await instance(`redis://127.0.0.1:${proxy.port}`, prefix);
    const x = await peer(B, 'r');
    const loop = broadcastLoop((n) => A.service.toRoom('r', 'tick', n), 5);
    try {
      await sleep(200);
      proxy.stall();
      proxy.cutAll();
      const cutAt = Date.now();
      await waitUntil(async () => (await healthStatus(B)) === 503, { timeoutMs: 3000, intervalMs: 50, what: '503 within 3 s' });
      expect(Date.now() - cutAt).toBeLessThan(3000);
      await sleep(1000);
      proxy.resume();
      await sleep(500);
    } finally {
      await loop.stop();
    }
    await waitUntil(() => ticks(x.client, 'tick').length >= loop.resolved.length, {
      timeoutMs: 10000,
      what: `${loop.resolved.length} ticks (got ${ticks(x.client, 'tick').length})`,
    });
    expectExactlyOnceInOrder(ticks(x.client, 'tick'), loop.resolved);
    await waitUntil(async () => (await healthStatus(B)) === 200, { timeoutMs: 10000, what: 'B healthy once caught up' });
  }, 30000);
});

describe('honest when it cannot recover', () => {
  it('history trimmed during an outage: the room members are closed 1012 and their resume answers missed: true', async () => {
    const prefix = uniquePrefix('trimmed');
    const proxy = await proxyTo(redis.port);
    const A = await instance(redis.url, prefix, { historySize: 5 });
    const B = await instance(`redis://127.0.0.1:${proxy.port}`, prefix, { historySize: 5 });
    const member = await peer(B, 'r');
    const bystander = await peer(B);
    await A.service.toRoom('r', 'tick', 0);
    await waitUntil(() => ticks(member.client, 'tick').length === 1, { what: 'the first tick' });
    proxy.stall();
    proxy.cutAll();
    for (let n = 1; n <= 50; n++) await A.service.toRoom('r', 'tick', n);
    proxy.resume();
    expect(await closeCode(member.client, 10000)).toBe(1012);
    expect(bystander.client.raw.readyState).toBe(bystander.client.raw.OPEN);

    const again = await connectPeerResuming(B, member);
    expect(again).toMatchObject({ resumed: false, missed: true });
  }, 30000);

  it('Redis restarted without its data: every session is closed 1012, its resume answers missed: true', async () => {
    await withOwnRedis(async (own) => {
      const { B, x } = await tickReceivedThroughRedis(own.url, own.url, uniquePrefix('wiped'));
      await own.kill();
      await own.start();
      expect(await closeCode(x.client, 15000)).toBe(1012);
      await waitUntil(async () => (await healthStatus(B)) === 200, { timeoutMs: 10000, what: 'B healthy after the restart' });
      expect(await connectPeerResuming(B, x)).toMatchObject({ resumed: false, missed: true });
    });
  }, 40000);
});

describe('a subscriber back but not answering', () => {
  it('its first PING after a reconnect goes unanswered: health stays 503, and once Redis answers it is asked again and catches up (here: 1012, Redis lost its data)', async () => {
    await withOwnRedis(async (own) => {
      const proxy = await proxyTo(own.port);
      const { B, x } = await tickReceivedThroughRedis(own.url, `redis://127.0.0.1:${proxy.port}`, uniquePrefix('unanswered'));
      // Only a subscriber sends PING (after each reconnect), and only B's go through the proxy: its answer, and what follows on that connection, is held.
      proxy.stallDownAfter('\r\nping\r\n');
      await own.kill();
      await own.start();
      await waitUntil(() => proxy.heldDownBytes > 0, { timeoutMs: 10000, what: "the PING after B's reconnect, answered and held" });
      await sleep(1500); // three times the command timeout: that PING has failed
      expect(await healthStatus(B)).toBe(503);
      expect(x.client.raw.readyState).toBe(x.client.raw.OPEN);
      proxy.resume();
      expect(await closeCode(x.client, 5000)).toBe(1012);
      await waitUntil(async () => (await healthStatus(B)) === 200, { timeoutMs: 10000, what: 'B healthy once caught up' });
    });
  }, 40000);
});

describe('a paused Redis (SIGSTOP)', () => {
  it('publishes reject within the command timeout, health is 503; after SIGCONT what resolved before arrives, nothing lost', async () => {
    const prefix = uniquePrefix('paused');
    const A = await instance(redis.url, prefix, { commandTimeoutMs: 500 });
    const B = await instance(redis.url, prefix, { commandTimeoutMs: 500 });
    const x = await peer(B, 'r');
    const loop = broadcastLoop((n) => A.service.toRoom('r', 'tick', n), 5);
    await sleep(200);
    redis.pause();
    try {
      const started = Date.now();
      await expect(within(A.service.toRoom('r', 'paused', 0), 2000, 'a publish to a paused Redis')).rejects.toThrow(/within 500 ms/);
      expect(Date.now() - started).toBeLessThan(1000);
      await waitUntil(async () => (await healthStatus(A)) === 503, { timeoutMs: 3000, intervalMs: 50, what: 'A 503 while paused' });
    } finally {
      redis.resume();
    }
    await sleep(300);
    await loop.stop();
    await waitUntil(() => ticks(x.client, 'tick').length >= loop.resolved.length, {
      timeoutMs: 10000,
      what: `${loop.resolved.length} ticks`,
    });
    expectExactlyOnceInOrder(ticks(x.client, 'tick'), loop.resolved);
    await waitUntil(async () => (await healthStatus(A)) === 200, { timeoutMs: 5000, what: 'A healthy after SIGCONT' });
  }, 30000);
});

describe('health sees a lost subscriber connection at once', () => {
  it('a killed Redis gives 503 within 3 s (not after the canary), and 200 once it is back', async () => {
    const prefix = uniquePrefix('killed');
    const own = new ThrowawayRedis(await freePort());
    await own.start();
    try {
      const A = await instance(own.url, prefix, { canaryIntervalMs: 60000 });
      expect(await healthStatus(A)).toBe(200);
      await own.kill();
      const killedAt = Date.now();
      await waitUntil(async () => (await healthStatus(A)) === 503, { timeoutMs: 3000, intervalMs: 50, what: '503 within 3 s' });
      expect(Date.now() - killedAt).toBeLessThan(3000);
      await own.start();
      await waitUntil(async () => (await healthStatus(A)) === 200, { timeoutMs: 10000, what: '200 once Redis is back' });
    } finally {
      await Promise.all(instances.splice(0).map((i) => within(i.app.close(), 15000, 'app.close()')));
      await own.kill();
    }
  }, 30000);
});

/** Opens a new rws.v1 connection that asks to resume `previous`'s session; returns its `$ready`. */
/** Runs `test` with a Redis of its own (it may be killed and restarted), closing the instances before that Redis goes. */
async function withOwnRedis(test: (own: ThrowawayRedis) => Promise<void>): Promise<void> {
  const own = new ThrowawayRedis(await freePort());
  await own.start();
  try {
    await test(own);
  } finally {
    await Promise.all(instances.splice(0).map((i) => within(i.app.close(), 15000, 'app.close()')));
    await own.kill();
  }
}

/**
 * A (at `urlA`) broadcasts a first tick to room `r`; B (at `urlB`) has a session there that got
 * it through its subscriber, so B knows the channel's position in Redis.
 */
async function tickReceivedThroughRedis(urlA: string, urlB: string, prefix: string): Promise<{ B: Instance; x: Peer }> {
  const A = await instance(urlA, prefix);
  const B = await instance(urlB, prefix);
  const x = await peer(B, 'r');
  await A.service.toRoom('r', 'tick', 1);
  await waitUntil(() => ticks(x.client, 'tick').length === 1, { what: 'the first tick, on B' });
  return { B, x };
}

async function connectPeerResuming(on: Instance, previous: Peer): Promise<Record<string, unknown>> {
  const client = new TestClient(on.app.wsUrl('/ws'), 'rws.v1');
  clients.push(client);
  await client.open();
  client.send({ event: '$hello', data: { resume: { sessionId: previous.sessionId, resumeToken: previous.resumeToken, lastSeq: 0 } } });
  return (await client.next((frame) => frame.event === '$ready')).data as Record<string, unknown>;
}
