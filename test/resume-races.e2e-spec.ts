/**
 * Races around resume and credentials (DESIGN §3 "Sessions and resume", `$auth`): resumes that
 * meet each other, a session's previous connection, an `$auth` still being verified, or a close.
 * Real Nest apps on port 0 (memory store), raw `ws` clients speaking `rws.v1`; every wait is bounded.
 */
import { MessageBody, SubscribeMessage, WebSocketServer } from '@nestjs/websockets';
import {
  BroadcastService,
  ReliableGateway,
  WsPrincipal,
  type ReliableSocket,
  type ReliableWsOptions,
  type ReliableWsServer,
} from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

// ---------------------------------------------------------------------------------------------
// Server side

/** How many times a handler ran, per `key` of its payload. */
const runs = new Map<string, number>();
const ran = (key: string): number => runs.get(key) ?? 0;

@ReliableGateway({ path: '/ws' })
class RaceGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: { key: string }): { key: string } {
    runs.set(data.key, ran(data.key) + 1);
    return data;
  }

  /** Takes `ms`, then replies. */
  @SubscribeMessage('slow')
  async slow(@MessageBody() data: { key: string; ms: number }): Promise<{ done: string }> {
    runs.set(data.key, ran(data.key) + 1);
    await sleep(data.ms);
    return { done: data.key };
  }

  @SubscribeMessage('whoami')
  whoami(@WsPrincipal() principal: unknown): unknown {
    return principal ?? null;
  }
}

/** Tells every client of its path, in `handleConnection`, that a session (re)connected. */
@ReliableGateway({ path: '/presence' })
class PresenceGateway {
  @WebSocketServer() server!: ReliableWsServer;

  handleConnection(socket: ReliableSocket): void {
    this.server.clients.forEach((client) => client.send('online', socket.id));
  }
}

/**
 * Tokens: `user` verifies at once, `user@ms` after `ms`, to `{ id: user, token }`; `hang` never
 * answers. Anything else is refused.
 */
function verify(token: string): unknown {
  const [user, delay] = token.split('@');
  if (token === 'hang') return new Promise(() => undefined);
  if (!/^[a-z]+$/.test(user)) return null;
  const principal = { id: user, token };
  return delay === undefined ? principal : sleep(Number(delay)).then(() => principal);
}

const BASE: ReliableWsOptions = { rateLimit: false, allowedOrigins: '*', resume: { bufferSize: 100, ttlMs: 20000 } };

// ---------------------------------------------------------------------------------------------
// Client side helpers

interface Session {
  sessionId: string;
  resumeToken: string;
}

const open: TestClient[] = [];
afterEach(() => {
  for (const client of open.splice(0)) client.terminate();
});

/** Opens an `rws.v1` connection and sends `$hello` with `data`. */
async function connect(url: string, data: Record<string, unknown> = {}): Promise<TestClient> {
  const client = new TestClient(url, 'rws.v1');
  open.push(client);
  await client.open();
  client.send({ event: '$hello', data });
  return client;
}

async function hello(url: string, data: Record<string, unknown> = {}): Promise<{ client: TestClient; ready: Frame }> {
  const client = await connect(url, data);
  return { client, ready: await client.next((frame) => frame.event === '$ready') };
}

function resumeOf(ready: Frame, lastSeq: number): { resume: Session & { lastSeq: number } } {
  return { resume: { sessionId: ready.data.sessionId, resumeToken: ready.data.resumeToken, lastSeq } };
}

/** The seqs of the `n` pushes a client got, in order. */
const seqsOf = (client: TestClient): number[] => client.frames.filter((frame) => frame.event === 'n').map((frame) => frame.seq!);

/** The numeric refs of the answers a client got. */
const refsOf = (client: TestClient): number[] =>
  client.frames.map((frame) => frame.ref ?? frame.data?.ref).filter((ref): ref is number => typeof ref === 'number');

/** Lets frames in flight arrive, for assertions that nothing more came. */
const settle = (): Promise<void> => sleep(150);

