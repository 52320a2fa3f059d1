import { Cluster } from 'ioredis';
import { createServer } from 'node:net';
import { BroadcastService, type BroadcastOptions, type ReliableWsOptions } from '../lib/index.js';
import { broadcastLoop, expectExactlyOnceInOrder } from './support/broadcast-loop.js';
import { startApp, type TestApp } from './support/app.js';
import { createApp } from './support/app-with-logger.js';
import { BroadcastGateway, call, closeAll, connectPeer, pushesOf, waitForPushes, type Peer } from './support/broadcast-app.js';
import { getHealth } from './support/health.js';
import { ThrowawayRedisCluster } from './support/redis-cluster.js';
import { freePort, shardNumsub, uniquePrefix, waitForCount } from './support/redis.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

/**
 * DESIGN.md §8.2: `sharded: true` against a real Redis Cluster of three masters started for this
 * file. Broadcasts, rooms on every shard, direct pushes, remote joins, a given ioredis Cluster and
 * an unreachable one, recovery across pubsub kills on every node and a cut instance, a slot moved
 * while broadcasting, and a session handed over between instances.
 */

/** Time given to a duplicate to show up before counting. */
const SETTLE_MS = 300;
/** The canary is late after three intervals without it; the fourth interval's check would see that. */
const CANARY_MS = 300;

interface Instance {
  name: string;
  app: TestApp;
  service: BroadcastService;
}

let cluster: ThrowawayRedisCluster;
const instances: Instance[] = [];
const clients: TestClient[] = [];
const proxies: TcpProxy[] = [];
let ids = 1;

function options(channelPrefix: string, redis: BroadcastOptions['redis']): ReliableWsOptions {
  return {
    auth: { verify: (token: string) => (token ? { id: token.split('.')[0] } : null) },
    heartbeat: { intervalMs: 60000, timeoutMs: 60000 },
    rateLimit: false,
    broadcast: { redis, sharded: true, channelPrefix, canaryIntervalMs: CANARY_MS, commandTimeoutMs: 1000 },
  };
}

async function instance(name: string, prefix: string, redis: BroadcastOptions['redis'] = { cluster: cluster.nodes }): Promise<Instance> {
  const app = await within(startApp(options(prefix, redis), [BroadcastGateway]), 15000, `starting instance ${name}`);
  const created = { name, app, service: app.app.get(BroadcastService) };
  instances.push(created);
  return created;
}

/** The cluster seen through one TCP proxy per node (startup nodes and the addresses the cluster announces). */
async function clusterThroughProxies(): Promise<BroadcastOptions['redis']> {
  const started = await Promise.all(cluster.ports.map((port) => TcpProxy.start(port)));
  proxies.push(...started);
  const natMap = Object.fromEntries(cluster.ports.map((port, i) => [`127.0.0.1:${port}`, { host: '127.0.0.1', port: started[i]!.port }]));
  return { cluster: started.map((proxy) => ({ host: '127.0.0.1', port: proxy.port })), options: { natMap } };
}

async function peer(on: Instance, token: string, rooms: string[] = []): Promise<Peer> {
  const p = await connectPeer(on.app.wsUrl(`/ws?token=${encodeURIComponent(token)}`), { resumable: true });
  clients.push(p.client);
  for (const room of rooms) await call(p.client, 'join', { room }, ids++);
  return p;
}

/** One room name per shard: their channels land on the three masters. */
async function roomsOnEveryShard(prefix: string): Promise<string[]> {
  const byMaster = new Map<number, string>();
  for (let i = 0; i < 100 && byMaster.size < cluster.ports.length; i++) {
    const room = `room-${i}`;
    const master = await cluster.masterOf(`${prefix}:room:${room}`);
    if (!byMaster.has(master)) byMaster.set(master, room);
  }
  expect(byMaster.size).toBe(cluster.ports.length);
  return [...byMaster.values()];
}

const dataOf = (p: Peer, event: string): unknown[] => pushesOf(p.client, event).map((frame) => frame.data);
const ticks = (p: Peer, event: string): number[] => dataOf(p, event) as number[];

async function healthStatus(on: Instance): Promise<number> {
  return (await getHealth(on.app.httpUrl('/health/ws'))).status;
}

/** Each instance sends a toAll barrier; once every peer has them all, what was sent before has arrived. */
async function barrier(from: Instance[], peers: Peer[], tag: string): Promise<void> {
  for (const i of from) await i.service.toAll(`barrier-${tag}-${i.name}`, null);
  for (const p of peers) for (const i of from) await waitForPushes(p.client, `barrier-${tag}-${i.name}`, 1, 8000);
  await sleep(SETTLE_MS);
}

