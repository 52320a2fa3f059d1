import { UseFilters, UseGuards } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import {
  ReliableGateway,
  WsAuthGuard,
  WsErrorFilter,
  WsPrincipal,
  type ReliableWsOptions,
} from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { captureLogger, createApp, startAppWithOptions } from './support/app-with-logger.js';
import { TestClient, type Frame } from './support/ws-client.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Principals and the application's verify

const PRINCIPALS: Record<string, object> = {
  alice: { id: 1, name: 'Alice', profile: { role: 'admin' } },
  bob: { id: 2, name: 'Bob', profile: { role: 'user' } },
};

/** How long a `slow*` token takes to verify. */
const SLOW_MS = 800;

/**
 * - `alice`, `bob`: known principals
 * - `slow…`: verified after SLOW_MS, principal `{ name: <token> }`
 * - `throw…`: verify throws an error whose message contains the token
 * - `exp:<ms>`: a principal with a JWT-style `exp` (seconds) <ms> from now
 * - `until:<ms>`: a principal with `until` (ms since the epoch) <ms> from now and an `exp` in the past
 * - anything else: null
 */
async function verify(token: string, request: IncomingMessage): Promise<object | null> {
  if (!request || typeof request.headers !== 'object') throw new Error('verify got no request');
  if (Object.hasOwn(PRINCIPALS, token)) return PRINCIPALS[token]!;
  if (token.startsWith('slow')) {
    await sleep(SLOW_MS);
    return { id: token, name: token };
  }
  if (token.startsWith('throw')) throw new Error(`verify failed for token ${token}`);
  const exp = /^exp:(\d+)$/.exec(token);
  if (exp) return { id: token, name: token, exp: (Date.now() + Number(exp[1])) / 1000 };
  const until = /^until:(\d+)$/.exec(token);
  if (until) return { id: token, name: token, until: Date.now() + Number(until[1]), exp: 1 };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Gateways

@ReliableGateway({ path: '/ws' })
class AuthGateway {
  @SubscribeMessage('whoami')
  whoami(@WsPrincipal() principal: unknown) {
    return principal ?? null;
  }

  @SubscribeMessage('name')
  name(@WsPrincipal('name') name: unknown) {
    return { name: name ?? null };
  }

  @SubscribeMessage('role')
  role(@WsPrincipal('profile.role') role: unknown) {
    return { role: role ?? null };
  }

  @SubscribeMessage('deep-missing')
  deepMissing(@WsPrincipal('profile.nope.deeper') value: unknown) {
    return { missing: value === undefined };
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown, @WsPrincipal('name') name: unknown) {
    return { data, name };
  }
}

@WebSocketGateway({ path: '/plain' })
@UseGuards(WsAuthGuard)
@UseFilters(WsErrorFilter)
class PlainGuardedGateway {
  @SubscribeMessage('plain-who')
  who(@WsPrincipal('name') name: unknown) {
    return { name: name ?? null };
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const READY = (f: Frame): boolean => f.event === '$ready';

/** Connects and waits for the socket to open (not for `$ready`). */
async function opened(url: string, protocols?: string | string[], options?: ConstructorParameters<typeof TestClient>[2]) {
  const client = new TestClient(url, protocols, options);
  await client.open();
  return client;
}

/** Connects a plain client and expects `$ready` at once, without sending `$hello`. */
function readyAtOnce(url: string, options?: ConstructorParameters<typeof TestClient>[2]): Promise<TestClient> {
  return TestClient.ready(url, undefined, options);
}

/** The connection is alive: a `$ping` is answered with a `$pong` carrying the same data. */
async function expectAlive(client: TestClient, tag: string): Promise<void> {
  expect(client.raw.readyState).toBe(WebSocket.OPEN);
  client.send({ event: '$ping', data: tag });
  expect(await client.next((f) => f.event === '$pong' && f.data === tag)).toEqual({ event: '$pong', data: tag });
}

/** Every close reason and frame the client saw, as one string (for "never contains the token"). */
function everything(client: TestClient, closed?: { code: number; reason: string }): string {
  return JSON.stringify({ frames: client.frames, closed });
}

function baseAuth(extra: Partial<NonNullable<ReliableWsOptions['auth']>> = {}): ReliableWsOptions {
  return { auth: { verify, cookieName: 'sid', ...extra } } as ReliableWsOptions;
}

const opened4001 = { code: 4001, reason: 'unauthorized' };

// ---------------------------------------------------------------------------------------------

describe('auth: handshake tokens (mode "any", the default)', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  const track = <C extends TestClient>(c: C): C => (clients.push(c), c);
  beforeAll(async () => {
    t = await startApp({ ...baseAuth({ timeoutMs: 300 }) }, [AuthGateway, PlainGuardedGateway]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  afterAll(() => t.close());

  it('accepts ?token=, and handlers see the principal, a property and a nested property', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    expect(c.raw.protocol).toBe('');
    expect(await c.request('whoami', null, 1)).toEqual({ event: 'whoami', data: PRINCIPALS.alice, ref: 1 });
    expect(await c.request('name', null, 2)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 2 });
    expect(await c.request('role', null, 3)).toEqual({ event: 'role', data: { role: 'admin' }, ref: 3 });
    expect(await c.request('deep-missing', null, 4)).toEqual({ event: 'deep-missing', data: { missing: true }, ref: 4 });
  });

  it('accepts Authorization: Bearer', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws'), { headers: { Authorization: 'Bearer bob' } }));
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Bob' }, ref: 1 });
    expect(await c.request('role', null, 2)).toEqual({ event: 'role', data: { role: 'user' }, ref: 2 });
  });

  it('accepts the cookie named by cookieName (and ignores other cookies)', async () => {
    const c = track(
      await readyAtOnce(t.wsUrl('/ws'), { headers: { Cookie: 'theme=dark; token=bob; sid=alice; other=1' } }),
    );
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
  });

  it('the $ready of a handshake-authenticated plain client is a fresh session', async () => {
    const c = track(new TestClient(t.wsUrl('/ws?token=alice')));
    const ready = await c.next(READY);
    expect(ready.data).toMatchObject({ resumed: false, missed: false, lastId: 0 });
    expect(typeof ready.data.sessionId).toBe('string');
  });

  it('an invalid handshake token: the upgrade succeeds, then close 4001 "unauthorized"', async () => {
    const c = track(new TestClient(t.wsUrl('/ws?token=nobody')));
    await c.open(); // the open event fires: a browser can tell this from a network failure
    expect(await c.closed()).toEqual(opened4001);
    expect(c.frames.some(READY)).toBe(false);
  });

  it('an invalid Bearer token and an invalid cookie are rejected the same way', async () => {
    const bearer = track(new TestClient(t.wsUrl('/ws'), undefined, { headers: { Authorization: 'Bearer nobody' } }));
    const cookie = track(new TestClient(t.wsUrl('/ws'), undefined, { headers: { Cookie: 'sid=nobody' } }));
    await bearer.open();
    await cookie.open();
    expect(await bearer.closed()).toEqual(opened4001);
    expect(await cookie.closed()).toEqual(opened4001);
  });

  it('with subprotocol rws.v1 and a handshake token, the client still sends $hello (no token) and gets $ready', async () => {
    const c = track(await opened(t.wsUrl('/ws?token=alice'), 'rws.v1'));
    expect(c.raw.protocol).toBe('rws.v1');
    // no $ready before $hello: the $pong is the first frame the server sends
    c.send({ event: '$ping', data: 'first' });
    expect(await c.next()).toEqual({ event: '$pong', data: 'first' });
    c.send({ event: '$hello', data: {} });
    expect((await c.next(READY)).data).toMatchObject({ resumed: false, missed: false });
    expect(await c.request('whoami', null, 1)).toEqual({ event: 'whoami', data: PRINCIPALS.alice, ref: 1 });
  });

  it('a plain client without a token must send $hello {token} first; $ping before it is answered', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: '$ping', data: { n: 1 } });
    expect(await c.next()).toEqual({ event: '$pong', data: { n: 1 } });
    c.send({ event: '$hello', data: { token: 'bob' } });
    await c.next(READY);
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Bob' }, ref: 1 });
  });

  it('a plain client without a token that sends nothing is closed 4008 after auth.timeoutMs', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    const closed = await c.closed(5000);
    expect(closed.code).toBe(4008);
    expect(c.frames.some(READY)).toBe(false);
  });

  it('a handshake verify slower than auth.timeoutMs: the upgrade succeeds and is closed 4008 when the deadline passes', async () => {
    const started = Date.now();
    const c = track(new TestClient(t.wsUrl('/ws?token=slow-handshake')));
    await c.open(); // only once the deadline passed: the upgrade waits for verify
    expect((await c.closed(5000)).code).toBe(4008);
    expect(Date.now() - started).toBeLessThan(SLOW_MS); // not when verify answered
    expect(c.frames.some(READY)).toBe(false);
  });

  it('$hello without a token and no handshake principal → 4001', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: '$hello', data: {} });
    expect(await c.closed()).toEqual(opened4001);
  });

  it('$hello with a bad token → 4001; with a non-string token → 4001', async () => {
    const bad = track(await opened(t.wsUrl('/ws')));
    bad.send({ event: '$hello', data: { token: 'nobody' } });
    expect(await bad.closed()).toEqual(opened4001);
    const weird = track(await opened(t.wsUrl('/ws')));
    weird.send({ event: '$hello', data: { token: { alice: true } } });
    expect((await weird.closed()).code).toBe(4001);
  });

  it('an application message before $hello → 4001', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: 'whoami', id: 1 });
    expect((await c.closed()).code).toBe(4001);
    expect(c.frames.some((f) => f.ref === 1)).toBe(false);
  });

  it('$auth before $hello → 4001', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: '$auth', data: { token: 'alice' }, id: 1 });
    expect((await c.closed()).code).toBe(4001);
  });

  it('a second $hello on a live session is a BAD_MESSAGE and keeps the principal', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    c.send({ event: '$hello', data: { token: 'bob' }, id: 7 });
    expect((await c.next((f) => f.event === '$error')).data).toMatchObject({ code: 'BAD_MESSAGE', ref: 7 });
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
  });

  it('$auth {token} with an id → $ack {ref}, and handlers see the new principal', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
    expect(await c.request('$auth', { token: 'bob' }, 'auth-1')).toEqual({ event: '$ack', data: { ref: 'auth-1' } });
    expect(await c.request('whoami', null, 2)).toEqual({ event: 'whoami', data: PRINCIPALS.bob, ref: 2 });
    expect(await c.request('role', null, 3)).toEqual({ event: 'role', data: { role: 'user' }, ref: 3 });
  });

  it('$auth with a bad token → close 4001', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    c.send({ event: '$auth', data: { token: 'nobody' }, id: 1 });
    expect(await c.closed()).toEqual(opened4001);
    expect(c.frames.some((f) => f.event === '$ack')).toBe(false);
  });

  it('$auth without a token → close 4001', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    c.send({ event: '$auth', data: {}, id: 1 });
    expect((await c.closed()).code).toBe(4001);
  });

  it('a verify that throws → 4001 (handshake and $hello), and the app keeps working', async () => {
    const atHandshake = track(new TestClient(t.wsUrl('/ws?token=throw-1')));
    await atHandshake.open();
    expect(await atHandshake.closed()).toEqual(opened4001);

    const inHello = track(await opened(t.wsUrl('/ws')));
    inHello.send({ event: '$hello', data: { token: 'throw-2' } });
    expect(await inHello.closed()).toEqual(opened4001);

    const live = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    live.send({ event: '$auth', data: { token: 'throw-3' }, id: 1 });
    expect(await live.closed()).toEqual(opened4001);

    const other = track(await readyAtOnce(t.wsUrl('/ws?token=bob')));
    expect(await other.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Bob' }, ref: 1 });
  });

  it('WsAuthGuard on a plain @WebSocketGateway lets an authenticated socket through', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/plain?token=alice')));
    expect(await c.request('plain-who', null, 1)).toEqual({ event: 'plain-who', data: { name: 'Alice' }, ref: 1 });
    const viaHello = track(await opened(t.wsUrl('/plain')));
    viaHello.send({ event: '$hello', data: { token: 'bob' } });
    await viaHello.next(READY);
    expect(await viaHello.request('plain-who', null, 2)).toEqual({ event: 'plain-who', data: { name: 'Bob' }, ref: 2 });
  });
});