// ---------------------------------------------------------------------------------------------

describe('resume races: $auth still being verified', () => {
  let app: TestApp;
  let url: string;
  beforeAll(async () => {
    app = await startApp({ ...BASE, auth: { verify, timeoutMs: 1000 } }, [RaceGateway]);
    url = app.wsUrl('/ws');
  });
  afterAll(() => app.close());

  it('an $auth of the old connection that verifies after a resume took the session over does not change its principal', async () => {
    const first = await hello(url, { token: 'alice' });
    first.client.send({ event: '$auth', data: { token: 'bob@300' }, id: 1 });
    const second = await hello(url, { token: 'alice', ...resumeOf(first.ready, 0) });
    expect(second.ready.data).toMatchObject({ sessionId: first.ready.data.sessionId, resumed: true });
    await first.client.closed(3000);
    await sleep(500); // bob's verify has answered by now
    expect((await second.client.request('whoami', null, 1)).data).toEqual({ id: 'alice', token: 'alice' });
  });

  it('an $auth closed 4008 for its slow verify changes nothing when the verify answers later: the owner resumes', async () => {
    const first = await hello(url, { token: 'alice' });
    first.client.send({ event: '$auth', data: { token: 'bob@1500' } });
    expect((await first.client.closed(3000)).code).toBe(4008);
    await sleep(800); // bob's verify has answered by now
    const again = await hello(url, { token: 'alice', ...resumeOf(first.ready, 0) });
    expect(again.ready.data).toMatchObject({ sessionId: first.ready.data.sessionId, resumed: true, missed: false });
    expect((await again.client.request('whoami', null, 1)).data).toEqual({ id: 'alice', token: 'alice' });
  });
});

describe('resume races: malformed $hello.resume', () => {
  let app: TestApp;
  let url: string;
  beforeAll(async () => {
    app = await startApp(BASE, [RaceGateway]);
    url = app.wsUrl('/ws');
  });
  afterAll(() => app.close());

  it.each([
    ['lastSeq as a string', { sessionId: 'A'.repeat(22), resumeToken: 'B'.repeat(22), lastSeq: '3' }],
    ['no lastSeq', { sessionId: 'A'.repeat(22), resumeToken: 'B'.repeat(22) }],
    ['a number as sessionId', { sessionId: 7, resumeToken: 'B'.repeat(22), lastSeq: 0 }],
    ['no resumeToken', { sessionId: 'A'.repeat(22), lastSeq: 0 }],
    ['a string', 'A'.repeat(22)],
  ])('%s: a new session with missed: true, never a silent gap', async (_case, resume) => {
    const { ready } = await hello(url, { resume });
    expect(ready.data).toMatchObject({ resumed: false, missed: true });
  });

  it('resume: null asks for no resume: a fresh session, missed: false', async () => {
    const { ready } = await hello(url, { resume: null });
    expect(ready.data).toMatchObject({ resumed: false, missed: false });
  });
});

describe('resume races: takeover seen by handleConnection', () => {
  let app: TestApp;
  let url: string;
  beforeAll(async () => {
    app = await startApp(BASE, [PresenceGateway]);
    url = app.wsUrl('/presence');
  });
  afterAll(() => app.close());

  it('server.clients holds one socket per session: a takeover resume gets one push, not two', async () => {
    const first = await hello(url);
    await first.client.next((frame) => frame.event === 'online');
    const second = await hello(url, resumeOf(first.ready, 1));
    expect(second.ready.data).toMatchObject({ resumed: true });
    await second.client.next((frame) => frame.event === 'online');
    await settle();
    expect(second.client.frames.filter((frame) => frame.event === 'online')).toEqual([]);
  });
});

