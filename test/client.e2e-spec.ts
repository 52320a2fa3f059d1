/**
 * ReliableWsClient (lib/client) end to end: real Nest apps on port 0, the client on `ws`, and a
 * TCP proxy (test/support/tcp-proxy.ts) for network faults. Every wait is bounded.
 */
import { ForbiddenException } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage, type OnGatewayConnection } from '@nestjs/websockets';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { WebSocket } from 'ws';
import {
  QueueFullError,
  ReliableWsClient,
  RequestError,
  type ClientSystemEvents,
  type ReliableWsClientOptions,
} from '../lib/client/index.js';
import { ReliableGateway, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { deadPort, startAppAt } from './support/app-at-port.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';

const here = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------------------------
// Server side: one gateway that records what it handled

const server = {
  /** `note` texts in the order the handler ran. */
  notes: [] as string[],
  /** Close codes the server saw, one per connection, in order. */
  closeCodes: [] as number[],
  /** Connections that got a session (fresh or resumed). */
  connections: 0,
  /** `hang` requests taken. */
  hangs: 0,
  /** Connections with a session not closed yet (not reset between tests). */
  open: 0,
  reset(): void {
    this.notes = [];
    this.closeCodes = [];
    this.connections = 0;
    this.hangs = 0;
  },
};

@ReliableGateway({ path: '/ws' })
class ClientTestGateway implements OnGatewayConnection {
  handleConnection(socket: ReliableSocket): void {
    server.connections++;
    server.open++;
    socket.onClose((code) => {
      server.open--;
      server.closeCodes.push(code);
    });
  }

  @SubscribeMessage('note')
  note(@MessageBody() data: { text: string }): void {
    server.notes.push(data.text);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }

  @SubscribeMessage('named')
  named(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'named-reply', data };
  }

  @SubscribeMessage('forbidden')
  forbidden(): never {
    throw new ForbiddenException('not for you');
  }

  @SubscribeMessage('boom')
  boom(): never {
    throw new Error('secret internals');
  }

  /** Never answers (within any test). */
  @SubscribeMessage('hang')
  hang(): Promise<never> {
    server.hangs++;
    return new Promise<never>(() => undefined);
  }

  /** Closes this connection with the given code. */
  @SubscribeMessage('kick')
  kick(@MessageBody() data: { code: number }, @ConnectedSocket() socket: ReliableSocket): void {
    socket.close(data.code);
  }

  /** Pushes `tick` every 50 ms to this connection until it closes. */
  @SubscribeMessage('stream')
  stream(@ConnectedSocket() socket: ReliableSocket): void {
    let n = 0;
    const timer = setInterval(() => {
      if (socket.isOpen) socket.send('tick', { n: ++n });
    }, 50);
    socket.onClose(() => clearInterval(timer));
  }
}

// ---------------------------------------------------------------------------------------------
// Client side helpers

type Client = ReliableWsClient;
const clients: Client[] = [];
const proxies: TcpProxy[] = [];
const extraApps: TestApp[] = [];

/** Small reconnect values so that tests run in well under a second per reconnect. */
const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0.2, maxRetries: 1000 };

function makeClient(url: string, options: ReliableWsClientOptions = {}): Client {
  const client = new ReliableWsClient(url, {
    WebSocket,
    reconnect: FAST_RECONNECT,
    ...options,
  });
  clients.push(client);
  return client;
}

/** Records every system event with the time it happened. */
function record(client: Client) {
  const names = ['$state', '$ready', '$reconnecting', '$close', '$failed', '$error'] as const;
  const events: Array<{ name: (typeof names)[number]; data: any; at: number }> = [];
  for (const name of names) client.on(name, (data: unknown) => events.push({ name, data, at: Date.now() }));
  return {
    events,
    of: <K extends (typeof names)[number]>(name: K): Array<ClientSystemEvents[K]> =>
      events.filter((e) => e.name === name).map((e) => e.data as ClientSystemEvents[K]),
  };
}

/** Resolves with the next emission of `name` (matching `predicate`), within `timeoutMs`. */
function next<K extends keyof ClientSystemEvents>(
  client: Client,
  name: K,
  timeoutMs = 5000,
  predicate: (data: ClientSystemEvents[K]) => boolean = () => true,
): Promise<ClientSystemEvents[K]> {
  let off: () => void = () => undefined;
  const seen = new Promise<ClientSystemEvents[K]>((resolve) => {
    off = client.on(name, (data: ClientSystemEvents[K]) => {
      if (!predicate(data)) return;
      off();
      resolve(data);
    });
  });
  const result = within(seen, timeoutMs, `client event ${name}`).finally(() => off());
  result.catch(() => undefined); // a wait set up early and abandoned by a failed test is no unhandled rejection
  return result;
}