describe('auth: mode "handshake"', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  const track = <C extends TestClient>(c: C): C => (clients.push(c), c);
  beforeAll(async () => {
    t = await startApp(baseAuth({ mode: 'handshake', timeoutMs: 300 }), [AuthGateway]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  afterAll(() => t.close());

  it.each([
    ['?token=', '/ws?token=alice', undefined],
    ['Authorization: Bearer', '/ws', { headers: { Authorization: 'Bearer alice' } }],
    ['cookie', '/ws', { headers: { Cookie: 'a=b; sid=alice' } }],
  ])('accepts %s and gives $ready at once', async (_name, path, options) => {
    const c = track(await readyAtOnce(t.wsUrl(path), options));
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
    expect(await c.request('role', null, 2)).toEqual({ event: 'role', data: { role: 'admin' }, ref: 2 });
  });

  it('a missing token → the upgrade succeeds, then 4001 "unauthorized"', async () => {
    const c = track(new TestClient(t.wsUrl('/ws')));
    await c.open();
    expect(await c.closed()).toEqual(opened4001);
  });

  it('a missing token with rws.v1 → 4001 too (a $hello token does not count in this mode)', async () => {
    const c = track(new TestClient(t.wsUrl('/ws'), 'rws.v1'));
    await c.open();
    c.send({ event: '$hello', data: { token: 'alice' } });
    expect((await c.closed()).code).toBe(4001);
    expect(c.frames.some(READY)).toBe(false);
  });

  it('an invalid token → 4001', async () => {
    const c = track(new TestClient(t.wsUrl('/ws?token=nobody')));
    await c.open();
    expect(await c.closed()).toEqual(opened4001);
  });

  it('rws.v1 with a valid handshake token sends $hello and gets the handshake principal', async () => {
    const c = track(await opened(t.wsUrl('/ws'), 'rws.v1', { headers: { Authorization: 'Bearer bob' } }));
    c.send({ event: '$hello', data: {} });
    await c.next(READY);
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Bob' }, ref: 1 });
  });
});

describe('auth: mode "first-message"', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  const track = <C extends TestClient>(c: C): C => (clients.push(c), c);
  beforeAll(async () => {
    t = await startApp(baseAuth({ mode: 'first-message', timeoutMs: 300 }), [AuthGateway]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  afterAll(() => t.close());

  it('$hello {token} → $ready, and handlers see the principal', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: '$hello', data: { token: 'alice' } });
    const ready = await c.next(READY);
    expect(ready.data).toMatchObject({ resumed: false, missed: false, lastId: 0 });
    expect(await c.request('whoami', null, 1)).toEqual({ event: 'whoami', data: PRINCIPALS.alice, ref: 1 });
  });

  it('a handshake token is ignored: no $ready at once, $hello is still required', async () => {
    const c = track(await opened(t.wsUrl('/ws?token=alice'), undefined, { headers: { Authorization: 'Bearer alice' } }));
    c.send({ event: '$ping', data: 'p' });
    expect(await c.next()).toEqual({ event: '$pong', data: 'p' }); // nothing (no $ready) came before
    c.send({ event: '$hello', data: { token: 'bob' } });
    await c.next(READY);
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Bob' }, ref: 1 });
  });

  it('a handshake token alone does not authenticate: $hello without a token → 4001', async () => {
    const c = track(await opened(t.wsUrl('/ws?token=alice')));
    c.send({ event: '$hello', data: {} });
    expect(await c.closed()).toEqual(opened4001);
  });

  it('a handshake token alone and no $hello → 4008 after timeoutMs', async () => {
    const c = track(await opened(t.wsUrl('/ws?token=alice')));
    expect((await c.closed(5000)).code).toBe(4008);
    expect(c.frames.some(READY)).toBe(false);
  });

  it('an invalid handshake token is not checked (no 4001): the client can still authenticate with $hello', async () => {
    const c = track(await opened(t.wsUrl('/ws?token=nobody')));
    c.send({ event: '$hello', data: { token: 'alice' } });
    await c.next(READY);
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
  });

  it('$hello with a bad token → 4001', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: '$hello', data: { token: 'nobody' } });
    expect(await c.closed()).toEqual(opened4001);
  });

  it('no $hello within auth.timeoutMs → 4008 (plain and rws.v1)', async () => {
    const plain = track(await opened(t.wsUrl('/ws')));
    const v1 = track(await opened(t.wsUrl('/ws'), 'rws.v1'));
    expect((await plain.closed(5000)).code).toBe(4008);
    expect((await v1.closed(5000)).code).toBe(4008);
  });

  it('an application message before $hello → 4001', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    c.send({ event: 'echo', data: 1, id: 1 });
    expect((await c.closed()).code).toBe(4001);
    expect(c.frames.some((f) => f.ref === 1)).toBe(false);
  });

  it('$ping before $hello → $pong, then $hello still works', async () => {
    const c = track(await opened(t.wsUrl('/ws'), 'rws.v1'));
    c.send({ event: '$ping', data: 42 });
    expect(await c.next()).toEqual({ event: '$pong', data: 42 });
    c.send({ event: '$hello', data: { token: 'alice' } });
    await c.next(READY);
    expect(await c.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
  });

  it('messages pipelined right after $hello are handled after the session starts, in order, with the principal', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    const order: Frame[] = [];
    c.raw.on('message', (data) => order.push(JSON.parse(data.toString()) as Frame));
    c.send({ event: '$hello', data: { token: 'alice' } });
    for (let id = 1; id <= 5; id++) c.send({ event: 'echo', data: id, id });
    await c.next((f) => f.ref === 5);
    expect(order.map((f) => f.event)).toEqual(['$ready', 'echo', 'echo', 'echo', 'echo', 'echo']);
    expect(order.slice(1)).toEqual([1, 2, 3, 4, 5].map((id) => ({ event: 'echo', data: { data: id, name: 'Alice' }, ref: id })));
  });
});