describe('resume races: credentials already expired', () => {
  let app: TestApp;
  let url: string;
  let broadcast: BroadcastService;
  /** `old` verifies to alice with an `exp` a minute ago, `alice` to alice without one. */
  const verifyWithExp = (token: string): unknown =>
    token === 'old' ? { id: 'alice', exp: Math.floor(Date.now() / 1000) - 60 } : token === 'alice' ? { id: 'alice' } : null;
  beforeAll(async () => {
    app = await startApp({ ...BASE, auth: { verify: verifyWithExp, timeoutMs: 3000 } }, [RaceGateway]);
    url = app.wsUrl('/ws');
    broadcast = app.app.get(BroadcastService);
  });
  afterAll(() => app.close());

  it('$hello with expired credentials closes 4001 without $ready; a message pipelined behind it is not handled', async () => {
    const client = await connect(url, { token: 'old' });
    client.send({ event: 'echo', data: { key: 'expired-hello' }, id: 1 });
    expect(await client.closed(3000)).toEqual({ code: 4001, reason: 'credentials expired' });
    expect(client.frames).toEqual([]);
    expect(ran('expired-hello')).toBe(0);
  });

  it('a handshake token with expired credentials closes 4001 without $ready, also for a plain client', async () => {
    for (const protocol of ['rws.v1', undefined]) {
      const client = new TestClient(`${url}?token=old`, protocol);
      open.push(client);
      await client.open();
      if (protocol) client.send({ event: '$hello', data: {} });
      expect(await client.closed(3000)).toEqual({ code: 4001, reason: 'credentials expired' });
      expect(client.frames).toEqual([]);
    }
  });

  it("a resume with expired credentials neither takes the owner's connection over nor gets its pushes", async () => {
    const owner = await hello(url, { token: 'alice' });
    await broadcast.toClient(owner.ready.data.sessionId, 'secret', 'for alice');
    await owner.client.next((frame) => frame.event === 'secret');
    const stale = await connect(url, { token: 'old', ...resumeOf(owner.ready, 0) });
    expect(await stale.closed(3000)).toEqual({ code: 4001, reason: 'credentials expired' });
    expect(stale.frames).toEqual([]);
    await settle();
    expect(owner.client.raw.readyState).toBe(owner.client.raw.OPEN);
    expect((await owner.client.request('whoami', null, 1)).data).toEqual({ id: 'alice' });
  });
});