/** The rejection of `promise` (fails the test when it resolves or does not settle in time). */
async function rejection(promise: Promise<unknown>, timeoutMs = 5000): Promise<any> {
  const outcome = await within(
    promise.then(
      (value) => ({ resolved: value }),
      (error: unknown) => ({ error }),
    ),
    timeoutMs,
    'request',
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.resolved)}`);
  return outcome.error;
}

const APP_OPTIONS: ReliableWsOptions = {};

let t: TestApp;

beforeAll(async () => {
  t = await startApp(APP_OPTIONS, [ClientTestGateway]);
});

afterAll(async () => {
  await t.close();
});

beforeEach(() => server.reset());

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  await Promise.all(extraApps.splice(0).map((app) => app.close()));
  // the next test starts once the server saw every connection of this one close
  await waitUntil(() => server.open === 0, { timeoutMs: 5000, what: 'all server connections closed' });
});

// ---------------------------------------------------------------------------------------------

describe('ReliableWsClient: connecting and the offline queue', () => {
  it('starts in "connecting", then emits $state "open" and $ready { sessionId, resumed: false, missed: false }', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    const seen = record(client);
    expect(client.state).toBe('connecting');
    expect(client.sessionId).toBeUndefined();
    const ready = await next(client, '$ready');
    expect(ready).toEqual({ sessionId: expect.any(String), resumed: false, missed: false });
    expect(ready.sessionId.length).toBeGreaterThanOrEqual(16);
    expect(client.sessionId).toBe(ready.sessionId);
    expect(client.state).toBe('open');
    // A listener attached right after construction hears 'connecting' too; 'open' comes before $ready.
    expect(seen.of('$state')).toEqual(['connecting', 'open']);
    expect(seen.events.map((e) => e.name).filter((n) => n === '$state' || n === '$ready')).toEqual(['$state', '$state', '$ready']);
    expect(server.connections).toBe(1);
  });

  it('with share where SharedWorker is missing (Node): a connection of its own, shared false', async () => {
    const client = makeClient(t.wsUrl('/ws'), { share: { workerUrl: '/reliable-ws-shared-worker.js' } });
    expect(client.shared).toBe(false);
    await next(client, '$ready');
    client.send('note', { text: 'fallback' });
    await waitUntil(() => server.notes.includes('fallback'), { timeoutMs: 3000, what: 'the note' });
    expect(server.connections).toBe(1);
  });

  it('queues sends made before the session is open and delivers them in order after $ready', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    client.send('note', { text: 'a' });
    client.send('note', { text: 'b' });
    client.send('note', { text: 'c' });
    expect(client.queueLength).toBe(3);
    expect(server.notes).toEqual([]);
    await next(client, '$ready');
    await waitUntil(() => server.notes.length === 3, { timeoutMs: 3000, what: 'three notes handled' });
    expect(server.notes).toEqual(['a', 'b', 'c']);
    // answered ($ack) → the queue empties
    await waitUntil(() => client.queueLength === 0, { timeoutMs: 3000, what: 'the queue to empty' });
    await sleep(100);
    expect(server.notes).toEqual(['a', 'b', 'c']); // nothing sent twice
  });

  it('runs $ready listeners before flushing the queue: a resync sent from $ready is handled first', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    client.send('note', { text: 'queued-1' });
    client.send('note', { text: 'queued-2' });
    client.on('$ready', () => client.send('note', { text: 'resync' }));
    await next(client, '$ready');
    await waitUntil(() => server.notes.length === 3, { timeoutMs: 3000, what: 'three notes handled' });
    // DESIGN §4: "flushed only after $ready, and after the application's own $ready handlers ran,
    // so that re-sync messages go first"
    expect(server.notes).toEqual(['resync', 'queued-1', 'queued-2']);
  });

  it('after a resume, a send from a $ready listener does not make an unanswered in-flight send look like a duplicate', async () => {
    const proxy = await TcpProxy.start(t.port);
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'));
    const first = await next(client, '$ready');
    proxy.stall('up');
    client.send('note', { text: 'in-flight' }); // written on the socket (it gets id 1) but never reaches the server
    await waitUntil(() => proxy.heldUpBytes > 0, { timeoutMs: 3000, what: 'the send to reach the proxy' });
    client.on('$ready', () => client.send('note', { text: 'resync' }));
    const resumed = next(client, '$ready', 5000);
    proxy.cutAll(); // the connection drops with the send lost on the way
    proxy.resume();
    expect(await resumed).toEqual({ sessionId: first.sessionId, resumed: true, missed: false });
    await waitUntil(() => client.queueLength === 0, { timeoutMs: 3000, what: 'both sends answered' });
    await sleep(100);
    // the server took neither before the drop, so it must handle both, once each (ids must reach
    // it in increasing order, or it answers the lower one as a duplicate without handling it)
    expect([...server.notes].sort()).toEqual(['in-flight', 'resync']);
  });

  it('throws QueueFullError on the send beyond queue.maxMessages while disconnected', async () => {
    const client = makeClient(`ws://127.0.0.1:${await deadPort()}/ws`, { queue: { maxMessages: 3 } });
    await next(client, '$reconnecting'); // it really is offline
    client.send('note', { text: '1' });
    client.send('note', { text: '2' });
    client.send('note', { text: '3' });
    expect(client.queueLength).toBe(3);
    let thrown: unknown;
    try {
      client.send('note', { text: '4' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(QueueFullError);
    expect(thrown).toMatchObject({ name: 'QueueFullError', limit: 'maxMessages', value: 3 });
    expect(String((thrown as Error).message)).toContain('maxMessages');
    expect(client.queueLength).toBe(3); // the overflowing send was not queued
    // a request that would overflow rejects the same way
    expect(await rejection(client.request('echo', { n: 1 }))).toBeInstanceOf(QueueFullError);
    expect(client.queueLength).toBe(3);
    expect(client.state).toBe('reconnecting');
  });

  it('throws QueueFullError when queue.maxBytes would be exceeded', async () => {
    const client = makeClient(`ws://127.0.0.1:${await deadPort()}/ws`, { queue: { maxBytes: 170 } });
    await next(client, '$reconnecting');
    const big = { text: 'x'.repeat(60) }; // 107 bytes with the event name and the envelope
    client.send('note', big);
    expect(() => client.send('note', big)).toThrow(QueueFullError);
    try {
      client.send('note', big);
    } catch (error) {
      expect(error).toMatchObject({ limit: 'maxBytes', value: 170 });
    }
    expect(client.queueLength).toBe(1);
    client.send('note', { text: 'small' }); // still fits
    expect(client.queueLength).toBe(2);
  });

  it('delivers sends made while the server is down exactly once after it restarts on the same port; requests of the lost session reject with SESSION_LOST', async () => {
    const first = await startAppAt(APP_OPTIONS, [ClientTestGateway], 0);
    extraApps.push(first);
    const port = first.port;
    const client = makeClient(first.wsUrl('/ws'), {
      reconnect: { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0.2, maxRetries: 1000 },
    });
    const seen = record(client);
    const firstReady = await next(client, '$ready');
    client.send('note', { text: 'before' });
    await waitUntil(() => client.queueLength === 0, { timeoutMs: 3000, what: 'the first note answered' });
    const pending = client.request('hang', {}, { timeoutMs: 20_000 });
    const pendingOutcome = rejection(pending, 15_000);
    await waitUntil(() => server.hangs === 1, { timeoutMs: 3000, what: 'the server to take the request' });

    await first.close();
    await waitUntil(() => client.state === 'reconnecting', { timeoutMs: 3000, what: 'the client to notice' });
    client.send('note', { text: 'down-1' });
    client.send('note', { text: 'down-2' });
    expect(client.queueLength).toBe(3); // the pending request + two sends
    await waitUntil(() => seen.of('$reconnecting').length >= 3, { timeoutMs: 5000, what: 'failed attempts while down' });
    expect(server.notes).toEqual(['before']);

    const readyAgain = next(client, '$ready', 10_000);
    const second = await startAppAt(APP_OPTIONS, [ClientTestGateway], port);
    extraApps.push(second);
    expect(second.port).toBe(port);
    const ready = await readyAgain;
    expect(ready.resumed).toBe(false);
    expect(ready.missed).toBe(true); // it asked to resume a session the new server does not know
    expect(ready.sessionId).not.toBe(firstReady.sessionId);
    const attempts = seen.of('$reconnecting').map((r) => r.attempt);
    expect(attempts).toEqual(attempts.map((_, i) => i + 1)); // 1, 2, 3, … while the server was down
    for (const { delayMs } of seen.of('$reconnecting')) {
      expect(delayMs).toBeGreaterThanOrEqual(50 * 0.8);
      expect(delayMs).toBeLessThanOrEqual(200 * 1.2);
    }

    const error = await pendingOutcome;
    expect(error).toBeInstanceOf(RequestError);
    expect(error.code).toBe('SESSION_LOST');
    await waitUntil(() => server.notes.length >= 3 && client.queueLength === 0, { timeoutMs: 5000, what: 'the queued sends delivered' });
    await sleep(300);
    expect(server.notes).toEqual(['before', 'down-1', 'down-2']);
    expect(client.state).toBe('open');
  });

  it('gives up after maxRetries reconnect attempts against a dead port: $failed, state "failed"', async () => {
    const client = makeClient(`ws://127.0.0.1:${await deadPort()}/ws`, {
      reconnect: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0.5, maxRetries: 3 },
    });
    const seen = record(client);
    const pending = rejection(client.request('echo', { n: 1 }, { timeoutMs: 20_000 }));
    const failed = await next(client, '$failed', 5000);
    expect(failed).toBeInstanceOf(Error);
    expect(client.state).toBe('failed');
    expect(seen.of('$reconnecting').map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(seen.of('$state')).toEqual(['connecting', 'reconnecting', 'failed']);
    expect((await pending).code).toBe('CLOSED');
    expect(() => client.send('note', { text: 'late' })).toThrow();
    await sleep(300);
    expect(seen.of('$reconnecting')).toHaveLength(3);
  });

  it('counts exactly 1 + maxRetries connection attempts before $failed, and none after', async () => {
    const proxy = await TcpProxy.start(await deadPort()); // accepts, then the upstream refuses → the socket is closed
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'), {
      reconnect: { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0.5, maxRetries: 4 },
    });
    await next(client, '$failed', 5000);
    expect(proxy.accepted).toBe(5);
    await sleep(300);
    expect(proxy.accepted).toBe(5);
  });
});