describe('auth: slow verify and pipelining', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  const track = <C extends TestClient>(c: C): C => (clients.push(c), c);
  beforeAll(async () => {
    // default auth.timeoutMs (5000) leaves room for SLOW_MS
    t = await startApp(baseAuth(), [AuthGateway]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  afterAll(() => t.close());

  it('a slow handshake verify does not hold up other connections', async () => {
    const slow = track(new TestClient(t.wsUrl('/ws?token=slow-hs')));
    const fast = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    expect(await fast.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Alice' }, ref: 1 });
    expect(slow.frames.some(READY)).toBe(false); // still being verified
    await slow.next(READY, 5000);
    expect(await slow.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'slow-hs' }, ref: 1 });
  });

  it('a slow $hello verify does not hold up other connections', async () => {
    const slow = track(await opened(t.wsUrl('/ws')));
    slow.send({ event: '$hello', data: { token: 'slow-hello' } });
    const fast = track(await opened(t.wsUrl('/ws')));
    fast.send({ event: '$hello', data: { token: 'bob' } });
    await fast.next(READY);
    expect(await fast.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'Bob' }, ref: 1 });
    expect(slow.frames.some(READY)).toBe(false);
    await slow.next(READY, 5000);
    expect(await slow.request('name', null, 1)).toEqual({ event: 'name', data: { name: 'slow-hello' }, ref: 1 });
  });

  it('messages pipelined behind a slow $hello wait for it and are handled in order with the principal', async () => {
    const c = track(await opened(t.wsUrl('/ws')));
    const order: Frame[] = [];
    c.raw.on('message', (data) => order.push(JSON.parse(data.toString()) as Frame));
    c.send({ event: '$hello', data: { token: 'slow-pipe' } });
    for (let id = 1; id <= 3; id++) c.send({ event: 'echo', data: id, id });
    await c.next((f) => f.ref === 3, 5000);
    expect(order.map((f) => f.event)).toEqual(['$ready', 'echo', 'echo', 'echo']);
    expect(order.slice(1).map((f) => [f.ref, f.data])).toEqual([
      [1, { data: 1, name: 'slow-pipe' }],
      [2, { data: 2, name: 'slow-pipe' }],
      [3, { data: 3, name: 'slow-pipe' }],
    ]);
  });

  it('messages pipelined behind $auth see the new principal', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    c.send({ event: '$auth', data: { token: 'slow-auth' }, id: 'a1' });
    c.send({ event: 'name', id: 1 });
    expect(await c.next((f) => f.data?.ref === 'a1', 5000)).toEqual({ event: '$ack', data: { ref: 'a1' } });
    expect(await c.next((f) => f.ref === 1)).toEqual({ event: 'name', data: { name: 'slow-auth' }, ref: 1 });
  });

  it('no message is lost when two pipelined $auth follow each other with messages in between', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=alice')));
    c.send({ event: '$auth', data: { token: 'slow-1' }, id: 'a1' });
    c.send({ event: 'name', id: 1 });
    c.send({ event: '$auth', data: { token: 'slow-2' }, id: 'a2' });
    c.send({ event: 'name', id: 2 });
    expect(await c.next((f) => f.data?.ref === 'a1', 5000)).toEqual({ event: '$ack', data: { ref: 'a1' } });
    expect(await c.next((f) => f.ref === 1)).toEqual({ event: 'name', data: { name: 'slow-1' }, ref: 1 });
    expect(await c.next((f) => f.data?.ref === 'a2', 5000)).toEqual({ event: '$ack', data: { ref: 'a2' } });
    expect(await c.next((f) => f.ref === 2, 5000)).toEqual({ event: 'name', data: { name: 'slow-2' }, ref: 2 });
  });
});