describe('resume races: what held up', () => {
  let app: TestApp;
  let url: string;
  let broadcast: BroadcastService;
  beforeAll(async () => {
    app = await startApp({ ...BASE, auth: { verify, timeoutMs: 1000 } }, [RaceGateway]);
    url = app.wsUrl('/ws');
    broadcast = app.app.get(BroadcastService);
  });
  afterAll(() => app.close());

  it('ten resumes of one session at once, verifies answering in random order: one connection keeps it, pushes once each', async () => {
    const first = await hello(url, { token: 'alice' });
    for (let n = 1; n <= 5; n++) await broadcast.toClient(first.ready.data.sessionId, 'n', n);
    first.client.terminate();
    const delays = [50, 10, 90, 30, 70, 0, 60, 20, 80, 40];
    const resumers = await Promise.all(
      delays.map((ms) => connect(url, { token: ms ? `alice@${ms}` : 'alice', ...resumeOf(first.ready, 2) })),
    );
    const readies = await Promise.all(resumers.map((client) => client.next((frame) => frame.event === '$ready')));
    for (const ready of readies) expect(ready.data).toMatchObject({ sessionId: first.ready.data.sessionId, resumed: true, missed: false });
    await settle();
    const alive = resumers.filter((client) => client.raw.readyState === client.raw.OPEN);
    expect(alive).toHaveLength(1);
    await broadcast.toClient(first.ready.data.sessionId, 'n', 6);
    await waitUntil(() => seqsOf(alive[0]).length >= 4, { what: 'the replay and the live push' });
    expect(seqsOf(alive[0])).toEqual([3, 4, 5, 6]);
    // every connection saw a run of consecutive seqs from lastSeq + 1: none twice, none skipped
    for (const client of resumers) seqsOf(client).forEach((seq, index) => expect(seq).toBe(3 + index));
  });

  it('a message handled on A, A cut before its answer, retried on B: handler once, answer once on B', async () => {
    const a = await hello(url, { token: 'alice' });
    a.client.send({ event: 'slow', data: { key: 'xonce', ms: 1000 }, id: 1 });
    await waitUntil(() => ran('xonce') === 1, { what: 'the handler to start' });
    a.client.terminate();
    const b = await hello(url, { token: 'alice@100', ...resumeOf(a.ready, 0) });
    expect(b.ready.data).toMatchObject({ resumed: true, lastId: 1 });
    b.client.send({ event: 'slow', data: { key: 'xonce', ms: 1000 }, id: 1 });
    b.client.send({ event: 'slow', data: { key: 'xonce', ms: 1000 }, id: 1 });
    const answer = await b.client.next((frame) => frame.ref === 1);
    expect(answer.data).toEqual({ done: 'xonce' });
    await settle();
    expect(b.client.frames.filter((frame) => frame.ref === 1 || frame.data?.ref === 1)).toEqual([]); // the second retry got nothing
    expect(ran('xonce')).toBe(1);
    b.client.send({ event: 'slow', data: { key: 'xonce', ms: 1000 }, id: 1 });
    expect((await b.client.next((frame) => frame.ref === 1)).data).toEqual({ done: 'xonce' }); // from the cache
  });

  it('a resume while the old connection is still open and busy: ids across both handled once', async () => {
    const a = await hello(url, { token: 'alice' });
    for (let id = 1; id <= 5; id++) a.client.send({ event: 'echo', data: { key: `il${id}` }, id });
    const b = await connect(url, { token: 'alice@50', ...resumeOf(a.ready, 0) });
    for (let id = 1; id <= 8; id++) b.send({ event: 'echo', data: { key: `il${id}` }, id });
    await b.next((frame) => frame.event === '$ready');
    await waitUntil(() => new Set(refsOf(b)).size >= 8, { what: '8 answers' });
    for (let id = 1; id <= 8; id++) expect(ran(`il${id}`)).toBe(1);
    await settle();
    expect(refsOf(b).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]); // one answer per frame sent on B
  });

  it('$auth twice, the first verifying slower: the last one sent wins', async () => {
    const a = await hello(url, { token: 'alice' });
    a.client.send({ event: '$auth', data: { token: 'alice@300' }, id: 'x' });
    a.client.send({ event: '$auth', data: { token: 'alice@10' }, id: 'y' });
    await a.client.next((frame) => frame.data?.ref === 'y');
    expect((await a.client.request('whoami', null, 1)).data).toEqual({ id: 'alice', token: 'alice@10' });
  });

  it('$auth that never answers: closed 4008; the session is still resumable', async () => {
    const a = await hello(url, { token: 'alice' });
    a.client.send({ event: '$auth', data: { token: 'hang' } });
    expect((await a.client.closed(3000)).code).toBe(4008);
    const b = await hello(url, { token: 'alice', ...resumeOf(a.ready, 0) });
    expect(b.ready.data).toMatchObject({ resumed: true });
  });

  it('a resume racing a client close 1000 of the old connection: resumed and live, or missed, never half', async () => {
    for (let round = 0; round < 5; round++) {
      const a = await hello(url, { token: 'alice' });
      await broadcast.toClient(a.ready.data.sessionId, 'n', 1);
      a.client.close(1000);
      const b = await hello(url, { token: 'alice', ...resumeOf(a.ready, 0) });
      await settle();
      if (b.ready.data.resumed) {
        expect(b.client.raw.readyState).toBe(b.client.raw.OPEN);
        await broadcast.toClient(a.ready.data.sessionId, 'n', 2);
        await waitUntil(() => seqsOf(b.client).length === 2, { what: 'two pushes' });
      } else {
        expect(b.ready.data.missed).toBe(true);
      }
    }
  });
});