describe('ReliableWsClient: requests', () => {
  it('resolves a request with the handler reply (also a { event, data } reply, and undefined for $ack)', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    // asked before the session is open: queued, then answered
    const early = client.request('echo', { n: 0 });
    expect(await within(early, 5000, 'early echo')).toEqual({ n: 0 });
    expect(await within(client.request('echo', { text: 'hi', list: [1, 2] }), 3000, 'echo')).toEqual({ text: 'hi', list: [1, 2] });
    expect(await within(client.request('named', 'x'), 3000, 'named')).toBe('x');
    expect(await within(client.request('note', { text: 'acked' }), 3000, 'note')).toBeUndefined();
    expect(client.queueLength).toBe(0);
    // concurrent requests are correlated by id, not by order
    const many = await within(Promise.all([1, 2, 3, 4, 5].map((n) => client.request('echo', { n }))), 3000, 'five echoes');
    expect(many).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
  });

  it('rejects with RequestError code FORBIDDEN for a handler that throws ForbiddenException', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    const error = await rejection(client.request('forbidden', {}));
    expect(error).toBeInstanceOf(RequestError);
    expect(error.name).toBe('RequestError');
    expect(error.code).toBe('FORBIDDEN');
    expect(client.queueLength).toBe(0);
    expect(client.state).toBe('open'); // the connection stays
  });

  it('rejects with UNKNOWN_EVENT for an event no handler takes, and INTERNAL (no internals) for a crash', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    const unknown = await rejection(client.request('no-such-event', {}));
    expect(unknown).toBeInstanceOf(RequestError);
    expect(unknown.code).toBe('UNKNOWN_EVENT');
    const internal = await rejection(client.request('boom', {}));
    expect(internal.code).toBe('INTERNAL');
    expect(internal.message).not.toContain('secret internals');
    expect(client.queueLength).toBe(0);
  });

  it('rejects with TIMEOUT when no answer comes within timeoutMs, and the entry leaves the queue', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    await next(client, '$ready');
    const startedAt = Date.now();
    const pending = client.request('hang', {}, { timeoutMs: 200 });
    expect(client.queueLength).toBe(1);
    const error = await rejection(pending, 3000);
    expect(error).toBeInstanceOf(RequestError);
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190); // not before its time
    expect(client.queueLength).toBe(0);
    expect(server.hangs).toBe(1);
    // the connection is still fine
    expect(await within(client.request('echo', 1), 3000, 'echo after timeout')).toBe(1);
  });

  it('rejects invalid and reserved event names at once', () => {
    const client = makeClient(t.wsUrl('/ws'));
    expect(() => client.send('$hello', {})).toThrow(TypeError);
    expect(() => client.send('', {})).toThrow(TypeError);
    expect(client.queueLength).toBe(0);
  });

  it('emits $error for a failing send (no request), with the server code, and drops the entry', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    const errors: any[] = [];
    client.on('$error', (error) => errors.push(error));
    client.send('forbidden', {});
    client.send('no-such-event', {});
    client.send('boom', {});
    await waitUntil(() => errors.length === 3, { timeoutMs: 3000, what: 'three $error events' });
    // answers to different messages may come in any order
    expect(errors.map((e) => e.code).sort()).toEqual(['FORBIDDEN', 'INTERNAL', 'UNKNOWN_EVENT']);
    for (const error of errors) expect(typeof error.ref).toBe('number');
    expect(client.queueLength).toBe(0);
    await sleep(100);
    expect(errors).toHaveLength(3);
  });
});