/** Waits (bounded) for every resolved broadcast, then checks each arrived exactly once, in order. */
async function expectAllOnceInOrder(p: Peer, event: string, resolved: number[]): Promise<void> {
  await waitUntil(() => ticks(p, event).length >= resolved.length, {
    timeoutMs: 10000,
    what: `${resolved.length} "${event}" pushes (got ${ticks(p, event).length})`,
  });
  expectExactlyOnceInOrder(ticks(p, event), resolved);
}

beforeAll(async () => {
  cluster = new ThrowawayRedisCluster();
  await cluster.start();
}, 30000);

afterEach(async () => {
  for (const proxy of proxies) proxy.resume();
  await closeAll(clients);
  await Promise.all(instances.splice(0).map((i) => within(i.app.close(), 15000, `closing ${i.name}`)));
  for (const proxy of proxies.splice(0)) await proxy.close();
});

afterAll(async () => {
  await cluster?.stop();
});

describe('broadcast across instances through a Redis Cluster (sharded pub/sub)', () => {
  it('app.listen() resolves with every channel subscribed on its shard; the canary arrives through the cluster', async () => {
    const prefix = uniquePrefix('cluster');
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    for (const channel of [`${prefix}:all`, `${prefix}:direct`]) {
      expect(await shardNumsub(await cluster.adminOf(channel), channel)).toBe(2);
    }
    await sleep(4 * CANARY_MS + 100); // health would be 503 had the canaries not arrived
    expect(await healthStatus(A)).toBe(200);
    expect(await healthStatus(B)).toBe(200);
  });

  it('toAll, toRoom on rooms of all three shards, toClient and toUser reach clients on both instances, exactly once', async () => {
    const prefix = uniquePrefix('cluster');
    const rooms = await roomsOnEveryShard(prefix);
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const a1 = await peer(A, 'u1.a', rooms);
    const a2 = await peer(A, 'u2.a', [rooms[0]!]);
    const b1 = await peer(B, 'u1.b', [rooms[1]!, rooms[2]!]);
    const b2 = await peer(B, 'u3.b');

    await A.service.toAll('all', 'A');
    await B.service.toAll('all', 'B');
    for (const room of rooms) {
      await A.service.toRoom(room, 'room', `A:${room}`);
      await B.service.toRoom(room, 'room', `B:${room}`);
    }
    await A.service.toClient(b2.sessionId, 'client', 'A to b2');
    await B.service.toClient(a2.sessionId, 'client', 'B to a2');
    await B.service.toUser('u1', 'user', 'B to u1');
    await barrier([A, B], [a1, a2, b1, b2], 'fanout');

    const fromBoth = (roomsOf: string[]): string[] => roomsOf.flatMap((room) => [`A:${room}`, `B:${room}`]).sort();
    for (const p of [a1, a2, b1, b2]) expect(dataOf(p, 'all').sort()).toEqual(['A', 'B']);
    expect(dataOf(a1, 'room').sort()).toEqual(fromBoth(rooms));
    expect(dataOf(a2, 'room').sort()).toEqual(fromBoth([rooms[0]!]));
    expect(dataOf(b1, 'room').sort()).toEqual(fromBoth([rooms[1]!, rooms[2]!]));
    expect(dataOf(b2, 'room')).toEqual([]);
    expect(dataOf(b2, 'client')).toEqual(['A to b2']);
    expect(dataOf(a2, 'client')).toEqual(['B to a2']);
    for (const p of [a1, b1]) expect(dataOf(p, 'user')).toEqual(['B to u1']);
    for (const p of [a2, b2]) expect(dataOf(p, 'user')).toEqual([]);
  });

  it('an ioredis Cluster given as broadcast.redis carries broadcasts and stays open after app.close()', async () => {
    const prefix = uniquePrefix('cluster');
    const own = new Cluster(cluster.nodes);
    try {
      const A = await instance('A', prefix, own);
      const B = await instance('B', prefix);
      const x = await peer(B, 'ux.1');
      await A.service.toAll('via-own', 1);
      await waitForPushes(x.client, 'via-own', 1);
      instances.splice(instances.indexOf(A), 1);
      await within(A.app.close(), 10000, 'app.close()');
      expect(own.status).toBe('ready');
      await expect(own.ping()).resolves.toBe('PONG');
    } finally {
      own.disconnect();
    }
  });

  it('a cluster nobody answers for: listen() rejects naming broadcast.redis and the nodes; nothing keeps trying after close()', async () => {
    const port = await freePort();
    const redis = { cluster: [{ host: '127.0.0.1', port }] };
    const app = await createApp({ broadcast: { redis, sharded: true, connectTimeoutMs: 500 } }, [BroadcastGateway], {
      logger: false,
      abortOnError: false,
    });
    try {
      await expect(within(app.listen(0, '127.0.0.1'), 5000, 'a failing listen()')).rejects.toThrow(
        `"broadcast.redis" (the cluster at 127.0.0.1:${port})`,
      );
    } finally {
      await within(app.close(), 5000, 'app.close() after a failed listen');
    }
    let attempts = 0;
    const listener = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
    await sleep(1500);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    expect(attempts).toBe(0);
  });

  it('join and leave of a session on the other instance, for rooms on different shards', async () => {
    const prefix = uniquePrefix('cluster');
    const rooms = await roomsOnEveryShard(prefix);
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const x = await peer(B, 'ux.1');
    for (const room of rooms) await A.service.join(x.sessionId, room);
    expect(B.service.roomsOf(x.sessionId).sort()).toEqual([...rooms].sort());
    for (const room of rooms) {
      const channel = `${prefix}:room:${room}`;
      await waitForCount(async () => shardNumsub(await cluster.adminOf(channel), channel), 1, `SHARDNUMSUB ${channel}`);
      await A.service.toRoom(room, 'joined', room);
    }
    await waitForPushes(x.client, 'joined', rooms.length);

    await A.service.leave(x.sessionId, rooms[0]!);
    const left = `${prefix}:room:${rooms[0]}`;
    await waitForCount(async () => shardNumsub(await cluster.adminOf(left), left), 0, `SHARDNUMSUB ${left}`);
    for (const room of rooms) await A.service.toRoom(room, 'after', room);
    await barrier([A], [x], 'leave');
    expect(dataOf(x, 'joined').sort()).toEqual([...rooms].sort());
    expect(dataOf(x, 'after').sort()).toEqual(rooms.slice(1).sort());
  });
});

