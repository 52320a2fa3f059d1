/**
 * Sessions and resume (DESIGN §3 "Sessions and resume") end to end, on the wire: real Nest apps on
 * port 0 (memory store), raw `ws` clients speaking `rws.v1`. Every wait is bounded.
 *
 * The last block moves sessions between two instances through Redis (REDIS_URL) for the cases
 * that only exist there.
 */
import { ForbiddenException } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { BroadcastService, ReliableGateway, WsPrincipal, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

// ---------------------------------------------------------------------------------------------
// Server side

/** How many times a handler ran, per `key` of its payload. */
const runs = new Map<string, number>();
const ran = (key: string): number => runs.get(key) ?? 0;
const count = (key: string): void => void runs.set(key, ran(key) + 1);

interface Keyed {
  key: string;
}

@ReliableGateway({ path: '/ws' })
class ResumeGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() room: string, @ConnectedSocket() socket: ReliableSocket): Promise<void> {
    await this.broadcast.join(socket.id, room);
  }

  /** Replies with its payload. */
  @SubscribeMessage('echo')
  echo(@MessageBody() data: Keyed): Keyed {
    count(data.key);
    return data;
  }

  /** Returns nothing: answered with `$ack`. */
  @SubscribeMessage('note')
  note(@MessageBody() data: Keyed): void {
    count(data.key);
  }

  /** Fails: answered with `$error` FORBIDDEN. */
  @SubscribeMessage('refuse')
  refuse(@MessageBody() data: Keyed): never {
    count(data.key);
    throw new ForbiddenException(`no ${data.key}`);
  }

  /** Takes `ms`, then pushes `late` through the socket it was given and replies. */
  @SubscribeMessage('slow')
  async slow(@MessageBody() data: Keyed & { ms: number }, @ConnectedSocket() socket: ReliableSocket) {
    count(data.key);
    await sleep(data.ms);
    socket.send('late', { key: data.key });
    return { done: data.key };
  }

  @SubscribeMessage('whoami')
  whoami(@WsPrincipal() principal: unknown): unknown {
    return principal ?? null;
  }
}

// ---------------------------------------------------------------------------------------------
// Client side helpers

interface Credentials {
  sessionId: string;
  resumeToken: string;
}

/** Opens an `rws.v1` connection, sends `$hello` and returns the client with its `$ready`. */
async function hello(url: string, data: Record<string, unknown> = {}): Promise<{ client: TestClient; ready: Frame }> {
  const client = new TestClient(url, 'rws.v1');
  await client.open();
  client.send({ event: '$hello', data });
  const ready = await client.next((frame) => frame.event === '$ready');
  return { client, ready };
}

function resumeOf(ready: Frame, lastSeq: number): { resume: Credentials & { lastSeq: number } } {
  return { resume: { sessionId: ready.data.sessionId, resumeToken: ready.data.resumeToken, lastSeq } };
}

/** Waits (bounded) until the client recorded `n` frames of `event`; returns them (kept). */
async function pushes(client: TestClient, event: string, n: number, timeoutMs = 5000): Promise<Frame[]> {
  return waitUntil(
    () => {
      const found = client.frames.filter((frame) => frame.event === event);
      return found.length >= n ? found : undefined;
    },
    { timeoutMs, intervalMs: 10, what: `${n} "${event}" frames` },
  );
}

/** Drops a connection without a close frame (the server sees 1006). */
async function drop(client: TestClient): Promise<void> {
  client.terminate();
  await client.closed(3000);
}

/** Lets frames in flight arrive, for assertions that nothing more came. */
const settle = (): Promise<void> => sleep(150);

const open: TestClient[] = [];
function track<T extends { client: TestClient }>(value: T): T {
  open.push(value.client);
  return value;
}
afterEach(() => {
  for (const client of open.splice(0)) client.terminate();
});

const BASE: ReliableWsOptions = { rateLimit: false, allowedOrigins: '*' };

// ---------------------------------------------------------------------------------------------