describe('auth: expiry', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  const track = <C extends TestClient>(c: C): C => (clients.push(c), c);
  beforeAll(async () => {
    t = await startApp(baseAuth(), [AuthGateway]);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  afterAll(() => t.close());

  it('a principal with exp ~1 s ahead is closed 4001 once it passes, not before', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=exp:1200')));
    await expectAlive(c, 'before-expiry');
    const closed = await c.closed(5000);
    expect(closed.code).toBe(4001);
    expect(closed.reason).not.toContain('exp:');
  });

  it('expiry also applies to a principal from $hello', async () => {
    const c = track(await opened(t.wsUrl('/ws'), 'rws.v1'));
    c.send({ event: '$hello', data: { token: 'exp:800' } });
    await c.next(READY);
    expect((await c.closed(5000)).code).toBe(4001);
  });

  it('refreshing with $auth to a later exp keeps the connection open past the first expiry', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=exp:1000')));
    expect(await c.request('$auth', { token: 'exp:4000' }, 1)).toEqual({ event: '$ack', data: { ref: 1 } });
    await sleep(1600); // well past the first exp
    await expectAlive(c, 'after-first-expiry');
    expect(await c.request('name', null, 2)).toEqual({ event: 'name', data: { name: 'exp:4000' }, ref: 2 });
    // the refreshed credentials expire in turn
    expect((await c.closed(6000)).code).toBe(4001);
  });

  it('$auth with credentials already expired is closed 4001, not also answered $ack', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=exp:60000')));
    c.send({ event: '$auth', data: { token: 'exp:0' }, id: 1 });
    const closed = await c.closed(5000);
    expect(closed).toMatchObject({ code: 4001, reason: 'credentials expired' });
    expect(c.frames.filter((f) => f.event === '$ack')).toEqual([]);
  });

  it('refreshing with $auth to a principal without exp removes the deadline', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=exp:700')));
    expect(await c.request('$auth', { token: 'bob' }, 1)).toEqual({ event: '$ack', data: { ref: 1 } });
    await sleep(1200);
    await expectAlive(c, 'no-deadline');
  });
});

