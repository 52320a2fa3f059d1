import type { Redis } from 'ioredis';
import { channelKeys, publishSequenced } from '../lib/broadcast/redis-scripts.js';
import { BroadcastService, type BroadcastOptions, type ReliableWsOptions } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { captureLogger, type CaptureLogger } from './support/app-with-logger.js';
import {
  allPushes,
  BroadcastController,
  BroadcastGateway,
  call,
  closeAll,
  connectPeer,
  pushesOf,
  waitForPushes,
  type Peer,
} from './support/broadcast-app.js';
import {
  adminConnection,
  numsub,
  redisMajorVersion,
  REDIS_URL,
  shardNumsub,
  uniquePrefix,
  waitForCount,
} from './support/redis.js';
import { sleep, waitUntil, within } from './support/wait.js';
import type { TestClient } from './support/ws-client.js';

/** Time given to a duplicate (local delivery + echo from Redis) to show up before counting. */
const SETTLE_MS = 300;

interface Instance {
  name: string;
  app: TestApp;
  service: BroadcastService;
}

let admin: Redis;
const instances: Instance[] = [];
const clients: TestClient[] = [];
let ids = 1;

function options(channelPrefix: string, extra: Partial<BroadcastOptions> = {}, more: ReliableWsOptions = {}): ReliableWsOptions {
  return {
    ...more,
    auth: { verify: (token: string) => (token ? { id: token.split('.')[0] } : null) },
    heartbeat: { intervalMs: 60000, timeoutMs: 60000 },
    rateLimit: false,
    broadcast: { redis: REDIS_URL, channelPrefix, canaryIntervalMs: 500, ...extra },
  };
}

async function instance(
  name: string,
  channelPrefix: string,
  extra: Partial<BroadcastOptions> = {},
  more: ReliableWsOptions = {},
  logger?: CaptureLogger,
): Promise<Instance> {
  const app = await within(
    startApp(options(channelPrefix, extra, more), [BroadcastGateway], { controllers: [BroadcastController], logger }),
    15000,
    `starting instance ${name}`,
  );
  const created = { name, app, service: app.app.get(BroadcastService) };
  instances.push(created);
  return created;
}

async function peer(on: Instance, token: string, options?: { resumable?: boolean }): Promise<Peer> {
  const p = await connectPeer(on.app.wsUrl(`/ws?token=${encodeURIComponent(token)}`), options);
  clients.push(p.client);
  return p;
}

/**
 * Each instance sends a toAll barrier after what it sent before; once every client has every
 * instance's barrier, everything sent before has arrived (Redis keeps one publisher's order),
 * and duplicates get SETTLE_MS more to show up.
 */
async function barrier(from: Instance[], peers: Peer[], tag: string): Promise<void> {
  for (const i of from) await i.service.toAll(`barrier-${tag}-${i.name}`, null);
  for (const p of peers) for (const i of from) await waitForPushes(p.client, `barrier-${tag}-${i.name}`, 1, 8000);
  await sleep(SETTLE_MS);
}

function dataOf(p: Peer, event: string): unknown[] {
  return pushesOf(p.client, event).map((f) => f.data);
}

beforeAll(async () => {
  admin = await adminConnection();
});

afterEach(async () => {
  await closeAll(clients);
  await Promise.all(instances.splice(0).map((i) => within(i.app.close(), 15000, `closing ${i.name}`)));
});

afterAll(async () => {
  await admin?.quit();
});