describe('resume (memory store)', () => {
  let app: TestApp;
  let broadcast: BroadcastService;
  let url: string;
  beforeAll(async () => {
    app = await startApp({ ...BASE, resume: { bufferSize: 5, ttlMs: 20000 } }, [ResumeGateway]);
    broadcast = app.app.get(BroadcastService);
    url = app.wsUrl('/ws');
  });
  afterAll(() => app.close());

  it('a fresh session: $ready { resumed: false, missed: false, lastId: 0 } with unguessable ids', async () => {
    const { ready } = track(await hello(url));
    expect(ready.data).toMatchObject({ resumed: false, missed: false, lastId: 0 });
    expect(ready.data.sessionId).toEqual(expect.any(String));
    expect(ready.data.resumeToken).toEqual(expect.any(String));
    // ≥ 128 bits each, and the token is not derived from the id
    expect(Buffer.from(ready.data.sessionId, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(Buffer.from(ready.data.resumeToken, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(ready.data.resumeToken).not.toBe(ready.data.sessionId);
  });

  it('resume within ttl: $ready resumed, then every push after lastSeq in order (room, toClient), then live', async () => {
    const { client, ready } = track(await hello(url));
    const id = ready.data.sessionId as string;
    expect((await client.request('join', 'lobby', 1)).event).toBe('$ack');
    await broadcast.toRoom('lobby', 'said', 'one');
    await broadcast.toClient(id, 'said', 'two');
    expect(await pushes(client, 'said', 2)).toEqual([
      { event: 'said', data: 'one', seq: 1 },
      { event: 'said', data: 'two', seq: 2 },
    ]);
    await drop(client);

    await broadcast.toRoom('lobby', 'said', 'three');
    await broadcast.toClient(id, 'said', 'four');
    await broadcast.toAll('said', 'five');

    const next = track(await hello(url, resumeOf(ready, 2)));
    expect(next.ready.data).toMatchObject({ sessionId: id, resumeToken: ready.data.resumeToken, resumed: true, missed: false, lastId: 1 });
    expect(await pushes(next.client, 'said', 3)).toEqual([
      { event: 'said', data: 'three', seq: 3 },
      { event: 'said', data: 'four', seq: 4 },
      { event: 'said', data: 'five', seq: 5 },
    ]);
    // the room membership came along: a live room push arrives, numbered on
    await broadcast.toRoom('lobby', 'said', 'six');
    expect((await pushes(next.client, 'said', 4))[3]).toEqual({ event: 'said', data: 'six', seq: 6 });
    expect(broadcast.roomsOf(id)).toEqual(['lobby']);
    await settle();
    // replies, $ready and $ack are never replayed; nothing else arrived
    expect(next.client.frames.map((f) => f.seq)).toEqual([3, 4, 5, 6]);
  });

  it('a resume with lastSeq 0 replays everything the buffer still holds (exactly bufferSize)', async () => {
    const { client, ready } = track(await hello(url));
    await drop(client);
    for (let n = 1; n <= 5; n++) await broadcast.toClient(ready.data.sessionId, 'n', n);
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: true, missed: false });
    expect((await pushes(next.client, 'n', 5)).map((f) => [f.data, f.seq])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
  });

  it('pushes through ReliableSocket.send after the connection dropped are kept; the answer is had by resending the id', async () => {
    const { client, ready } = track(await hello(url));
    client.send({ event: 'slow', data: { key: 'away', ms: 300 }, id: 1 });
    await waitUntil(() => ran('away') === 1, { what: 'the slow handler to start' });
    await drop(client);
    await sleep(450); // the handler finishes while nobody is connected
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: true, missed: false, lastId: 1 });
    expect(await pushes(next.client, 'late', 1)).toEqual([{ event: 'late', data: { key: 'away' }, seq: 1 }]);
    await settle();
    expect(next.client.frames.filter((f) => f.ref !== undefined)).toEqual([]); // answers are not replayed
    expect(await next.client.request('slow', { key: 'away', ms: 300 }, 1)).toEqual({ event: 'slow', data: { done: 'away' }, ref: 1 });
    expect(ran('away')).toBe(1);
  });

  it('$ack { seq } trims the buffer: a later resume from before the ack is missed', async () => {
    const { client, ready } = track(await hello(url));
    for (let n = 1; n <= 3; n++) await broadcast.toClient(ready.data.sessionId, 'n', n);
    await pushes(client, 'n', 3);
    client.send({ event: '$ack', data: { seq: 3 } });
    await client.request('echo', { key: 'after-ack' }, 1); // frames are handled in order: the ack is in
    await drop(client);
    const next = track(await hello(url, resumeOf(ready, 1)));
    expect(next.ready.data).toMatchObject({ resumed: false, missed: true, lastId: 0 });
    expect(next.ready.data.sessionId).not.toBe(ready.data.sessionId);
  });

  it('$ack { seq } keeps what was not confirmed: resume from the acked seq replays the rest', async () => {
    const { client, ready } = track(await hello(url));
    for (let n = 1; n <= 4; n++) await broadcast.toClient(ready.data.sessionId, 'n', n);
    await pushes(client, 'n', 4);
    client.send({ event: '$ack', data: { seq: 2 } });
    await client.request('echo', { key: 'partial-ack' }, 1);
    await drop(client);
    const next = track(await hello(url, resumeOf(ready, 2)));
    expect(next.ready.data).toMatchObject({ resumed: true, missed: false });
    expect((await pushes(next.client, 'n', 2)).map((f) => f.seq)).toEqual([3, 4]);
  });

  it('a gap beyond bufferSize (10 pushes away, buffer 5) → new session with missed: true, never a silent gap', async () => {
    const { client, ready } = track(await hello(url));
    await drop(client);
    for (let n = 1; n <= 10; n++) await broadcast.toClient(ready.data.sessionId, 'n', n);
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: false, missed: true, lastId: 0 });
    expect(next.ready.data.sessionId).not.toBe(ready.data.sessionId);
    await settle();
    expect(next.client.frames.filter((f) => f.event === 'n')).toEqual([]);
    // the new session numbers from 1 again
    await broadcast.toClient(next.ready.data.sessionId, 'n', 'fresh');
    expect(await pushes(next.client, 'n', 1)).toEqual([{ event: 'n', data: 'fresh', seq: 1 }]);
  });

  it('unknown session, wrong resume token, malformed lastSeq → new session with missed: true', async () => {
    const unknown = track(await hello(url, { resume: { sessionId: 'A'.repeat(22), resumeToken: 'B'.repeat(22), lastSeq: 0 } }));
    expect(unknown.ready.data).toMatchObject({ resumed: false, missed: true, lastId: 0 });

    const { client, ready } = track(await hello(url));
    await drop(client);
    const wrong = track(await hello(url, { resume: { sessionId: ready.data.sessionId, resumeToken: 'B'.repeat(22), lastSeq: 0 } }));
    expect(wrong.ready.data).toMatchObject({ resumed: false, missed: true });
    expect(wrong.ready.data.sessionId).not.toBe(ready.data.sessionId);
    const ahead = track(await hello(url, resumeOf(ready, -1)));
    expect(ahead.ready.data).toMatchObject({ resumed: false, missed: true });
  });

  it('a wrong resume token cannot take over: the original connection stays open and its session works', async () => {
    const { client, ready } = track(await hello(url));
    const intruder = track(await hello(url, { resume: { sessionId: ready.data.sessionId, resumeToken: ready.data.sessionId, lastSeq: 0 } }));
    expect(intruder.ready.data).toMatchObject({ resumed: false, missed: true });
    expect(intruder.ready.data.sessionId).not.toBe(ready.data.sessionId);
    await settle();
    expect(client.raw.readyState).toBe(client.raw.OPEN);
    expect(await client.request('echo', { key: 'still-mine' }, 1)).toMatchObject({ event: 'echo', ref: 1 });
    await broadcast.toClient(ready.data.sessionId, 'n', 'to-owner');
    expect(await pushes(client, 'n', 1)).toEqual([{ event: 'n', data: 'to-owner', seq: 1 }]);
    await settle();
    expect(intruder.client.frames.filter((f) => f.event === 'n')).toEqual([]);
  });

  it('takeover of a half-open session: a resume from a second socket terminates the first', async () => {
    const first = track(await hello(url));
    await broadcast.toClient(first.ready.data.sessionId, 'n', 1);
    await pushes(first.client, 'n', 1);
    const second = track(await hello(url, resumeOf(first.ready, 1)));
    expect(second.ready.data).toMatchObject({ sessionId: first.ready.data.sessionId, resumed: true, missed: false });
    const closed = await first.client.closed(3000);
    expect(closed.code).toBe(1006); // terminated, no close frame
    await broadcast.toClient(first.ready.data.sessionId, 'n', 2);
    expect(await pushes(second.client, 'n', 1)).toEqual([{ event: 'n', data: 2, seq: 2 }]);
    expect(first.client.frames.filter((f) => f.seq === 2)).toEqual([]);
    // the first connection's close came after the takeover and does not detach the session
    await settle();
    await broadcast.toClient(first.ready.data.sessionId, 'n', 3);
    expect((await pushes(second.client, 'n', 2))[1]).toEqual({ event: 'n', data: 3, seq: 3 });
  });

  it('a client close with 1000 ends the session; any other client close code keeps it', async () => {
    const normal = track(await hello(url));
    normal.client.close(1000);
    await normal.client.closed(3000);
    const afterNormal = track(await hello(url, resumeOf(normal.ready, 0)));
    expect(afterNormal.ready.data).toMatchObject({ resumed: false, missed: true });

    const other = track(await hello(url));
    other.client.close(4000);
    await other.client.closed(3000);
    const afterOther = track(await hello(url, resumeOf(other.ready, 0)));
    expect(afterOther.ready.data).toMatchObject({ resumed: true, missed: false });
  });

  it('a session that failed a resume with the wrong token is still resumable with the right one', async () => {
    const { client, ready } = track(await hello(url));
    await drop(client);
    await broadcast.toClient(ready.data.sessionId, 'n', 'kept');
    track(await hello(url, { resume: { sessionId: ready.data.sessionId, resumeToken: 'C'.repeat(22), lastSeq: 0 } }));
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: true, missed: false });
    expect(await pushes(next.client, 'n', 1)).toEqual([{ event: 'n', data: 'kept', seq: 1 }]);
  });

  describe('duplicate client ids (rws.v1)', () => {
    it('a resent id gets the cached answer — reply, $ack or $error — without running the handler again', async () => {
      const { client } = track(await hello(url));
      const reply = await client.request('echo', { key: 'dup-reply' }, 1);
      const ack = await client.request('note', { key: 'dup-ack' }, 2);
      const error = await client.request('refuse', { key: 'dup-error' }, 3);
      expect(reply).toEqual({ event: 'echo', data: { key: 'dup-reply' }, ref: 1 });
      expect(ack).toEqual({ event: '$ack', data: { ref: 2 } });
      expect(error).toMatchObject({ event: '$error', data: { code: 'FORBIDDEN', ref: 3 } });
      // same ids, even with other payloads: the first answers, the handlers do not run
      expect(await client.request('echo', { key: 'dup-reply' }, 1)).toEqual(reply);
      expect(await client.request('note', { key: 'dup-ack' }, 2)).toEqual(ack);
      expect(await client.request('refuse', { key: 'dup-error' }, 3)).toEqual(error);
      expect(await client.request('echo', { key: 'other' }, 2)).toEqual(ack);
      expect([ran('dup-reply'), ran('dup-ack'), ran('dup-error'), ran('other')]).toEqual([1, 1, 1, 0]);
      await settle();
      expect(client.frames).toEqual([]);
    });

    it('answers are kept for at least 100 ids; an older duplicate gets $ack { ref, duplicate: true }', async () => {
      const { client } = track(await hello(url));
      const total = 140;
      for (let id = 1; id <= total; id++) client.send({ event: 'note', data: { key: `many-${id}` }, id });
      await waitUntil(() => client.frames.length >= total, { what: `${total} answers` });
      expect(client.frames.map((f) => f.data?.ref)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      client.frames.length = 0;
      expect(await client.request('note', { key: 'many-1' }, 1)).toEqual({ event: '$ack', data: { ref: 1, duplicate: true } });
      // the last 100 ids keep their real answer
      for (const id of [total - 99, total - 50, total]) {
        expect(await client.request('note', { key: `many-${id}` }, id)).toEqual({ event: '$ack', data: { ref: id } });
      }
      for (let id = 1; id <= total; id++) expect(ran(`many-${id}`)).toBe(1);
      expect((await hello(url, {})).ready.data.lastId).toBe(0); // (another client's numbering is its own)
    });

    it('a duplicate sent while the first is still running gets no second answer; the handler runs once', async () => {
      const { client } = track(await hello(url));
      client.send({ event: 'slow', data: { key: 'running', ms: 300 }, id: 1 });
      client.send({ event: 'slow', data: { key: 'running', ms: 300 }, id: 1 });
      const answer = await client.next((f) => f.ref === 1, 3000);
      expect(answer).toEqual({ event: 'slow', data: { done: 'running' }, ref: 1 });
      await sleep(400);
      expect(client.frames.filter((f) => f.ref === 1 || f.data?.ref === 1)).toEqual([]);
      expect(ran('running')).toBe(1);
    });

    it('more than 128 handlers still running across a reconnect: each retry gets its one real answer, none is lost', async () => {
      const { client, ready } = track(await hello(url));
      const total = 200;
      for (let id = 1; id <= total; id++) client.send({ event: 'slow', data: { key: `inflight-${id}`, ms: 800 }, id });
      await waitUntil(() => ran(`inflight-${total}`) === 1, { what: `${total} handlers running` });
      await drop(client);
      const next = track(await hello(url, resumeOf(ready, 0)));
      expect(next.ready.data).toMatchObject({ resumed: true, lastId: total });
      for (let id = 1; id <= total; id++) next.client.send({ event: 'slow', data: { key: `inflight-${id}`, ms: 800 }, id });
      const answers = await waitUntil(
        () => {
          const found = next.client.frames.filter((f) => f.ref !== undefined || f.data?.ref !== undefined);
          return found.length >= total ? found : undefined;
        },
        { timeoutMs: 5000, what: `${total} answers` },
      );
      expect(answers.map((f) => f.ref ?? f.data.ref).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(answers.filter((f) => f.event !== 'slow')).toEqual([]);
      await settle();
      expect(next.client.frames.filter((f) => f.ref !== undefined || f.data?.ref !== undefined)).toHaveLength(total);
      for (let id = 1; id <= total; id++) expect(ran(`inflight-${id}`)).toBe(1);
    });

    it('lastId in $ready is the highest id taken; ids continue across the resume', async () => {
      const { client, ready } = track(await hello(url));
      for (let id = 1; id <= 3; id++) await client.request('echo', { key: `seq-${id}` }, id);
      await drop(client);
      const next = track(await hello(url, resumeOf(ready, 0)));
      expect(next.ready.data).toMatchObject({ resumed: true, lastId: 3 });
      expect(await next.client.request('echo', { key: 'seq-2' }, 2)).toEqual({ event: 'echo', data: { key: 'seq-2' }, ref: 2 });
      expect(await next.client.request('echo', { key: 'seq-4' }, 4)).toEqual({ event: 'echo', data: { key: 'seq-4' }, ref: 4 });
      expect([1, 2, 3, 4].map((id) => ran(`seq-${id}`))).toEqual([1, 1, 1, 1]);
    });

    it('id 0 (a valid message id) is not acknowledged as handled when its handler never ran', async () => {
      const { client } = track(await hello(url));
      const answer = await client.request('echo', { key: 'zero' }, 0);
      // either handled (reply) or refused ($error): a success-looking $ack with nothing run loses the message
      expect({ event: answer.event, runs: ran('zero') }).toEqual(answer.event === '$error' ? { event: '$error', runs: 0 } : { event: 'echo', runs: 1 });
    });

    it('plain clients (no subprotocol) use ids for correlation only: a repeated id runs again', async () => {
      const client = await TestClient.ready(url);
      open.push(client);
      await client.request('echo', { key: 'plain' }, 1);
      await client.request('echo', { key: 'plain' }, 1);
      expect(ran('plain')).toBe(2);
    });
  });
});

