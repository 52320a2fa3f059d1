import { BroadcastService, type ReliableWsOptions } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import {
  allPushes,
  BroadcastController,
  BroadcastGateway,
  call,
  closeAll,
  connectPeer,
  httpJson,
  pushesOf,
  waitForPushes,
  type Peer,
} from './support/broadcast-app.js';
import { sleep, within } from './support/wait.js';
import type { TestClient } from './support/ws-client.js';

/**
 * Tokens: `<user>.<anything>` → principal `{ id: '<user>' }`; all digits → `{ id: <number> }`.
 */
const options: ReliableWsOptions = {
  auth: {
    verify: (token: string) => {
      if (!token) return null;
      if (/^\d+$/.test(token)) return { id: Number(token) };
      return { id: token.split('.')[0] };
    },
  },
  heartbeat: { intervalMs: 60000, timeoutMs: 60000 },
};

let app: TestApp;
let service: BroadcastService;
const clients: TestClient[] = [];
let ids = 1;

async function peer(token: string): Promise<Peer> {
  const p = await connectPeer(app.wsUrl(`/ws?token=${encodeURIComponent(token)}`));
  clients.push(p.client);
  return p;
}

/** A toAll the test uses as a barrier: delivered to each socket after everything pushed before it. */
async function barrier(peers: Peer[], tag: string): Promise<void> {
  await service.toAll(`barrier-${tag}`, null);
  for (const p of peers) await waitForPushes(p.client, `barrier-${tag}`, 1);
}

beforeAll(async () => {
  app = await startApp(options, [BroadcastGateway], { controllers: [BroadcastController] });
  service = app.app.get(BroadcastService);
});

afterEach(async () => {
  await closeAll(clients);
});

afterAll(async () => {
  await app?.close();
});