describe('BroadcastService across instances through Redis', () => {
  it('app.listen() resolves with the subscriptions live (all, direct and canary channels)', async () => {
    const prefix = uniquePrefix();
    await instance('A', prefix);
    await instance('B', prefix);
    expect(await numsub(admin, `${prefix}:all`)).toBe(2);
    expect(await numsub(admin, `${prefix}:direct`)).toBe(2);
  });

  it('two instances: toAll, toRoom, toClient and toUser reach clients on both, exactly once each', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const a1 = await peer(A, 'u1.a');
    const a2 = await peer(A, 'u2.a');
    const b1 = await peer(B, 'u1.b');
    const b2 = await peer(B, 'u3.b');
    await call(a1.client, 'join', { room: 'lobby' }, ids++);
    await call(b2.client, 'join', { room: 'lobby' }, ids++);

    await A.service.toAll('all', 'from A');
    await B.service.toAll('all', 'from B');
    await A.service.toRoom('lobby', 'room', 'from A');
    await B.service.toRoom('lobby', 'room', 'from B');
    await A.service.toClient(b1.sessionId, 'client', 'A to b1');
    await B.service.toClient(a2.sessionId, 'client', 'B to a2');
    await A.service.toClient(a2.sessionId, 'client', 'A to a2');
    await A.service.toUser('u1', 'user', 'A to u1');
    await B.service.toUser('u1', 'user', 'B to u1');
    await barrier([A, B], [a1, a2, b1, b2], 'two');

    for (const p of [a1, a2, b1, b2]) expect(dataOf(p, 'all').sort()).toEqual(['from A', 'from B']);
    for (const p of [a1, b2]) expect(dataOf(p, 'room').sort()).toEqual(['from A', 'from B']);
    for (const p of [a2, b1]) expect(dataOf(p, 'room')).toEqual([]);
    expect(dataOf(b1, 'client')).toEqual(['A to b1']);
    expect(dataOf(a2, 'client').sort()).toEqual(['A to a2', 'B to a2']);
    expect(dataOf(a1, 'client')).toEqual([]);
    expect(dataOf(b2, 'client')).toEqual([]);
    for (const p of [a1, b1]) expect(dataOf(p, 'user').sort()).toEqual(['A to u1', 'B to u1']);
    for (const p of [a2, b2]) expect(dataOf(p, 'user')).toEqual([]);
  });

  it('three instances: every client receives every broadcast exactly once, also on the sender’s own instance', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const C = await instance('C', prefix);
    const all = [A, B, C];
    const a1 = await peer(A, 'u1.a');
    const a2 = await peer(A, 'u2.a');
    const b1 = await peer(B, 'u1.b');
    const b2 = await peer(B, 'u3.b');
    const c1 = await peer(C, 'u1.c');
    const c2 = await peer(C, 'u2.c');
    const peers = [a1, a2, b1, b2, c1, c2];
    const inRoom = [a1, b1, c2];
    for (const p of inRoom) await call(p.client, 'join', { room: 'r' }, ids++);

    for (const i of all) {
      await i.service.toAll('all', i.name);
      await i.service.toAll('allExcept', i.name, { except: b1.sessionId });
      await i.service.toRoom('r', 'room', i.name);
      await i.service.toRoom('r', 'roomExcept', i.name, { except: a1.sessionId });
      await i.service.toUser('u1', 'user', i.name);
      await i.service.toUser('u2', 'user2', i.name);
      await i.service.toClient(c2.sessionId, 'client', i.name);
      await i.service.toClient(a1.sessionId, 'client', i.name);
    }
    await barrier(all, peers, 'three');

    const names = ['A', 'B', 'C'];
    const expectExactly = (p: Peer, event: string, expected: string[]): void => {
      expect({ session: p.sessionId, event, got: dataOf(p, event).sort() }).toEqual({ session: p.sessionId, event, got: expected });
    };
    for (const p of peers) {
      expectExactly(p, 'all', names);
      expectExactly(p, 'allExcept', p === b1 ? [] : names);
      expectExactly(p, 'room', inRoom.includes(p) ? names : []);
      expectExactly(p, 'roomExcept', inRoom.includes(p) && p !== a1 ? names : []);
      expectExactly(p, 'user', [a1, b1, c1].includes(p) ? names : []);
      expectExactly(p, 'user2', [a2, c2].includes(p) ? names : []);
      expectExactly(p, 'client', [a1, c2].includes(p) ? names : []);
      // and every push is numbered 1, 2, 3 … for its session
      const seqs = allPushes(p.client).map((f) => f.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
  });

  it('join(sessionId) of a session living on another instance works (and leave too)', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const x = await peer(B, 'ux.1');
    const y = await peer(A, 'uy.1');
    const channel = `${prefix}:room:remote`;

    await expect(A.service.join(x.sessionId, 'remote')).resolves.toBeUndefined();
    await waitUntil(() => B.service.roomsOf(x.sessionId).includes('remote'), { what: 'the remote join to apply on B' });
    await waitForCount(() => numsub(admin, channel), 1, `NUMSUB ${channel}`);
    expect(A.service.roomsOf(x.sessionId)).toEqual([]); // A only knows its own sessions

    await A.service.toRoom('remote', 'r', 1);
    await flushFromA();
    expect(dataOf(x, 'r')).toEqual([1]);
    expect(dataOf(y, 'r')).toEqual([]);

    // join of the remote session through a gateway handler on A (another session's socket)
    await call(y.client, 'join', { room: 'remote2', sessionId: x.sessionId }, ids++);
    await waitUntil(() => B.service.roomsOf(x.sessionId).includes('remote2'), { what: 'the second remote join to apply' });
    await waitForCount(() => numsub(admin, `${prefix}:room:remote2`), 1, 'NUMSUB remote2');
    await A.service.toRoom('remote2', 'r2', 2);
    await waitForPushes(x.client, 'r2', 1);

    await expect(A.service.leave(x.sessionId, 'remote')).resolves.toBeUndefined();
    await waitUntil(() => !B.service.roomsOf(x.sessionId).includes('remote'), { what: 'the remote leave to apply on B' });
    await waitForCount(() => numsub(admin, channel), 0, `NUMSUB ${channel}`);
    await A.service.toRoom('remote', 'r', 3);
    await flushFromA();
    expect(dataOf(x, 'r')).toEqual([1]);
    expect(B.service.roomsOf(x.sessionId)).toEqual(['remote2']);

    async function flushFromA(): Promise<void> {
      await barrier([A], [x, y], `remote-${ids++}`);
    }
  });

  it('a push right after `await join(remote session)` reaches that session (join resolves once the membership is effective)', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const x = await peer(B, 'ux.2');
    await A.service.join(x.sessionId, 'instant');
    await A.service.toRoom('instant', 'first', 'right after join');
    await within(waitForPushes(x.client, 'first', 1, 3000), 4000, 'the first room push after a remote join').catch(
      (error: Error) => {
        throw new Error(
          `${error.message}: after "await A.join(remoteSession, room)" the next "A.toRoom(room)" was not delivered ` +
            `(roomsOf on B: ${JSON.stringify(B.service.roomsOf(x.sessionId))})`,
        );
      },
    );
  });

  it('a local join through a gateway on B is live when its reply arrives: a push from A right after reaches it', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const x = await peer(B, 'ux.3');
    for (let round = 0; round < 5; round++) {
      const room = `live-${round}`;
      await call(x.client, 'join', { room }, ids++);
      await A.service.toRoom(room, 'live', round);
      await waitForPushes(x.client, 'live', round + 1, 3000);
    }
    await barrier([A, B], [x], 'live');
    expect(dataOf(x, 'live')).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps the order of one sender: 200 sequential toRoom from A arrive in order on B and C', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const C = await instance('C', prefix);
    const receivers = [await peer(B, 'ub.1'), await peer(B, 'ub.2'), await peer(C, 'uc.1'), await peer(A, 'ua.1')];
    for (const p of receivers) await call(p.client, 'join', { room: 'ordered' }, ids++);
    const count = 200;
    for (let i = 0; i < count; i++) await A.service.toRoom('ordered', 'n', { i });
    for (const p of receivers) await waitForPushes(p.client, 'n', count, 15000);
    await barrier([A], receivers, 'order');
    for (const p of receivers) {
      const frames = pushesOf(p.client, 'n');
      expect(frames.map((f) => f.data.i)).toEqual(Array.from({ length: count }, (_, i) => i));
      const seqs = frames.map((f) => f.seq as number);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);
    }
  });

  it('only instances with members subscribe to a room channel; the last member leaving or closing unsubscribes', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const C = await instance('C', prefix);
    const channel = `${prefix}:room:lobby`;
    const count = (): Promise<number> => numsub(admin, channel);
    expect(await count()).toBe(0);

    const b1 = await peer(B, 'u.b1');
    const b2 = await peer(B, 'u.b2');
    const c1 = await peer(C, 'u.c1');
    const a1 = await peer(A, 'u.a1');

    await call(b1.client, 'join', { room: 'lobby' }, ids++);
    expect(await count()).toBe(1);
    await call(b2.client, 'join', { room: 'lobby' }, ids++);
    expect(await count()).toBe(1); // one subscription per instance, not per session
    await call(c1.client, 'join', { room: 'lobby' }, ids++);
    expect(await count()).toBe(2); // B and C; A has no member and does not get the room's traffic

    // traffic reaches B and C but A's client (not a member) gets nothing
    await A.service.toRoom('lobby', 'l', 1);
    await barrier([A], [a1, b1, b2, c1], 'members');
    expect(dataOf(b1, 'l')).toEqual([1]);
    expect(dataOf(c1, 'l')).toEqual([1]);
    expect(dataOf(a1, 'l')).toEqual([]);

    await call(b1.client, 'leave', { room: 'lobby' }, ids++);
    expect(await count()).toBe(2); // b2 still there
    await call(b2.client, 'leave', { room: 'lobby' }, ids++);
    await waitForCount(count, 1, `NUMSUB ${channel} after B's last member left`);

    // the session of the last member on C ends: C unsubscribes too
    c1.client.close(1000);
    await c1.client.closed();
    await waitForCount(count, 0, `NUMSUB ${channel} after C's last member closed`);
    expect(await numsub(admin, `${prefix}:all`)).toBe(3);

    // a new member subscribes again and receives
    await call(a1.client, 'join', { room: 'lobby' }, ids++);
    expect(await count()).toBe(1);
    await B.service.toRoom('lobby', 'l', 2);
    await waitForPushes(a1.client, 'l', 1);
    expect(dataOf(a1, 'l')).toEqual([2]);
  });

  it('a session that ends (client closes 1000) unsubscribes from each of its rooms', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    await instance('B', prefix);
    const x = await peer(A, 'ux.9');
    for (const room of ['m1', 'm2', 'm3']) await call(x.client, 'join', { room }, ids++);
    for (const room of ['m1', 'm2', 'm3']) expect(await numsub(admin, `${prefix}:room:${room}`)).toBe(1);
    x.client.close(1000);
    await x.client.closed();
    for (const room of ['m1', 'm2', 'm3']) await waitForCount(() => numsub(admin, `${prefix}:room:${room}`), 0, `NUMSUB ${room}`);
    expect(A.service.roomsOf(x.sessionId)).toEqual([]);
  });

  it('a dropped connection keeps its session and rooms for resume.ttlMs, then unsubscribes', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix, {}, { resume: { ttlMs: 1500 } });
    const x = await peer(A, 'ux.10', { resumable: true });
    await call(x.client, 'join', { room: 'kept' }, ids++);
    const channel = `${prefix}:room:kept`;
    expect(await numsub(admin, channel)).toBe(1);
    x.client.terminate();
    await x.client.closed();
    await sleep(200);
    expect(await numsub(admin, channel)).toBe(1);
    expect(A.service.roomsOf(x.sessionId)).toEqual(['kept']);
    await waitForCount(() => numsub(admin, channel), 0, `NUMSUB ${channel} after the session expired`, 6000);
    expect(A.service.roomsOf(x.sessionId)).toEqual([]);
  });

  it('join of a session no instance has rejects (bounded), naming the session', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    await instance('B', prefix);
    await expect(within(A.service.join('no-such-session', 'r'), 10000, 'join of an unknown session')).rejects.toThrow(
      'no-such-session',
    );
    expect(await numsub(admin, `${prefix}:room:r`)).toBe(0);
  }, 20000);

  it('instances with different prefixes do not hear each other', async () => {
    const A = await instance('A', uniquePrefix());
    const B = await instance('B', uniquePrefix());
    const a = await peer(A, 'u.a');
    const b = await peer(B, 'u.b');
    await A.service.toAll('x', 'from A');
    await B.service.toAll('x', 'from B');
    await barrier([A], [a], 'pA');
    await barrier([B], [b], 'pB');
    expect(dataOf(a, 'x')).toEqual(['from A']);
    expect(dataOf(b, 'x')).toEqual(['from B']);
  });

  it('messages on its channels that no instance sent well-formed are dropped: nothing crashes, closes or goes missing', async () => {
    const prefix = uniquePrefix();
    const logger = captureLogger(); // Nest's logger is one per process: the last app's
    const A = await instance('A', prefix, {}, {}, logger);
    const B = await instance('B', prefix, {}, {}, logger);
    const peers = [await peer(A, 'u.a'), await peer(B, 'u.b')];
    await barrier([A, B], peers, 'before');
    const channel = `${prefix}:all`;
    const push = (event: string) => ({ type: 'push', origin: 'elsewhere', id: 'x', target: { kind: 'all' }, event });
    // Numbered and recorded by Redis like a real broadcast, but not an envelope this package would send.
    for (const payload of [
      `${JSON.stringify({ ...push('E'.repeat(1100)), binary: true })}\nAAAA`, // a binary header past 1 KiB
      `${JSON.stringify(push('T'.repeat(129)))}\n1`, // an event name longer than clients may use
      `${JSON.stringify(push('$failed'))}\n1`, // one of the protocol's own events
      `${JSON.stringify(push('cut'))}\n1}`, // data that is not JSON: every recipient's frame would be broken
      `${JSON.stringify(push('extra'))}\n1,"seq":1`, // data that would add fields to every recipient's frame
      `${JSON.stringify(push('empty'))}\n`, // no data at all
      'not an envelope',
    ]) {
      await publishSequenced(admin, channel, payload, 'forged-epoch', { historySize: 100, historyTtlMs: 60_000 }, false);
    }
    // Not recorded by Redis at all: an offset far past the channel's head, and no numbering.
    const epoch = await admin.hget(channelKeys(channel)[0], 'epoch');
    await admin.publish(channel, `${epoch} 9007199254740000 ${JSON.stringify(push('far'))}\n1`);
    await admin.publish(channel, 'garbage');
    await A.service.toAll('x', 'A');
    await B.service.toAll('x', 'B');
    await barrier([A, B], peers, 'after');
    for (const p of peers) {
      expect(dataOf(p, 'x').sort()).toEqual(['A', 'B']);
      expect(allPushes(p.client).filter((f) => f.event !== 'x' && !f.event.startsWith('barrier-'))).toEqual([]);
      expect(p.client.raw.readyState).toBe(p.client.raw.OPEN);
    }
    // Said once per kind of drop, and held to a few lines however many arrive.
    const dropped = logger.lines.filter((line) => line.startsWith('warn') && line.includes(`channels of prefix "${prefix}"`));
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    expect(dropped.length).toBeLessThanOrEqual(10); // five per instance
    expect(dropped[0]).toContain('that is not one this package sends');
  });

  it('one PUBLISH with an epoch Redis never gave the channel (without touching its keys) ends no session: it is checked against Redis and dropped', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix);
    const B = await instance('B', prefix);
    const peers = [await peer(A, 'u.a'), await peer(B, 'u.b')];
    await A.service.join(peers[1].sessionId, 'r');
    await A.service.toRoom('r', 'warm', null); // Redis has a record of every channel now (the first message of one without is taken unchecked)
    await barrier([A, B], peers, 'before');
    const closes: number[] = [];
    for (const p of peers) p.client.raw.on('close', (code: number) => closes.push(code));
    const push = { type: 'push', origin: 'elsewhere', id: 'forged', target: { kind: 'all' }, event: 'forged' };
    for (const channel of [`${prefix}:all`, `${prefix}:direct`, `${prefix}:room:r`]) {
      for (const offset of [1, 2, 9_000_000]) await admin.publish(channel, `made-up-epoch ${offset} ${JSON.stringify(push)}\n1`);
    }
    await A.service.toAll('x', 'A');
    await B.service.toRoom('r', 'x', 'B');
    const after = await barrier([A, B], peers, 'after').catch((error: unknown) => error);
    expect(closes).toEqual([]);
    expect(after).toBeUndefined();
    for (const p of peers) {
      expect(pushesOf(p.client, 'forged')).toEqual([]);
    }
    expect(dataOf(peers[0], 'x')).toEqual(['A']);
    expect(dataOf(peers[1], 'x').sort()).toEqual(['A', 'B']);
  });

  it('a burst of PUBLISHes past the channel head, more than historySize, while the history is read, ends no session', async () => {
    const prefix = uniquePrefix();
    const A = await instance('A', prefix, { historySize: 5 });
    const B = await instance('B', prefix, { historySize: 5 });
    const peers = [await peer(A, 'u.a'), await peer(B, 'u.b')];
    await barrier([A, B], peers, 'before');
    const closes: number[] = [];
    for (const p of peers) p.client.raw.on('close', (code: number) => closes.push(code));
    const channel = `${prefix}:all`;
    const [epoch, offset] = await admin.hmget(channelKeys(channel)[0], 'epoch', 'offset');
    const burst = admin.pipeline();
    for (let n = 1; n <= 50; n++) burst.publish(channel, `${epoch} ${Number(offset) + 1000 + n} not an envelope`);
    await burst.exec();
    await A.service.toAll('x', 'A');
    await B.service.toAll('x', 'B');
    const after = await barrier([A, B], peers, 'after').catch((error: unknown) => error);
    expect(closes).toEqual([]);
    expect(after).toBeUndefined();
    for (const p of peers) expect(dataOf(p, 'x').sort()).toEqual(['A', 'B']);
  });

  it('a message on its channels that carries no epoch and offset is dropped with a warn line (throttled)', async () => {
    const prefix = uniquePrefix();
    const logger = captureLogger();
    const A = await instance('A', prefix, {}, {}, logger);
    const peers = [await peer(A, 'u.a')];
    for (let n = 0; n < 20; n++) await admin.publish(`${prefix}:all`, `garbage ${n}`);
    await barrier([A], peers, 'after');
    const dropped = logger.lines.filter((line) => line.startsWith('warn') && line.includes(`${prefix}:all`) && line.includes('garbage'));
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    expect(dropped.length).toBeLessThanOrEqual(5);
    expect(peers[0].client.raw.readyState).toBe(peers[0].client.raw.OPEN);
  });

  it('a message Redis has no record of (a made-up epoch, or past the head) is dropped with a warn line (throttled)', async () => {
    const prefix = uniquePrefix();
    const logger = captureLogger();
    const A = await instance('A', prefix, {}, {}, logger);
    const peers = [await peer(A, 'u.a')];
    await barrier([A], peers, 'before'); // the channel has a head
    const channel = `${prefix}:all`;
    const [epoch, offset] = await admin.hmget(channelKeys(channel)[0], 'epoch', 'offset');
    for (let n = 1; n <= 2; n++) await admin.publish(channel, `made-up-epoch ${n} forged-epoch-${n}`);
    for (let n = 1; n <= 20; n++) await admin.publish(channel, `${epoch} ${Number(offset) + 1000 + n} past-head-${n}`);
    await barrier([A], peers, 'after');
    const dropped = logger.lines.filter((line) => line.startsWith('warn') && line.includes(channel) && line.includes('no record'));
    expect(dropped.filter((line) => line.includes('"forged-epoch-')).length).toBe(2);
    expect(dropped.filter((line) => line.includes('"past-head-')).length).toBeGreaterThanOrEqual(1);
    expect(dropped.length).toBeLessThanOrEqual(5);
    expect(peers[0].client.raw.readyState).toBe(peers[0].client.raw.OPEN);
  });

  describe('sharded pub/sub (broadcast.sharded: true)', () => {
    it('the shared Redis is version 7 or later (SSUBSCRIBE/SPUBLISH)', async () => {
      expect(await redisMajorVersion(admin)).toBeGreaterThanOrEqual(7);
    });

    it('works across two apps: toAll, toRoom, toClient, toUser, remote join; rooms use sharded channels', async () => {
      const prefix = uniquePrefix('shard');
      const A = await instance('A', prefix, { sharded: true });
      const B = await instance('B', prefix, { sharded: true });
      const a1 = await peer(A, 'u1.a');
      const b1 = await peer(B, 'u1.b');
      const b2 = await peer(B, 'u2.b');
      const channel = `${prefix}:room:sr`;

      expect(await shardNumsub(admin, `${prefix}:all`)).toBe(2);
      expect(await numsub(admin, `${prefix}:all`)).toBe(0);

      await call(b2.client, 'join', { room: 'sr' }, ids++);
      expect(await shardNumsub(admin, channel)).toBe(1);
      expect(await numsub(admin, channel)).toBe(0);

      await A.service.join(a1.sessionId, 'sr');
      expect(await shardNumsub(admin, channel)).toBe(2);

      await A.service.toAll('all', 'A');
      await B.service.toAll('all', 'B');
      await A.service.toRoom('sr', 'room', 'A');
      await B.service.toRoom('sr', 'room', 'B');
      await A.service.toClient(b2.sessionId, 'client', 'A');
      await A.service.toUser('u1', 'user', 'A');
      await B.service.toUser('u1', 'user', 'B');
      await barrier([A, B], [a1, b1, b2], 'sharded');

      for (const p of [a1, b1, b2]) expect(dataOf(p, 'all').sort()).toEqual(['A', 'B']);
      for (const p of [a1, b2]) expect(dataOf(p, 'room').sort()).toEqual(['A', 'B']);
      expect(dataOf(b1, 'room')).toEqual([]);
      expect(dataOf(b2, 'client')).toEqual(['A']);
      expect(dataOf(a1, 'client')).toEqual([]);
      for (const p of [a1, b1]) expect(dataOf(p, 'user').sort()).toEqual(['A', 'B']);
      expect(dataOf(b2, 'user')).toEqual([]);

      // remote join over the sharded direct channel
      await A.service.join(b1.sessionId, 'sr2');
      await waitUntil(() => B.service.roomsOf(b1.sessionId).includes('sr2'), { what: 'the remote join (sharded)' });
      await waitForCount(() => shardNumsub(admin, `${prefix}:room:sr2`), 1, 'SHARDNUMSUB sr2');
      await A.service.toRoom('sr2', 'room2', 'A');
      await waitForPushes(b1.client, 'room2', 1);

      // the last member leaving unsubscribes (SUNSUBSCRIBE)
      await call(b2.client, 'leave', { room: 'sr' }, ids++);
      await waitForCount(() => shardNumsub(admin, channel), 1, `SHARDNUMSUB ${channel}`);
      await A.service.leave(a1.sessionId, 'sr');
      await waitForCount(() => shardNumsub(admin, channel), 0, `SHARDNUMSUB ${channel}`);

      // ordering holds in sharded mode too
      for (let i = 0; i < 50; i++) await A.service.toRoom('sr2', 'ord', i);
      const frames = await waitForPushes(b1.client, 'ord', 50, 8000);
      expect(frames.map((f) => f.data)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });
  });
});