describe('auth: custom expiresAt', () => {
  let t: TestApp;
  const clients: TestClient[] = [];
  const track = <C extends TestClient>(c: C): C => (clients.push(c), c);
  beforeAll(async () => {
    t = await startApp(
      baseAuth({ expiresAt: (p: { until?: number }) => (p.until === undefined ? undefined : new Date(p.until)) }),
      [AuthGateway],
    );
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });
  afterAll(() => t.close());

  it('closes 4001 at the time expiresAt returns (a Date)', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=until:900')));
    // `exp: 1` (long past) is ignored: the custom expiresAt replaces the default
    await expectAlive(c, 'custom');
    expect((await c.closed(5000)).code).toBe(4001);
  });

  it('a principal for which expiresAt returns undefined never expires, even with an old exp claim', async () => {
    const c = track(await readyAtOnce(t.wsUrl('/ws?token=exp:300')));
    await sleep(900);
    await expectAlive(c, 'no-expiry');
  });
});

describe('auth: not configured', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({}, [AuthGateway, PlainGuardedGateway]);
  });
  afterAll(() => t.close());

  it('$auth → $error BAD_MESSAGE, connection stays open', async () => {
    const c = await readyAtOnce(t.wsUrl('/ws?token=alice'));
    const answer = await c.request('$auth', { token: 'alice' }, 9);
    expect(answer.event).toBe('$error');
    expect(answer.data).toMatchObject({ code: 'BAD_MESSAGE', ref: 9 });
    await expectAlive(c, 'no-auth');
    expect(await c.request('whoami', null, 1)).toEqual({ event: 'whoami', data: null, ref: 1 });
    c.terminate();
  });

  it('WsAuthGuard lets everything through when auth is off', async () => {
    const c = await readyAtOnce(t.wsUrl('/plain'));
    expect(await c.request('plain-who', null, 1)).toEqual({ event: 'plain-who', data: { name: null }, ref: 1 });
    c.terminate();
  });
});