describe('no loss across subscriber reconnects on a cluster', () => {
  it('CLIENT KILL TYPE pubsub on every node, 6 times, while broadcasting every 5 ms: every resolved broadcast arrives once, in order', async () => {
    const prefix = uniquePrefix('cluster-kill');
    const rooms = await roomsOnEveryShard(prefix);
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const onA = await peer(A, 'ua.1', rooms);
    const onB = await peer(B, 'ub.1', rooms);
    const loops = rooms.map((room, i) => broadcastLoop((n) => (i % 2 ? B : A).service.toRoom(room, room, n), 5));
    const all = broadcastLoop((n) => B.service.toAll('all', n), 5);
    // Every loop gets broadcasts through between two kills and after the last, however slow the machine.
    const resolvedCounts = (): number[] => [...loops, all].map((loop) => loop.resolved.length);
    const progressedSince = (before: number[]): boolean => resolvedCounts().every((count, i) => count > before[i]!);
    try {
      for (let kill = 0; kill < 6; kill++) {
        const before = resolvedCounts();
        await sleep(200);
        await waitUntil(async () => progressedSince(before) && (await cluster.pubsubClients()).every((count) => count >= 2), {
          what: 'every loop past the last kill, and both instances subscribed on every node again',
        });
        expect(await cluster.killPubsubClients()).toBeGreaterThanOrEqual(2 * cluster.ports.length);
      }
      const afterKills = resolvedCounts();
      await sleep(300);
      await waitUntil(() => progressedSince(afterKills), { what: 'every loop past the last kill' });
    } finally {
      await Promise.all([...loops, all].map((loop) => loop.stop()));
    }
    for (const p of [onA, onB]) {
      for (const [i, room] of rooms.entries()) await expectAllOnceInOrder(p, room, loops[i]!.resolved);
      await expectAllOnceInOrder(p, 'all', all.resolved);
    }
    for (const on of [A, B]) await waitUntil(async () => (await healthStatus(on)) === 200, { what: `${on.name} healthy again` });
  }, 30000);

  it('an instance cut from every node for a second: health 503 within 3 s, then it catches up with nothing lost', async () => {
    const prefix = uniquePrefix('cluster-cut');
    const rooms = await roomsOnEveryShard(prefix);
    const A = await instance('A', prefix);
    const B = await instance('B', prefix, await clusterThroughProxies());
    const x = await peer(B, 'ux.1', rooms);
    const loops = rooms.map((room) => broadcastLoop((n) => A.service.toRoom(room, room, n), 5));
    try {
      await sleep(200);
      for (const proxy of proxies) {
        proxy.stall();
        proxy.cutAll();
      }
      const cutAt = Date.now();
      await waitUntil(async () => (await healthStatus(B)) === 503, { timeoutMs: 3000, intervalMs: 50, what: '503 within 3 s' });
      expect(Date.now() - cutAt).toBeLessThan(3000);
      await sleep(1000);
      for (const proxy of proxies) proxy.resume();
      await sleep(500);
    } finally {
      await Promise.all(loops.map((loop) => loop.stop()));
    }
    for (const [i, room] of rooms.entries()) await expectAllOnceInOrder(x, room, loops[i]!.resolved);
    await waitUntil(async () => (await healthStatus(B)) === 200, { timeoutMs: 10000, what: 'B healthy once caught up' });
  }, 30000);
});

