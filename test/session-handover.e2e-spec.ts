import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import type { Redis } from 'ioredis';
import { decodeEnvelope, type BroadcastEnvelope } from '../lib/broadcast/broadcast-envelope.js';
import { decodeSequenced } from '../lib/broadcast/channel-sequencer.js';
import { publishSequenced } from '../lib/broadcast/redis-scripts.js';
import { ADOPTION_CONCURRENCY } from '../lib/broadcast/session-handover.js';
import { ReliableWsClient, type ReliableWsClientOptions } from '../lib/client/index.js';
import { BroadcastService, ReliableGateway, SessionRegistry, type ReliableSocket } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { adminConnection, numsub, uniquePrefix, waitForCount } from './support/redis.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

const MiB = 1024 * 1024;

@ReliableGateway({ path: '/ws' })
class RoomGateway {
  constructor(private readonly broadcast: BroadcastService) {}
  @SubscribeMessage('join')
  async join(@MessageBody() room: string, @ConnectedSocket() s: ReliableSocket) {
    await this.broadcast.join(s.id, room);
  }
  @SubscribeMessage('say')
  async say(@MessageBody() text: string) {
    await this.broadcast.toRoom('r', 'said', text);
  }
  /** Streams `size` random bytes to the caller; answers their hash at once. */
  @SubscribeMessage('download')
  download(@MessageBody() size: number, @ConnectedSocket() s: ReliableSocket) {
    const bytes = randomBytes(size);
    s.stream('file', bytes).catch(() => undefined);
    return sha(bytes);
  }
  /** An upload: answers its hash after `uploadHandlerMs`. */
  @SubscribeMessage('file')
  async file(@MessageBody() data: Buffer) {
    uploadRuns++;
    await new Promise((r) => setTimeout(r, uploadHandlerMs));
    return sha(data);
  }
  @SubscribeMessage('slow')
  async slow(@MessageBody() ms: number) {
    slowRuns++;
    await new Promise((r) => setTimeout(r, ms));
    return { done: true };
  }
  /** Pushes `count` steps to its caller through the socket it was given, one every 100 ms. */
  @SubscribeMessage('progress')
  async progress(@MessageBody() count: number, @ConnectedSocket() s: ReliableSocket) {
    for (let step = 1; step <= count; step++) {
      s.send('step', step);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let slowRuns = 0;
let uploadRuns = 0;
let uploadHandlerMs = 0;
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * A client behind a "load balancer": each connection goes to `balancer.target`; `move(to)` cuts
 * the current one so that the client reconnects (and resumes) there.
 */
function balancedClient(first: TestApp, options: ReliableWsClientOptions = {}) {
  const balancer = { target: first, current: undefined as WebSocket | undefined };
  class Balanced extends WebSocket {
    constructor(url: string, protocols?: string | string[], clientOptions?: ClientOptions) {
      super(url.replace('balanced', new URL(balancer.target.wsUrl('/ws')).host), protocols, clientOptions);
      balancer.current = this;
    }
  }
  const client = new ReliableWsClient('ws://balanced/ws', {
    WebSocket: Balanced,
    heartbeat: false,
    reconnect: { initialDelayMs: 20, maxDelayMs: 50, jitter: 0 },
    ...options,
  });
  const readies: Array<{ resumed: boolean }> = [];
  client.on('$ready', (info) => readies.push(info));
  const readyCount = (n: number) => waitUntil(() => readies.length >= n, { what: `$ready #${n}` });
  const move = (to: TestApp) => {
    balancer.target = to;
    balancer.current!.terminate();
  };
  return { client, readies, readyCount, move };
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Two instances of the room gateway sharing Redis (B's through `redisOfB`), for the tests of one describe. */
function twoInstances(name: string, redisOfB = (): string => REDIS_URL): { a: TestApp; b: TestApp } {
  const prefix = `${name}-${process.pid}-${Date.now()}`;
  const apps = {} as { a: TestApp; b: TestApp };
  beforeAll(async () => {
    apps.a = await startApp({ broadcast: { redis: REDIS_URL, channelPrefix: prefix } }, [RoomGateway]);
    apps.b = await startApp({ broadcast: { redis: redisOfB(), channelPrefix: prefix } }, [RoomGateway]);
  });
  afterAll(async () => {
    await apps.a.close();
    await apps.b.close();
  });
  return apps;
}

/**
 * An `rws.v1` session on `owner` in room `r` that heard "one" (seq 1) from a client on
 * `sayer`, then lost its connection: resumable after seq 1. Returns its `$ready` and the sayer.
 */
async function sessionLeftBehind(owner: TestApp, sayer: TestApp): Promise<{ ready: Frame; other: TestClient }> {
  const c1 = new TestClient(owner.wsUrl('/ws'), 'rws.v1');
  await c1.open();
  c1.send({ event: '$hello', data: {} });
  const ready = await c1.next((f) => f.event === '$ready');
  const other = await TestClient.ready(sayer.wsUrl('/ws'));
  expect((await c1.request('join', 'r', 1)).event).toBe('$ack');
  await other.request('say', 'one', 1);
  expect(await c1.next((f) => f.event === 'said')).toEqual({ event: 'said', data: 'one', seq: 1 });
  c1.terminate();
  await new Promise((r) => setTimeout(r, 50));
  return { ready, other };
}

/** Resumes the session of `ready` on `app` after `lastSeq`; returns the new connection and its `$ready`. */
async function resumeOn(app: TestApp, ready: Frame, lastSeq: number, timeoutMs?: number): Promise<{ c2: TestClient; r2: Frame }> {
  const c2 = new TestClient(app.wsUrl('/ws'), 'rws.v1');
  await c2.open();
  c2.send({ event: '$hello', data: { resume: { sessionId: ready.data.sessionId, resumeToken: ready.data.resumeToken, lastSeq } } });
  return { c2, r2: await c2.next((f) => f.event === '$ready', timeoutMs) };
}

describe('session handover between instances (Redis)', () => {
  const apps = twoInstances('handover');
  it('a client resumes on another instance: replay in order, live after, duplicate ids answered from cache', async () => {
    const { a, b } = apps;
    const { ready, other } = await sessionLeftBehind(a, b);
    await other.request('say', 'two', 2);
    await other.request('say', 'three', 3);
    const { c2, r2 } = await resumeOn(b, ready, 1);
    expect(r2.data).toMatchObject({ resumed: true, missed: false, lastId: 1, sessionId: ready.data.sessionId });
    expect(await c2.next((f) => f.event === 'said')).toEqual({ event: 'said', data: 'two', seq: 2 });
    expect(await c2.next((f) => f.event === 'said')).toEqual({ event: 'said', data: 'three', seq: 3 });
    await other.request('say', 'four', 4);
    expect(await c2.next((f) => f.event === 'said')).toEqual({ event: 'said', data: 'four', seq: 4 });
    // duplicate id 1 gets the cached answer
    c2.send({ event: 'join', data: 'r', id: 1 });
    expect(await c2.next((f) => f.data?.ref === 1)).toEqual({ event: '$ack', data: { ref: 1 } });
    await new Promise((r) => setTimeout(r, 100));
    expect(c2.frames).toEqual([]);
  });
});

describe('a request still running when its session moves (Redis)', () => {
  const apps = twoInstances('handover-running');

  it('rejects with ANSWER_LOST on the client, never resolves as if answered; the handler ran once', async () => {
    const { a, b } = apps;
    const { client, readies, readyCount, move } = balancedClient(a);
    try {
      await readyCount(1);
      slowRuns = 0;
      const answer = client.request('slow', 1500, { timeoutMs: 8000 }).then(
        (data) => ({ resolved: data }),
        (error: { code: string }) => ({ rejected: error.code }),
      );
      await new Promise((r) => setTimeout(r, 100));
      move(b);
      expect(await answer).toEqual({ rejected: 'ANSWER_LOST' });
      expect(readies.map((info) => info.resumed)).toEqual([false, true]);
      expect(slowRuns).toBe(1);
    } finally {
      client.close();
    }
  });

  it("a handler still running when its session moves: what it pushes through its socket afterwards follows the session", async () => {
    const { a, b } = apps;
    const { client, readyCount, move } = balancedClient(a);
    const steps: number[] = [];
    client.on('step', (step) => steps.push(step as number));
    try {
      await readyCount(1);
      client.send('progress', 15); // 1.5 s of pushes, on A, whatever becomes of the connection
      await waitUntil(() => steps.length >= 2, { what: 'the first steps' });
      move(b);
      await readyCount(2);
      await waitUntil(() => steps.length >= 15, { what: 'all 15 steps', timeoutMs: 5000 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      expect(steps).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    } finally {
      client.close();
    }
  });

  it('an upload cut by the move starts again on the new instance and its handler runs once, there', async () => {
    const { a, b } = apps;
    const { client, readies, readyCount, move } = balancedClient(a);
    try {
      await readyCount(1);
      uploadRuns = 0;
      uploadHandlerMs = 0;
      const bytes = randomBytes(3 * MiB);
      let moved = false;
      const answer = client.upload('file', bytes, {
        onProgress: () => {
          if (moved) return;
          moved = true;
          move(b);
        },
      });
      expect(await answer).toBe(sha(bytes));
      expect(readies.map((info) => info.resumed)).toEqual([false, true]);
      expect(uploadRuns).toBe(1);
    } finally {
      client.close();
    }
  });

  it('an upload whose handler still runs when its session moves: ANSWER_LOST, the handler ran once', async () => {
    const { a, b } = apps;
    const { client, readies, readyCount, move } = balancedClient(a);
    try {
      await readyCount(1);
      uploadRuns = 0;
      uploadHandlerMs = 1500; // longer than the owner waits for running handlers before the snapshot
      const answer = client.upload('file', randomBytes(100_000)).then(
        (data) => ({ resolved: data }),
        (error: { code: string }) => ({ rejected: error.code }),
      );
      await waitUntil(() => uploadRuns === 1, { what: 'the upload handler to start' });
      move(b);
      expect(await answer).toEqual({ rejected: 'ANSWER_LOST' });
      expect(readies.map((info) => info.resumed)).toEqual([false, true]);
      await new Promise((r) => setTimeout(r, 200));
      expect(uploadRuns).toBe(1);
    } finally {
      client.close();
    }
  });

  it('streams: one cut by the move is let go, and the new instance\'s streams arrive whole and apart from the old ones', async () => {
    const { a, b } = apps;
    const { client, readies, readyCount, move } = balancedClient(a, { maxTransferBytes: 4 * MiB });
    const files: string[] = [];
    const errors: unknown[] = [];
    client.on('file', (bytes) => files.push(sha(bytes as Uint8Array)));
    client.on('$error', (error) => errors.push(error));
    try {
      await readyCount(1);
      const first = await client.request('download', MiB);
      await waitUntil(() => files.length === 1, { what: 'the first stream' });
      // a second one, cut by the move after its first chunks
      const cut = new Promise<void>((resolve) => client.on('$progress', (progress) => progress.direction === 'down' && resolve()));
      await client.request('download', 3 * MiB);
      await cut;
      move(b);
      await readyCount(2);
      expect(readies.map((info) => info.resumed)).toEqual([false, true]);
      const third = await client.request('download', 3 * MiB); // fits in 4 MiB only if the cut one was let go
      await waitUntil(() => files.length === 2, { what: 'the third stream', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 200));
      expect(files).toEqual([first, third]);
      expect(errors).toEqual([]);
    } finally {
      client.close();
    }
  });
});

/**
 * A TCP proxy to Redis that, once armed, cuts the connection whose command named a handover key
 * as soon as Redis's answer to it carries `marker`: the command ran, its reply is lost.
 */
async function replyCuttingProxy(target: URL) {
  const state = { marker: '', cuts: 0 };
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    let handoverAsked = false;
    client.on('data', (data) => {
      if (data.toString('latin1').includes(':handover:')) handoverAsked = true;
      upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (state.marker && handoverAsked && state.cuts === 0 && data.toString('latin1').includes(state.marker)) {
        state.cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(data);
    });
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target.href);
  url.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: url.href, state, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('a claim whose reply is lost: Redis ran it, the connection dropped before the answer', () => {
  let proxy: Awaited<ReturnType<typeof replyCuttingProxy>>;
  beforeAll(async () => {
    proxy = await replyCuttingProxy(new URL(REDIS_URL));
  });
  const apps = twoInstances('handover-lost-reply', () => proxy.url);
  afterAll(() => {
    void proxy.close(); // done once the instances have closed their connections through it
  });

  it('the session moves all the same (the claim sent again gets the snapshot again): never lost on both sides', async () => {
    const { a, b } = apps;
    const { ready, other } = await sessionLeftBehind(a, a);
    await other.request('say', 'two', 2);
    proxy.state.marker = ready.data.sessionId;
    const { c2, r2 } = await resumeOn(b, ready, 1, 10_000);
    expect(proxy.state.cuts).toBe(1);
    expect(r2.data).toMatchObject({ resumed: true, missed: false, sessionId: ready.data.sessionId });
    expect(await c2.next((f) => f.event === 'said')).toEqual({ event: 'said', data: 'two', seq: 2 });
    other.terminate();
    c2.terminate();
  });
});

describe('session handover is safe (Redis)', () => {
  const prefix = `handover-safe-${process.pid}-${Date.now()}`;
  const USERS: Record<string, { id: string }> = { ann: { id: 'ann' }, bob: { id: 'bob' } };
  const options = {
    broadcast: { redis: REDIS_URL, channelPrefix: prefix },
    // `slow-<user>` verifies to that user after 300 ms
    auth: {
      verify: (token: string) =>
        token.startsWith('slow-') ? new Promise((resolve) => setTimeout(() => resolve(USERS[token.slice(5)] ?? null), 300)) : (USERS[token] ?? null),
    },
  };
  let a: TestApp, b: TestApp;
  beforeAll(async () => {
    a = await startApp(options, [RoomGateway]);
    b = await startApp(options, [RoomGateway]);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  async function hello(app: TestApp, data: Record<string, unknown>): Promise<{ client: TestClient; ready: Frame }> {
    const client = new TestClient(app.wsUrl('/ws'), 'rws.v1');
    await client.open();
    client.send({ event: '$hello', data });
    return { client, ready: await client.next((f) => f.event === '$ready') };
  }

  it("another user's resume, or a wrong token, from another instance never cuts the owner's live connection", async () => {
    const owner = await hello(a, { token: 'ann' });
    const { sessionId, resumeToken } = owner.ready.data;
    const asBob = await hello(b, { token: 'bob', resume: { sessionId, resumeToken, lastSeq: 0 } });
    expect(asBob.ready.data).toMatchObject({ resumed: false, missed: true });
    const wrongToken = await hello(b, { token: 'ann', resume: { sessionId, resumeToken: `${resumeToken}x`, lastSeq: 0 } });
    expect(wrongToken.ready.data).toMatchObject({ resumed: false, missed: true });
    expect(owner.client.raw.readyState).toBe(owner.client.raw.OPEN);
    expect((await owner.client.request('join', 'r', 1)).event).toBe('$ack');
    // the rightful resume still moves it
    const moved = await hello(b, { token: 'ann', resume: { sessionId, resumeToken, lastSeq: 0 } });
    expect(moved.ready.data).toMatchObject({ resumed: true, missed: false, sessionId, resumeToken });
    for (const c of [owner, asBob, wrongToken, moved]) c.client.terminate();
  });

  it('a resume whose connection is gone before its token is verified claims nothing: the session and its live connection stay with the owner', async () => {
    const owner = await hello(a, { token: 'ann' });
    const { sessionId, resumeToken } = owner.ready.data;
    const gone = new TestClient(b.wsUrl('/ws'), 'rws.v1');
    await gone.open();
    gone.send({ event: '$hello', data: { token: 'slow-ann', resume: { sessionId, resumeToken, lastSeq: 0 } } });
    await sleep(50);
    gone.terminate();
    await sleep(800); // the verify answered 250 ms ago; a claim would have moved the session by now
    expect(owner.client.raw.readyState).toBe(owner.client.raw.OPEN);
    expect(a.app.get(SessionRegistry).getSession(sessionId)).toBeDefined();
    expect(b.app.get(SessionRegistry).getSession(sessionId)).toBeUndefined();
    expect((await owner.client.request('join', 'r', 1)).event).toBe('$ack');
    owner.client.terminate();
  });
});

describe('a resume that meets another claim of its session (Redis, three instances)', () => {
  const prefix = `handover-busy-${process.pid}-${Date.now()}`;
  let apps: TestApp[] = [];
  beforeAll(async () => {
    for (let k = 0; k < 3; k++) apps.push(await startApp({ broadcast: { redis: REDIS_URL, channelPrefix: prefix } }, [RoomGateway]));
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    apps = [];
  });

  async function resumeOn(app: TestApp, resume: Record<string, unknown>): Promise<TestClient> {
    const client = new TestClient(app.wsUrl('/ws'), 'rws.v1');
    await client.open();
    client.send({ event: '$hello', data: { resume } });
    return client;
  }

  /** The client's `$ready`, or how it was closed before one. */
  async function outcomeOf(client: TestClient): Promise<unknown> {
    const ready = client.next((f) => f.event === '$ready').then((f) => f.data as unknown);
    const closed = client.closed().then(({ code }) => ({ closedWith: code }));
    return Promise.race([ready, closed]);
  }

  it('two resumes at once on two other instances: one moves the session, the other is told to come back (1012) and then resumes; no new session', async () => {
    const [a, b, c] = apps;
    const owner = new TestClient(a.wsUrl('/ws'), 'rws.v1');
    await owner.open();
    owner.send({ event: '$hello', data: {} });
    const { sessionId, resumeToken } = (await owner.next((f) => f.event === '$ready')).data;
    expect((await owner.request('join', 'r', 1)).event).toBe('$ack');
    owner.terminate();
    await new Promise((r) => setTimeout(r, 50));
    const resume = { sessionId, resumeToken, lastSeq: 0 };
    const clients = await Promise.all([b, c].map(async (app) => resumeOn(app, resume)));
    const outcomes = await Promise.all(clients.map(outcomeOf));
    const resumed = outcomes.filter((o) => (o as { resumed?: boolean }).resumed === true);
    expect(resumed).toEqual([expect.objectContaining({ resumed: true, missed: false, sessionId, lastId: 1 })]);
    expect(outcomes).toContainEqual({ closedWith: 1012 });
    // the one told to come back does, and takes the session over
    const loser = clients[outcomes.findIndex((o) => (o as { closedWith?: number }).closedWith === 1012)];
    const again = await resumeOn(loser === clients[0] ? b : c, resume);
    expect((await again.next((f) => f.event === '$ready')).data).toMatchObject({ resumed: true, missed: false, sessionId, lastId: 1 });
    for (const client of [...clients, again]) client.terminate();
  });
});

@ReliableGateway({ path: '/ws' })
class SlowGateway {
  /** Streams `size` random bytes to the caller; answers their hash at once. */
  @SubscribeMessage('download')
  download(@MessageBody() size: number, @ConnectedSocket() s: ReliableSocket) {
    const bytes = randomBytes(size);
    s.stream('file', bytes).catch(() => undefined);
    return sha(bytes);
  }
  @SubscribeMessage('slow')
  async slow(@MessageBody() ms: number): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return 'done';
  }
}

describe('an instance that shuts down while it claims a session (Redis)', () => {
  const prefix = `handover-leaving-${process.pid}-${Date.now()}`;
  const options = { broadcast: { redis: REDIS_URL, channelPrefix: prefix }, shutdown: { timeoutMs: 5000 } };
  let a: TestApp;
  beforeAll(async () => {
    a = await startApp(options, [SlowGateway]);
  });
  afterAll(() => a.close());

  it('hands the session it brought in on to another instance: its resume there is not missed', async () => {
    const b = await startApp(options, [SlowGateway]);
    // B has a session of its own to offer at shutdown, so its offering takes a while
    const own = new TestClient(b.wsUrl('/ws'), 'rws.v1');
    await own.open();
    own.send({ event: '$hello', data: {} });
    await own.next((f) => f.event === '$ready');
    own.send({ event: 'slow', data: 3000, id: 1 });
    const first = new TestClient(a.wsUrl('/ws'), 'rws.v1');
    await first.open();
    first.send({ event: '$hello', data: {} });
    const { sessionId, resumeToken } = (await first.next((f) => f.event === '$ready')).data;
    first.send({ event: 'slow', data: 1500, id: 1 }); // A's commit of the move waits for it a while
    await new Promise((r) => setTimeout(r, 50));
    first.terminate();
    const onB = new TestClient(b.wsUrl('/ws'), 'rws.v1');
    await onB.open();
    onB.send({ event: '$hello', data: { resume: { sessionId, resumeToken, lastSeq: 0 } } }); // B claims it from A
    await new Promise((r) => setTimeout(r, 100));
    await b.close(); // while that claim runs
    onB.terminate();
    own.terminate();
    const back = new TestClient(a.wsUrl('/ws'), 'rws.v1');
    await back.open();
    back.send({ event: '$hello', data: { resume: { sessionId, resumeToken, lastSeq: 0 } } });
    expect((await back.next((f) => f.event === '$ready')).data).toMatchObject({ sessionId, resumed: true, missed: false });
    back.terminate();
  });
});

/**
 * Someone who can PUBLISH on the prefix's channels: hears what the instances send on `direct` and
 * publishes there, numbered by the publish script like an instance's, what `answer` makes of it.
 */
async function busForger(admin: Redis, prefix: string, answer: (heard: BroadcastEnvelope) => BroadcastEnvelope[] = () => []) {
  const direct = `${prefix}:direct`;
  const publish = (envelope: BroadcastEnvelope): Promise<unknown> =>
    publishSequenced(admin, direct, JSON.stringify(envelope), 'forged', { historySize: 1000, historyTtlMs: 60_000 }, false);
  const listener = admin.duplicate();
  listener.on('error', () => undefined);
  listener.on('message', (channel: string, message: string) => {
    const envelope = decodeEnvelope(decodeSequenced(message)?.payload ?? '');
    if (channel !== direct || !envelope || envelope.origin === 'forger') return;
    for (const forged of answer(envelope)) void publish(forged);
  });
  await listener.subscribe(direct);
  return { publish, close: () => listener.quit() };
}

describe('forged handover answers on the bus (Redis)', () => {
  const prefix = uniquePrefix('handover-forged');
  let admin: Redis;
  let b: TestApp;
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  beforeAll(async () => {
    admin = await adminConnection();
    b = await startApp({ broadcast: { redis: REDIS_URL, channelPrefix: prefix } }, [RoomGateway]);
  });
  afterAll(async () => {
    await b.close();
    await admin.quit();
  });

  const room = (name: string): string => `${prefix}:room:${name}`;
  /** Subscriptions to these rooms' channels, all connections together. */
  const subscribers = async (rooms: string[]): Promise<number> => {
    const reply = (await admin.call('PUBSUB', 'NUMSUB', ...rooms.map(room))) as Array<string | number>;
    return reply.filter((_, index) => index % 2 === 1).reduce<number>((sum, count) => sum + Number(count), 0);
  };
  /** A resume of a session no instance has: B claims it on the bus. */
  async function resumeUnknown(sessionId: string): Promise<TestClient> {
    const client = new TestClient(b.wsUrl('/ws'), 'rws.v1');
    cleanups.push(() => client.terminate());
    await client.open();
    client.send({ event: '$hello', data: { resume: { sessionId, resumeToken: 'made-up', lastSeq: 0 } } });
    return client;
  }

  it('after a failed claim, the rooms a forged ready made it subscribe to are unsubscribed, except those of local members or of a claim still running', async () => {
    const member = await TestClient.ready(b.wsUrl('/ws'));
    cleanups.push(() => member.terminate());
    expect((await member.request('join', 'kept', 1)).event).toBe('$ack');
    const flood = Array.from({ length: 200 }, (_, n) => `flood-${n}`);
    const roomsOf: Record<string, string[]> = {
      running: ['shared', 'kept', 'only-running'],
      failing: ['shared', 'kept', 'only-failing', ...flood],
    };
    const requestOf: Record<string, string> = {};
    const forger = await busForger(admin, prefix, (step) => {
      if (step.type === 'handover-prepare') {
        requestOf[step.sessionId] = step.request;
        return [{ type: 'handover-ready', origin: 'forger', request: step.request, rooms: roomsOf[step.sessionId] ?? [] }];
      }
      // the failing claim is told its snapshot is stored, finds none and ends at once; the running one waits for its commit
      if (step.type === 'handover-commit' && step.request === requestOf.failing) {
        return [{ type: 'handover-done', origin: 'forger', request: step.request, key: `${prefix}:handover:${step.request}` }];
      }
      return [];
    });
    cleanups.push(() => forger.close());
    const running = await resumeUnknown('running');
    await waitForCount(() => numsub(admin, room('only-running')), 1, 'the running claim subscribed');
    const failing = await resumeUnknown('failing');
    expect((await failing.closed()).code).toBe(1012); // its session "stays with its owner"
    // released in the order listed, on one connection: had 'shared' been left, it would show by now
    await waitForCount(() => subscribers(['only-failing', ...flood]), 0, "the failed claim's rooms unsubscribed");
    expect(await subscribers(['shared', 'kept', 'only-running'])).toBe(3);
    expect((await running.closed()).code).toBe(1012);
    await waitForCount(() => subscribers(['shared', 'only-running']), 0, "the second failed claim's rooms unsubscribed");
    expect(await numsub(admin, room('kept'))).toBe(1);
  });

  it('forged adoption offers, however many, start at most ADOPTION_CONCURRENCY claims at once', async () => {
    // the instance's id, as anyone on the Redis sees it
    const [canary] = (await admin.call('PUBSUB', 'CHANNELS', `${prefix}:canary:*`)) as string[];
    const adopter = canary.slice(`${prefix}:canary:`.length);
    let claims = 0;
    let claimsBeforeRollCall: number | undefined;
    const forger = await busForger(admin, prefix, (heard) => {
      if (heard.type === 'handover-prepare') claims++;
      if (heard.type === 'adopt-here' && heard.call === 'barrier') claimsBeforeRollCall = claims;
      return [];
    });
    cleanups.push(() => forger.close());
    for (let offer = 0; offer < 5; offer++) {
      await forger.publish({ type: 'adopt-offer', origin: 'forger', adopter, sessionIds: Array.from({ length: 100 }, (_, n) => `offer-${offer}-${n}`) });
    }
    // B answers this after it has started the claims of every offer before it: they are published first, in order
    await forger.publish({ type: 'adopt-call', origin: 'forger', call: 'barrier' });
    await waitUntil(() => claimsBeforeRollCall !== undefined, { what: 'the answer to the roll call' });
    expect(claimsBeforeRollCall).toBe(ADOPTION_CONCURRENCY);
  });
});