describe('BroadcastService in memory', () => {
  it('is constructor-injected into gateways and controllers and is the same instance as app.get()', () => {
    expect(service).toBeInstanceOf(BroadcastService);
    expect((app.app.get(BroadcastGateway) as unknown as { broadcast: unknown }).broadcast).toBe(service);
    expect((app.app.get(BroadcastController) as unknown as { broadcast: unknown }).broadcast).toBe(service);
  });

  it('toAll reaches every client exactly once; except excludes one session', async () => {
    const peers = [await peer('a.1'), await peer('b.1'), await peer('c.1')];
    const answer = await call(peers[0].client, 'toAll', { event: 'hello', data: { text: 'hi 👋\nthere' } }, ids++);
    expect(answer).toEqual({ promise: true, resolvedUndefined: true });
    for (const p of peers) {
      const [frame] = await waitForPushes(p.client, 'hello', 1);
      expect(frame.data).toEqual({ text: 'hi 👋\nthere' });
      expect(typeof frame.seq).toBe('number');
    }

    await call(peers[0].client, 'toAll', { event: 'others', data: 1, exceptSelf: true }, ids++);
    await service.toAll('direct', 2, { except: peers[1].sessionId });
    await barrier(peers, 'all');
    expect(pushesOf(peers[0].client, 'others')).toHaveLength(0);
    expect(pushesOf(peers[1].client, 'others')).toHaveLength(1);
    expect(pushesOf(peers[2].client, 'others')).toHaveLength(1);
    expect(pushesOf(peers[0].client, 'direct')).toHaveLength(1);
    expect(pushesOf(peers[1].client, 'direct')).toHaveLength(0);
    expect(pushesOf(peers[2].client, 'direct')).toHaveLength(1);
    for (const p of peers) expect(pushesOf(p.client, 'hello')).toHaveLength(1);
  });

  it('toRoom reaches the room members only; except excludes one member; join/leave return Promise<undefined>', async () => {
    const [a, b, c] = [await peer('a.2'), await peer('b.2'), await peer('c.2')];
    const joinedA = await call(a.client, 'join', { room: 'lobby' }, ids++);
    expect(joinedA).toEqual({ promise: true, resolvedUndefined: true, rooms: ['lobby'] });
    await call(b.client, 'join', { room: 'lobby' }, ids++);
    await call(c.client, 'join', { room: 'other' }, ids++);

    const sent = await call(c.client, 'toRoom', { room: 'lobby', event: 'said', data: { text: 'to lobby' } }, ids++);
    expect(sent).toEqual({ promise: true, resolvedUndefined: true });
    await waitForPushes(a.client, 'said', 1);
    await waitForPushes(b.client, 'said', 1);

    await call(a.client, 'toRoom', { room: 'lobby', event: 'notMe', data: 1, exceptSelf: true }, ids++);
    await barrier([a, b, c], 'room');
    expect(pushesOf(a.client, 'said')).toHaveLength(1);
    expect(pushesOf(b.client, 'said')).toHaveLength(1);
    expect(pushesOf(c.client, 'said')).toHaveLength(0);
    expect(pushesOf(a.client, 'notMe')).toHaveLength(0);
    expect(pushesOf(b.client, 'notMe')).toHaveLength(1);
    expect(pushesOf(c.client, 'notMe')).toHaveLength(0);
  });

  it('a session in several rooms gets each room push once; joining twice does not double delivery', async () => {
    const a = await peer('a.3');
    await call(a.client, 'join', { room: 'r1' }, ids++);
    await call(a.client, 'join', { room: 'r1' }, ids++);
    const joined = await call(a.client, 'join', { room: 'r2' }, ids++);
    expect([...joined.rooms].sort()).toEqual(['r1', 'r2']);
    await service.toRoom('r1', 'x', 1);
    await service.toRoom('r2', 'x', 2);
    await barrier([a], 'rooms');
    expect(pushesOf(a.client, 'x').map((f) => f.data)).toEqual([1, 2]);
  });

  it('leave stops delivery to that session only', async () => {
    const [a, b] = [await peer('a.4'), await peer('b.4')];
    await call(a.client, 'join', { room: 'r' }, ids++);
    await call(b.client, 'join', { room: 'r' }, ids++);
    const left = await call(a.client, 'leave', { room: 'r' }, ids++);
    expect(left).toEqual({ promise: true, resolvedUndefined: true, rooms: [] });
    await service.toRoom('r', 'after', 1);
    await barrier([a, b], 'leave');
    expect(pushesOf(a.client, 'after')).toHaveLength(0);
    expect(pushesOf(b.client, 'after')).toHaveLength(1);

    // leaving a room one is not in, or twice, is harmless
    await expect(service.leave(a.sessionId, 'r')).resolves.toBeUndefined();
    await expect(service.leave(a.sessionId, 'never')).resolves.toBeUndefined();
  });

  it('toClient reaches exactly the addressed session; an unknown session id is not an error', async () => {
    const [a, b] = [await peer('a.5'), await peer('a.5b')];
    const sent = await call(b.client, 'toClient', { sessionId: a.sessionId, event: 'dm', data: { n: 1 } }, ids++);
    expect(sent).toEqual({ promise: true, resolvedUndefined: true });
    const [frame] = await waitForPushes(a.client, 'dm', 1);
    expect(frame.data).toEqual({ n: 1 });
    await expect(service.toClient('no-such-session', 'dm', 2)).resolves.toBeUndefined();
    await barrier([a, b], 'client');
    expect(pushesOf(a.client, 'dm')).toHaveLength(1);
    expect(pushesOf(b.client, 'dm')).toHaveLength(0);
  });

  it("toUser reaches all of that user's sessions (two connections) and nobody else", async () => {
    const u1 = await peer('alice.phone');
    const u2 = await peer('alice.laptop');
    const other = await peer('bob.phone');
    const sent = await call(other.client, 'toUser', { userId: 'alice', event: 'note', data: 'for alice' }, ids++);
    expect(sent).toEqual({ promise: true, resolvedUndefined: true });
    await waitForPushes(u1.client, 'note', 1);
    await waitForPushes(u2.client, 'note', 1);
    await barrier([u1, u2, other], 'user');
    expect(pushesOf(u1.client, 'note')).toHaveLength(1);
    expect(pushesOf(u2.client, 'note')).toHaveLength(1);
    expect(pushesOf(other.client, 'note')).toHaveLength(0);

    // once one of alice's sessions is gone, the other still gets her pushes
    u1.client.close(1000);
    await u1.client.closed();
    await expect(service.toUser('alice', 'note2', 1)).resolves.toBeUndefined();
    await waitForPushes(u2.client, 'note2', 1);
  });

  it('toUser accepts a numeric user id (principal { id: 7 })', async () => {
    const [x, y] = [await peer('7'), await peer('7')];
    await expect(service.toUser(7, 'n', 'num')).resolves.toBeUndefined();
    await expect(service.toUser('7', 'n', 'str')).resolves.toBeUndefined();
    for (const p of [x, y]) {
      const frames = await waitForPushes(p.client, 'n', 2);
      expect(frames.map((f) => f.data)).toEqual(['num', 'str']);
    }
  });

  it('a plain HTTP controller can push (outside gateways); every method returns a Promise resolving to undefined', async () => {
    const [a, b] = [await peer('carol.1'), await peer('dave.1')];
    const expectOk = (response: { status: number; body: any }): void => {
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ promise: true, resolvedUndefined: true });
    };
    expectOk(await httpJson(app.httpUrl('/bc/join'), { sessionId: a.sessionId, room: 'http-room' }));
    expect((await httpJson(app.httpUrl(`/bc/rooms/${a.sessionId}`))).body).toEqual({ rooms: ['http-room'] });
    expectOk(await httpJson(app.httpUrl('/bc/room'), { room: 'http-room', event: 'h-room', data: 1 }));
    expectOk(await httpJson(app.httpUrl('/bc/all'), { event: 'h-all', data: 2, except: b.sessionId }));
    expectOk(await httpJson(app.httpUrl('/bc/client'), { sessionId: b.sessionId, event: 'h-client', data: 3 }));
    expectOk(await httpJson(app.httpUrl('/bc/user'), { userId: 'dave', event: 'h-user', data: 4 }));
    expectOk(await httpJson(app.httpUrl('/bc/leave'), { sessionId: a.sessionId, room: 'http-room' }));
    expect((await httpJson(app.httpUrl(`/bc/rooms/${a.sessionId}`))).body).toEqual({ rooms: [] });
    expectOk(await httpJson(app.httpUrl('/bc/room'), { room: 'http-room', event: 'h-room', data: 5 }));

    await barrier([a, b], 'http');
    expect(pushesOf(a.client, 'h-room').map((f) => f.data)).toEqual([1]);
    expect(pushesOf(a.client, 'h-all').map((f) => f.data)).toEqual([2]);
    expect(pushesOf(b.client, 'h-all')).toHaveLength(0);
    expect(pushesOf(b.client, 'h-client').map((f) => f.data)).toEqual([3]);
    expect(pushesOf(a.client, 'h-client')).toHaveLength(0);
    expect(pushesOf(b.client, 'h-user').map((f) => f.data)).toEqual([4]);
    expect(pushesOf(a.client, 'h-user')).toHaveLength(0);

    // and directly from the service obtained from the app
    for (const result of [
      service.toAll('d', 1),
      service.toRoom('nobody-here', 'd', 1),
      service.toClient(a.sessionId, 'd', 1),
      service.toUser('nobody', 'd', 1),
      service.join(a.sessionId, 'z'),
      service.leave(a.sessionId, 'z'),
    ]) {
      expect(result).toBeInstanceOf(Promise);
      await expect(result).resolves.toBeUndefined();
    }
  });

  it('join of an unknown session id rejects naming it; leave of one settles; nothing changes', async () => {
    await expect(within(service.join('no-such-session', 'r'), 3000, 'join')).rejects.toThrow('no-such-session');
    await within(service.leave('no-such-session', 'r').catch(() => undefined), 3000, 'leave');
    expect(service.roomsOf('no-such-session')).toEqual([]);
  });

  it('a room name that is not well-formed text (a lone surrogate) is refused with a TypeError: nothing joined or delivered', async () => {
    const a = await peer('u1.a');
    await service.join(a.sessionId, 'r');
    await expect(service.join(a.sessionId, '\ud800')).rejects.toThrow(TypeError);
    expect(service.roomsOf(a.sessionId)).toEqual(['r']);
    await expect(service.toRoom('\udc00x', 'lone', 1)).rejects.toThrow('a room name must be well-formed text');
    await service.toRoom('r', 'fine', 2);
    await barrier([a], 'lone');
    expect(pushesOf(a.client, 'lone')).toEqual([]);
    expect(pushesOf(a.client, 'fine').map((f) => f.data)).toEqual([2]);
  });

  it('arguments of the wrong type reject with a TypeError (never throw at the caller), and nothing is joined or delivered', async () => {
    const a = await peer('u1.types');
    const misuse = service as unknown as Record<string, (...args: unknown[]) => Promise<void>>;
    const calls: Array<() => Promise<void>> = [
      () => misuse.join(a.sessionId, 42),
      () => misuse.join(a.sessionId, { id: 1 }),
      () => misuse.leave(a.sessionId, null),
      () => misuse.toRoom(42, 'typed', 1),
      () => misuse.toRoom(undefined, 'typed', 1),
      () => misuse.toUser(Object.create(null), 'typed', 1),
      () => misuse.toUser({}, 'typed', 1),
    ];
    for (const call of calls) {
      let returned: Promise<void> | undefined;
      expect(() => (returned = call())).not.toThrow();
      await expect(returned).rejects.toThrow(TypeError);
    }
    expect(service.roomsOf(a.sessionId)).toEqual([]);
    await service.toAll('typed-all', 2, null as never); // `options` may be null
    await barrier([a], 'types');
    expect(pushesOf(a.client, 'typed')).toEqual([]);
    expect(pushesOf(a.client, 'typed-all').map((f) => f.data)).toEqual([2]);
  });

  it('a closed session leaves its rooms: roomsOf empties, pushes to the room still work for the others', async () => {
    const [a, b] = [await peer('erin.1'), await peer('frank.1')];
    await call(a.client, 'join', { room: 'cleanup' }, ids++);
    await call(a.client, 'join', { room: 'cleanup-solo' }, ids++);
    await call(b.client, 'join', { room: 'cleanup' }, ids++);
    expect(service.roomsOf(a.sessionId).sort()).toEqual(['cleanup', 'cleanup-solo']);

    a.client.close(1000);
    await a.client.closed();
    await sleep(50);
    expect(service.roomsOf(a.sessionId)).toEqual([]);
    await expect(service.toRoom('cleanup', 'after-close', 1)).resolves.toBeUndefined();
    await expect(service.toRoom('cleanup-solo', 'after-close', 2)).resolves.toBeUndefined();
    await expect(service.toClient(a.sessionId, 'after-close', 3)).resolves.toBeUndefined();
    await expect(service.toUser('erin', 'after-close', 4)).resolves.toBeUndefined();
    await barrier([b], 'cleanup');
    expect(pushesOf(b.client, 'after-close').map((f) => f.data)).toEqual([1]);

    // a new member of the room gets only what is pushed after it joined
    const c = await peer('gina.1');
    await call(c.client, 'join', { room: 'cleanup' }, ids++);
    await service.toRoom('cleanup', 'later', 5);
    await waitForPushes(c.client, 'later', 1);
    await waitForPushes(b.client, 'later', 1);
    expect(pushesOf(c.client, 'after-close')).toHaveLength(0);
  });

  it('pushes carry seq 1, 2, 3 … per session, whichever method sent them', async () => {
    const [a, b] = [await peer('hank.1'), await peer('ivy.1')];
    await call(a.client, 'join', { room: 'seq' }, ids++);
    await service.toAll('s', 'all-1');
    await service.toRoom('seq', 's', 'room-1');
    await service.toClient(a.sessionId, 's', 'client-1');
    await service.toUser('ivy', 's', 'user-1');
    await service.toAll('s', 'all-2');
    await service.toClient(b.sessionId, 's', 'client-2');
    await waitForPushes(a.client, 's', 4);
    await waitForPushes(b.client, 's', 4);
    expect(pushesOf(a.client, 's').map((f) => f.data)).toEqual(['all-1', 'room-1', 'client-1', 'all-2']);
    expect(pushesOf(b.client, 's').map((f) => f.data)).toEqual(['all-1', 'user-1', 'all-2', 'client-2']);
    for (const p of [a, b]) {
      const seqs = allPushes(p.client).map((f) => f.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
    // replies and $ready carry no seq
    for (const frame of a.client.frames.filter((f) => f.ref !== undefined)) expect(frame.seq).toBeUndefined();
  });
});