describe('ReliableWsClient: close codes and credentials', () => {
  let authApp: TestApp;

  beforeAll(async () => {
    authApp = await startApp({ auth: { verify: (token: string) => (token === 'good' ? { id: 1 } : null) } }, [ClientTestGateway]);
  });

  afterAll(async () => {
    await authApp.close();
  });

  it('after a 4001 fetches a fresh token once, reconnects at once and gets $ready', async () => {
    const tokens = ['bad', 'good'];
    let calls = 0;
    const client = makeClient(authApp.wsUrl('/ws'), { token: async () => tokens[Math.min(calls++, 1)] });
    const seen = record(client);
    await next(client, '$ready', 5000);
    expect(calls).toBe(2);
    expect(seen.of('$close').map((c) => c.code)).toEqual([4001]);
    expect(seen.of('$reconnecting')).toEqual([{ attempt: 1, delayMs: 0 }]);
    expect(seen.of('$failed')).toHaveLength(0);
    expect(client.state).toBe('open');
    expect(await within(client.request('echo', 'authed'), 3000, 'echo')).toBe('authed');
  });

  it('fails after the second 4001 when the fresh token is refused too', async () => {
    let calls = 0;
    const client = makeClient(authApp.wsUrl('/ws'), {
      token: () => {
        calls++;
        return 'bad';
      },
    });
    const seen = record(client);
    const failed = await next(client, '$failed', 5000);
    expect(failed).toBeInstanceOf(Error);
    expect(client.state).toBe('failed');
    expect(seen.of('$close').map((c) => c.code)).toEqual([4001, 4001]);
    expect(calls).toBe(2);
    await sleep(300);
    expect(calls).toBe(2); // no further attempt
    expect(seen.of('$ready')).toHaveLength(0);
  });

  it('fails on the first 4001 when the token is a fixed string (nothing fresh to fetch)', async () => {
    const client = makeClient(authApp.wsUrl('/ws'), { token: 'bad' });
    const seen = record(client);
    await next(client, '$failed', 5000);
    expect(seen.of('$close').map((c) => c.code)).toEqual([4001]);
    expect(seen.of('$reconnecting')).toHaveLength(0);
  });

  it.each([4003, 1008])('treats a server close with %i as terminal: $failed, no reconnect, pending requests reject', async (code) => {
    const client = makeClient(t.wsUrl('/ws'));
    const seen = record(client);
    await next(client, '$ready');
    const pending = rejection(client.request('hang', {}, { timeoutMs: 20_000 }));
    client.send('kick', { code });
    const failed = await next(client, '$failed', 5000);
    expect(failed.message).toContain(String(code));
    expect(client.state).toBe('failed');
    expect(seen.of('$close').map((c) => c.code)).toEqual([code]);
    expect((await pending).code).toBe('CLOSED');
    await sleep(300);
    expect(seen.of('$reconnecting')).toHaveLength(0);
    expect(server.connections).toBe(1);
  });

  it('after 4029 waits about maxDelayMs (jittered) before reconnecting, then resumes', async () => {
    const maxDelayMs = 400;
    const client = makeClient(t.wsUrl('/ws'), {
      reconnect: { initialDelayMs: 10, maxDelayMs, factor: 2, jitter: 0.1, maxRetries: 10 },
    });
    const seen = record(client);
    const firstReady = await next(client, '$ready');
    client.send('kick', { code: 4029 });
    const reconnecting = await next(client, '$reconnecting', 3000);
    const closedAt = Date.now();
    expect(seen.of('$close').map((c) => c.code)).toEqual([4029]);
    expect(reconnecting.attempt).toBe(1);
    expect(reconnecting.delayMs).toBeGreaterThanOrEqual(maxDelayMs * 0.9);
    expect(reconnecting.delayMs).toBeLessThanOrEqual(maxDelayMs * 1.1);
    const ready = await next(client, '$ready', 5000);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(reconnecting.delayMs - 20); // it did wait
    expect(ready.resumed).toBe(true); // a server close keeps the session
    expect(ready.sessionId).toBe(firstReady.sessionId);
    await sleep(200);
    expect(seen.of('$close')).toHaveLength(1); // the kick was not sent again
    expect(server.connections).toBe(2);
  });
});