describe('resume: session expiry', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp({ ...BASE, resume: { bufferSize: 100, ttlMs: 300 } }, [ResumeGateway]);
  });
  afterAll(() => app.close());

  it('after ttlMs the session is gone: resume → new session with missed: true', async () => {
    const url = app.wsUrl('/ws');
    const { client, ready } = track(await hello(url));
    await drop(client);
    await sleep(700);
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: false, missed: true, lastId: 0 });
  });
});

describe('resume: a replay larger than backpressure.maxBufferedBytes', () => {
  let app: TestApp;
  beforeAll(async () => {
    // backpressure.maxBufferedBytes stays at its default (1 MiB); the replay buffer may hold 8 MiB
    app = await startApp({ ...BASE, resume: { maxBufferedBytes: 8 * 1024 * 1024 } }, [ResumeGateway]);
  });
  afterAll(() => app.close());

  it('a client that missed 1000 pushes of 4 KiB gets all of them on one connection, not a 4009', async () => {
    const url = app.wsUrl('/ws');
    const { client, ready } = track(await hello(url));
    await drop(client);
    const pad = 'x'.repeat(4000);
    const broadcast = app.app.get(BroadcastService);
    for (let i = 0; i < 1000; i++) await broadcast.toClient(ready.data.sessionId, 'big', { i, pad });
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: true, missed: false });
    await waitUntil(() => next.client.frames.length >= 1000 || next.client.raw.readyState !== next.client.raw.OPEN, {
      timeoutMs: 10_000,
      what: 'the replay',
    });
    await settle();
    expect({ replayed: next.client.frames.filter((f) => f.event === 'big').length, open: next.client.raw.readyState === next.client.raw.OPEN }).toEqual({
      replayed: 1000,
      open: true,
    });
  });
});