describe('one shard that stops answering', () => {
  it('its publishes reject within the command timeout and health is 503 while the others answer; 200 once it answers again', async () => {
    const prefix = uniquePrefix('cluster-stall');
    const rooms = await roomsOnEveryShard(prefix);
    const A = await instance('A', prefix, await clusterThroughProxies());
    const stalled = await cluster.masterOf(`${prefix}:room:${rooms[0]}`);
    const proxy = proxies[cluster.ports.indexOf(stalled)]!;
    await A.service.toRoom(rooms[0]!, 'before', 1);
    proxy.stall();
    try {
      const outcome = await within(A.service.toRoom(rooms[0]!, 'stalled', 1).then(() => 'resolved', () => 'rejected'), 5000, 'the publish to the stalled shard');
      expect(outcome).toBe('rejected');
      await A.service.toRoom(rooms[1]!, 'elsewhere', 1); // another shard goes on publishing
      const statuses: number[] = [];
      for (let k = 0; k < 6; k++) {
        statuses.push(await healthStatus(A));
        await sleep(CANARY_MS / 2);
      }
      expect(statuses).toEqual(Array(6).fill(503));
    } finally {
      proxy.resume();
    }
    await waitUntil(async () => (await healthStatus(A)) === 200, { timeoutMs: 10000, what: 'A healthy once the shard answers' });
    await A.service.toRoom(rooms[0]!, 'after', 1);
  }, 30000);
});

describe('a slot moved to another master (resharding)', () => {
  it('while broadcasting to a room of that slot: members on both instances get every resolved broadcast once, in order', async () => {
    const prefix = uniquePrefix('cluster-reshard');
    const [room] = await roomsOnEveryShard(prefix);
    const channel = `${prefix}:room:${room}`;
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const onA = await peer(A, 'ua.1', [room!]);
    const onB = await peer(B, 'ub.1', [room!]);
    const loop = broadcastLoop((n) => A.service.toRoom(room!, 'tick', n), 5);
    const from = await cluster.masterOf(channel);
    const to = cluster.ports.find((port) => port !== from)!;
    try {
      await sleep(200);
      await cluster.moveSlot(channel, to);
      await sleep(500);
    } finally {
      await loop.stop();
    }
    expect(await cluster.masterOf(channel)).toBe(to);
    for (const p of [onA, onB]) await expectAllOnceInOrder(p, 'tick', loop.resolved);
    for (const on of [A, B]) await waitUntil(async () => (await healthStatus(on)) === 200, { what: `${on.name} healthy` });
  }, 20000);
});

describe('session handover through a cluster', () => {
  it('a client resumes on the other instance: what it missed is replayed in order, then it is live', async () => {
    const prefix = uniquePrefix('cluster-handover');
    const [room] = await roomsOnEveryShard(prefix);
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const x = await peer(A, 'ux.1', [room!]);
    await B.service.toRoom(room!, 'said', 1);
    await waitForPushes(x.client, 'said', 1);
    x.client.terminate();
    await sleep(100);
    await B.service.toRoom(room!, 'said', 2);
    await B.service.toRoom(room!, 'said', 3);

    const again = new TestClient(B.app.wsUrl('/ws?token=ux.1'), 'rws.v1');
    clients.push(again);
    await again.open();
    again.send({ event: '$hello', data: { resume: { sessionId: x.sessionId, resumeToken: x.resumeToken, lastSeq: 1 } } });
    const ready = await again.next((frame) => frame.event === '$ready');
    expect(ready.data).toMatchObject({ resumed: true, missed: false, sessionId: x.sessionId });
    await A.service.toRoom(room!, 'said', 4);
    const said = await waitForPushes(again, 'said', 3);
    expect(said.map((frame) => [frame.data, frame.seq])).toEqual([
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    expect(B.service.roomsOf(x.sessionId)).toEqual([room]);
  });
});