describe('ReliableWsClient: heartbeat and connect timeout (through a TCP proxy)', () => {
  const HEARTBEAT = { intervalMs: 100, timeoutMs: 100 };

  it('closes and reconnects when the server stops answering, and is ready again once it answers', async () => {
    const proxy = await TcpProxy.start(t.port);
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'), { heartbeat: HEARTBEAT, connectTimeoutMs: 500 });
    const seen = record(client);
    await next(client, '$ready');
    proxy.stall();
    await next(client, '$reconnecting', 3000);
    expect(seen.of('$close').at(-1)).toMatchObject({ reason: 'heartbeat timeout' });
    expect(client.state).toBe('reconnecting');
    await sleep(200);
    expect(seen.of('$ready')).toHaveLength(1); // not while stalled
    const readyAgain = next(client, '$ready', 5000);
    proxy.resume();
    await readyAgain;
    expect(client.state).toBe('open');
    expect(await within(client.request('echo', 'alive'), 3000, 'echo after recovery')).toBe('alive');
  });

  it('a heartbeat-timeout drop keeps the session: the server does not see close 1000 and the reconnect resumes', async () => {
    const proxy = await TcpProxy.start(t.port);
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'), {
      heartbeat: HEARTBEAT,
      connectTimeoutMs: 2000,
      reconnect: { initialDelayMs: 300, maxDelayMs: 600, factor: 2, jitter: 0, maxRetries: 100 },
    });
    const first = await next(client, '$ready');
    proxy.stall();
    await next(client, '$close', 3000, (c) => c.reason === 'heartbeat timeout');
    // the network comes back before the reconnect: whatever the client wrote on the old
    // connection now reaches the server
    const readyAgain = next(client, '$ready', 5000);
    proxy.resume();
    await waitUntil(() => server.closeCodes.length >= 1, { timeoutMs: 3000, what: 'the server to see the old connection close' });
    // DESIGN §3: "A close by the client with 1000 ends its session (no resume)" — a client that
    // only gives up on a silent connection must not end its own session
    expect(server.closeCodes[0]).not.toBe(1000);
    const ready = await readyAgain;
    expect(ready).toEqual({ sessionId: first.sessionId, resumed: true, missed: false });
  });

  it('counts any inbound frame as liveness: pushes keep it open while its pings go unanswered', async () => {
    const proxy = await TcpProxy.start(t.port);
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'), { heartbeat: HEARTBEAT });
    const seen = record(client);
    let ticks = 0;
    client.on('tick', () => ticks++);
    await next(client, '$ready');
    await within(client.request('stream', {}), 3000, 'stream started');
    await waitUntil(() => ticks >= 2, { timeoutMs: 3000, what: 'pushes' });
    proxy.stall('up'); // the client's $ping never reaches the server, so no $pong ever comes back
    const heldBefore = proxy.heldUpBytes;
    const ticksBefore = ticks;
    await sleep(1000); // ten heartbeat intervals
    expect(proxy.heldUpBytes).toBeGreaterThan(heldBefore); // it did ping (and the pings were swallowed)
    expect(ticks - ticksBefore).toBeGreaterThanOrEqual(5); // pushes kept coming
    expect(seen.of('$close')).toHaveLength(0);
    expect(seen.of('$reconnecting')).toHaveLength(0);
    expect(client.state).toBe('open');
    // control: once the pushes stop arriving too, the same client does time out
    proxy.stall('down');
    await next(client, '$close', 3000, (c) => c.reason === 'heartbeat timeout');
  });

  it('gives up a connect attempt after connectTimeoutMs (TCP accepted, nothing answered) and schedules a reconnect', async () => {
    const proxy = await TcpProxy.start(t.port, { blackhole: true });
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'), {
      connectTimeoutMs: 300,
      reconnect: { initialDelayMs: 50, maxDelayMs: 100, factor: 2, jitter: 0.2, maxRetries: 100 },
    });
    const seen = record(client);
    const startedAt = Date.now();
    const reconnecting = await next(client, '$reconnecting', 3000);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    expect(reconnecting.attempt).toBe(1);
    expect(seen.of('$close')).toEqual([expect.objectContaining({ reason: 'connect timeout' })]);
    expect(client.state).toBe('reconnecting');
    await waitUntil(() => proxy.accepted >= 2 && proxy.clientCloses >= 1, {
      timeoutMs: 3000,
      what: 'the stuck socket closed and a new attempt made',
    });
    expect(seen.of('$ready')).toHaveLength(0);
  });
});