describe('resume: replay buffers are bounded in bytes (default resume.maxBufferedBytes, 1 MiB)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp(BASE, [ResumeGateway]);
  });
  afterAll(() => app.close());

  it('a detached session keeps the newest 1 MiB of pushes: a resume that needs older ones gets missed: true', async () => {
    const url = app.wsUrl('/ws');
    const broadcast = app.app.get(BroadcastService);
    const pad = 'x'.repeat(20_000);
    const { client, ready } = track(await hello(url));
    await drop(client);
    for (let i = 0; i < 100; i++) await broadcast.toClient(ready.data.sessionId, 'big', { i, pad }); // ~2 MB
    const next = track(await hello(url, resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: false, missed: true });
  });

  it('a resume from within the newest 1 MiB replays exactly what it missed', async () => {
    const url = app.wsUrl('/ws');
    const broadcast = app.app.get(BroadcastService);
    const pad = 'x'.repeat(20_000);
    const { client, ready } = track(await hello(url));
    await drop(client);
    for (let i = 1; i <= 100; i++) await broadcast.toClient(ready.data.sessionId, 'big', { i, pad });
    const next = track(await hello(url, resumeOf(ready, 80)));
    expect(next.ready.data).toMatchObject({ resumed: true, missed: false });
    await waitUntil(() => next.client.frames.filter((f) => f.event === 'big').length >= 20, { timeoutMs: 5000, what: 'the replay' });
    expect(next.client.frames.filter((f) => f.event === 'big').map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, k) => 81 + k));
  });
});