describe('auth: redaction of tokens in logs and on the wire', () => {
  const logger = captureLogger();
  let t: TestApp;
  beforeAll(async () => {
    t = await startAppWithOptions(baseAuth({ timeoutMs: 2000 }), [AuthGateway], { logger });
  });
  afterAll(() => t.close());

  it('no log line, $error or close reason contains the token', async () => {
    const seen: string[] = [];

    const rejected = new TestClient(t.wsUrl('/ws?token=SECRET123'));
    await rejected.open();
    const c1 = await rejected.closed();
    expect(c1).toEqual(opened4001);
    seen.push(everything(rejected, c1));

    const throwing = new TestClient(t.wsUrl('/ws?x=1&token=throw-SECRET123&y=2'));
    await throwing.open();
    const c2 = await throwing.closed();
    expect(c2).toEqual(opened4001);
    seen.push(everything(throwing, c2));

    const bearer = new TestClient(t.wsUrl('/ws'), undefined, { headers: { Authorization: 'Bearer SECRET123' } });
    await bearer.open();
    const c3 = await bearer.closed();
    seen.push(everything(bearer, c3));

    const hello = await opened(t.wsUrl('/ws'));
    hello.send({ event: '$hello', data: { token: 'throw-SECRET123' } });
    const c4 = await hello.closed();
    expect(c4).toEqual(opened4001);
    seen.push(everything(hello, c4));

    const live = await readyAtOnce(t.wsUrl('/ws?token=alice'));
    live.send({ event: '$hello', data: { token: 'SECRET123' }, id: 1 }); // $error: session already started
    expect((await live.next((f) => f.event === '$error')).data.code).toBe('BAD_MESSAGE');
    live.send({ event: '$auth', data: { token: 'throw-SECRET123' }, id: 2 });
    const c5 = await live.closed();
    expect(c5).toEqual(opened4001);
    seen.push(everything(live, c5));

    for (const text of seen) expect(text).not.toContain('SECRET123');

    const lines = logger.lines;
    expect(lines.some((line) => line.includes('auth.verify threw'))).toBe(true); // the capture works
    expect(lines.some((line) => line.includes('token=[redacted]'))).toBe(true);
    const leaking = lines.filter((line) => line.includes('SECRET123'));
    expect(leaking).toEqual([]);
  });
});

describe('auth: options checked at startup', () => {
  it.each([
    ['auth.verify', { auth: { verify: 'x' } }],
    ['auth.mode', { auth: { verify, mode: 'cookie' } }],
    ['auth.timeoutMs', { auth: { verify, timeoutMs: 0 } }],
  ])('a bad %s stops bootstrap with an error naming it', async (option, options) => {
    let app: Awaited<ReturnType<typeof createApp>> | undefined;
    const created = createApp(options as unknown as ReliableWsOptions, [AuthGateway], {
      logger: false,
      abortOnError: false,
    }).then((a) => (app = a));
    await expect(created).rejects.toThrow(option);
    await app?.close();
  });

  it('the error also names the bad value', async () => {
    await expect(
      createApp({ auth: { verify, mode: 'cookie' } } as unknown as ReliableWsOptions, [], {
        logger: false,
        abortOnError: false,
      }),
    ).rejects.toThrow(/auth\.mode.*cookie/);
  });
});