describe('ReliableWsClient: close()', () => {
  it('closes with 1000: state "closed", no reconnect, pending requests reject with CLOSED', async () => {
    const client = makeClient(t.wsUrl('/ws'));
    const seen = record(client);
    await next(client, '$ready');
    const pending = rejection(client.request('hang', {}, { timeoutMs: 20_000 }));
    await waitUntil(() => server.hangs === 1, { timeoutMs: 3000, what: 'the request taken' });
    client.close();
    expect(client.state).toBe('closed');
    expect(seen.of('$state').at(-1)).toBe('closed');
    const error = await pending;
    expect(error).toBeInstanceOf(RequestError);
    expect(error.code).toBe('CLOSED');
    expect(client.queueLength).toBe(0);
    await waitUntil(() => server.closeCodes.length === 1, { timeoutMs: 3000, what: 'the server to see the close' });
    expect(server.closeCodes).toEqual([1000]);
    expect(() => client.send('note', { text: 'late' })).toThrow();
    await sleep(300);
    expect(server.connections).toBe(1);
    expect(seen.of('$reconnecting')).toHaveLength(0);
    expect(seen.of('$failed')).toHaveLength(0);
    expect(client.state).toBe('closed');
    client.close(); // twice is harmless
    expect(client.state).toBe('closed');
  });

  it('close() while reconnecting stops the schedule', async () => {
    const proxy = await TcpProxy.start(await deadPort());
    proxies.push(proxy);
    const client = makeClient(proxy.url('/ws'), {
      reconnect: { initialDelayMs: 100, maxDelayMs: 100, factor: 1, jitter: 0, maxRetries: 100 },
    });
    await next(client, '$reconnecting', 3000);
    client.close();
    const attempts = proxy.accepted;
    await sleep(400);
    expect(proxy.accepted).toBe(attempts);
    expect(client.state).toBe('closed');
  });
});