// ---------------------------------------------------------------------------------------------

const PRINCIPALS: Record<string, { id: number; name: string }> = {
  alice: { id: 1, name: 'Alice' },
  'alice-refreshed': { id: 1, name: 'Alice (refreshed)' },
  bob: { id: 2, name: 'Bob' },
};

describe('resume with auth', () => {
  let app: TestApp;
  let broadcast: BroadcastService;
  let url: string;
  const verified: string[] = [];
  beforeAll(async () => {
    app = await startApp(
      {
        ...BASE,
        auth: {
          verify: (token: string) => {
            verified.push(token);
            return PRINCIPALS[token] ?? null;
          },
        },
      },
      [ResumeGateway],
    );
    broadcast = app.app.get(BroadcastService);
    url = app.wsUrl('/ws');
  });
  afterAll(() => app.close());

  it('the principal and toUser pushes carry over; the token is verified again', async () => {
    const { client, ready } = track(await hello(url, { token: 'alice' }));
    await drop(client);
    await broadcast.toUser(1, 'mail', 'while away');
    verified.length = 0;
    const next = track(await hello(url, { token: 'alice-refreshed', ...resumeOf(ready, 0) }));
    expect(verified).toEqual(['alice-refreshed']);
    expect(next.ready.data).toMatchObject({ sessionId: ready.data.sessionId, resumed: true, missed: false });
    expect(await pushes(next.client, 'mail', 1)).toEqual([{ event: 'mail', data: 'while away', seq: 1 }]);
    expect((await next.client.request('whoami', null, 1)).data).toEqual(PRINCIPALS['alice-refreshed']);
    await broadcast.toUser(1, 'mail', 'live');
    expect((await pushes(next.client, 'mail', 2))[1]).toEqual({ event: 'mail', data: 'live', seq: 2 });
  });

  it("another user's token cannot resume: new session with missed: true; the owner can still resume", async () => {
    const { client, ready } = track(await hello(url, { token: 'alice' }));
    await drop(client);
    const bob = track(await hello(url, { token: 'bob', ...resumeOf(ready, 0) }));
    expect(bob.ready.data).toMatchObject({ resumed: false, missed: true });
    expect(bob.ready.data.sessionId).not.toBe(ready.data.sessionId);
    expect((await bob.client.request('whoami', null, 1)).data).toEqual(PRINCIPALS.bob);
    const alice = track(await hello(url, { token: 'alice', ...resumeOf(ready, 0) }));
    expect(alice.ready.data).toMatchObject({ sessionId: ready.data.sessionId, resumed: true });
  });

  it('an invalid token on resume closes 4001 and does not disturb the session', async () => {
    const { client, ready } = track(await hello(url, { token: 'alice' }));
    await drop(client);
    const bad = new TestClient(url, 'rws.v1');
    open.push(bad);
    await bad.open();
    bad.send({ event: '$hello', data: { token: 'nobody', ...resumeOf(ready, 0) } });
    expect((await bad.closed(3000)).code).toBe(4001);
    const alice = track(await hello(url, { token: 'alice', ...resumeOf(ready, 0) }));
    expect(alice.ready.data).toMatchObject({ resumed: true, missed: false });
  });
});