describe('ReliableWsClient: types', () => {
  function diagnostics(file: string): string[] {
    const config = ts.readConfigFile(join(here, '..', 'tsconfig.json'), ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, join(here, '..'));
    const path = join(here, 'support', file);
    const program = ts.createProgram([path], { ...parsed.options, noEmit: true });
    // only the fixture's own diagnostics (lib/ is type-checked by `npm run typecheck`)
    return ts
      .getPreEmitDiagnostics(program, program.getSourceFile(path))
      .map((d) => `${d.file?.fileName ?? ''}:${d.start ?? ''} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  }

  it('typed event maps compile: payloads checked for send/request/on, unknown events refused', () => {
    expect(diagnostics('typed-client-usage.ts')).toEqual([]);
    // and at run time the same usage works against a real server
    const client = new ReliableWsClient<{ said: { text: string } }, { say: { text: string } }>(t.wsUrl('/ws'), { WebSocket });
    clients.push(client as unknown as Client);
    client.on('said', (data) => void data.text.toUpperCase());
    client.send('say', { text: 'hi' });
    expect(client.queueLength).toBe(1);
  });

  it('accepts the `ws` WebSocket class and the browser one as the WebSocket option without a cast', () => {
    expect(diagnostics('ws-constructor-usage.ts')).toEqual([]);
  });
});