// ---------------------------------------------------------------------------------------------

describe('resume across instances (Redis)', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    const options: ReliableWsOptions = {
      ...BASE,
      broadcast: { redis: REDIS_URL, channelPrefix: uniquePrefix('resume') },
      // the last instance to close offers its sessions to nobody and waits this long for takers
      shutdown: { timeoutMs: 1000 },
    };
    a = await startApp(options, [ResumeGateway]);
    b = await startApp(options, [ResumeGateway]);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('two resumes of the same session arriving together on another instance: neither is told missed', async () => {
    const { client, ready } = track(await hello(a.wsUrl('/ws')));
    await a.app.get(BroadcastService).toClient(ready.data.sessionId, 'n', 1);
    await pushes(client, 'n', 1);
    await drop(client);
    // e.g. a client that gave up on a slow attempt and tried again, or the client's resume meeting
    // the adopt-offer of a shutting-down instance: both claims run at once on B
    const attempts = [new TestClient(b.wsUrl('/ws'), 'rws.v1'), new TestClient(b.wsUrl('/ws'), 'rws.v1')];
    for (const attempt of attempts) track({ client: attempt });
    await Promise.all(attempts.map((attempt) => attempt.open()));
    for (const attempt of attempts) attempt.send({ event: '$hello', data: resumeOf(ready, 0) });
    // Both claims share one handover; the later resume then takes the session over from the
    // earlier one (whose socket is cut, maybe before its $ready left). Nobody is told `missed`.
    const outcomes = await Promise.all(
      attempts.map((attempt) =>
        waitUntil(() => attempt.frames.find((frame) => frame.event === '$ready') ?? (attempt.raw.readyState === attempt.raw.CLOSED ? 'cut' : undefined), {
          what: 'a $ready or a cut connection',
        }),
      ),
    );
    const readies = outcomes.filter((outcome): outcome is Frame => outcome !== 'cut');
    expect(readies.length).toBeGreaterThanOrEqual(1);
    for (const frame of readies) expect(frame.data).toMatchObject({ resumed: true, missed: false, sessionId: ready.data.sessionId });
    expect(attempts[1].raw.readyState).toBe(attempts[1].raw.OPEN);
  });

  it('the answer of a handler still running when the session moves is had by resending its id', async () => {
    const { client, ready } = track(await hello(a.wsUrl('/ws')));
    client.send({ event: 'slow', data: { key: 'moving', ms: 400 }, id: 1 });
    await waitUntil(() => ran('moving') === 1, { what: 'the slow handler to start' });
    await drop(client);
    const next = track(await hello(b.wsUrl('/ws'), resumeOf(ready, 0)));
    expect(next.ready.data).toMatchObject({ resumed: true, lastId: 1 });
    await sleep(600); // the handler on A has finished by now
    const answer = await next.client.request('slow', { key: 'moving', ms: 400 }, 1);
    await settle();
    expect({ answer, late: next.client.frames.filter((f) => f.event === 'late'), runs: ran('moving') }).toEqual({
      answer: { event: 'slow', data: { done: 'moving' }, ref: 1 },
      // its push through ReliableSocket.send reached the session too
      late: [{ event: 'late', data: { key: 'moving' }, seq: 1 }],
      runs: 1,
    });
  });
});
