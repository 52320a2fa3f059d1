import type { INestApplication } from '@nestjs/common';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import type { SampleConfig } from '../sample/app.module.js';
import { ReliableWsClient, RequestError } from '../lib/client/index.js';
import { SessionRegistry } from '../lib/index.js';
import { createSampleApp } from '../sample/app.js';
import { ChatGateway } from '../sample/chat.gateway.js';
import { FileShelf, MAX_FILE_BYTES, MAX_SHELF_FILES, type SharedFileInfo } from '../sample/file-shelf.js';
import { PRESENCE_BURST, PRESENCE_LINES_PER_SECOND } from '../sample/presence-budget.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/** An `rws.v1` client of the sample: numbers its requests 1, 2, 3 … and remembers its last seq. */
class ChatClient {
  /** The last id used; a resumed session continues from its `$ready.lastId`. */
  lastId = 0;
  lastSeq = 0;
  ready!: Frame;

  constructor(readonly ws: TestClient) {
    ws.raw.on('message', (data) => {
      const seq = (JSON.parse(data.toString()) as Frame).seq;
      if (typeof seq === 'number') this.lastSeq = Math.max(this.lastSeq, seq);
    });
  }

  ask(event: string, data: unknown): Promise<Frame> {
    return this.ws.request(event, data, ++this.lastId);
  }

  /** The next push of `event` (for `room`, when given), removed from the record. */
  next(event: string, room?: string): Promise<Frame> {
    return this.ws.next((frame) => frame.event === event && (room === undefined || frame.data?.room === room));
  }

  /** Pushes of `event` recorded and not yet taken with `next`. */
  pending(event: string): Frame[] {
    return this.ws.frames.filter((frame) => frame.event === event);
  }
}

describe('sample chat app', () => {
  let app: INestApplication;
  let base: string;
  const sockets: TestClient[] = [];

  /** Connects an `rws.v1` client (resuming a session when asked) and waits for `$ready`. */
  const connect = async (resume?: { sessionId: string; resumeToken: string; lastSeq: number }): Promise<ChatClient> => {
    const ws = new TestClient(`${base.replace('http', 'ws')}/ws`, 'rws.v1');
    sockets.push(ws);
    const client = new ChatClient(ws);
    await ws.open();
    ws.send({ event: '$hello', data: resume ? { resume } : {} });
    client.ready = await ws.next((frame) => frame.event === '$ready');
    client.lastId = client.ready.data.lastId;
    return client;
  };

  beforeAll(async () => {
    app = await createSampleApp({ logger: false }, { channelPrefix: 'unused' }); // in memory
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await app?.close();
  });

  it('serves the page and its script', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<title>Reliable WS chat</title>');

    const script = await fetch(`${base}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    // The page runs on the library's client, imported as an ES module from the browser bundle.
    expect(await script.text()).toContain("from '/client/reliable-ws-client.js'");

    const bundle = await fetch(`${base}/client/reliable-ws-client.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    const bundleText = await bundle.text();
    expect(bundleText).toMatch(/export\s*\{[^}]*\bReliableWsClient\b/);
    expect(bundleText).not.toMatch(/^\s*(import|export .* from)\b/m); // self-contained: no imports left
    expect((await fetch(`${base}/client/nothing-here.js`)).status).toBe(404);

    const style = await fetch(`${base}/style.css`);
    expect(style.headers.get('content-type')).toMatch(/^text\/css/);

    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
  });

  it('puts every new session in the lobby without telling the lobby; an explicit join is announced', async () => {
    const alice = await connect();
    const welcome = await alice.next('welcome');
    expect(welcome.data).toEqual({ sessionId: alice.ready.data.sessionId, name: expect.stringMatching(/^guest-/), rooms: ['lobby'] });
    expect(typeof welcome.seq).toBe('number');

    const bob = await connect();
    const bobWelcome = await bob.next('welcome');
    expect(bobWelcome.data.rooms).toEqual(['lobby']);
    // Bob's line reaches alice, so he is in the lobby; a `joined` would have come before it (pushes are in order).
    await bob.ask('say', { room: 'lobby', text: 'hi all' });
    expect((await alice.next('said', 'lobby')).data).toMatchObject({ from: bobWelcome.data.name, text: 'hi all' });
    expect(alice.pending('joined')).toEqual([]);

    expect((await bob.ask('leave', { room: 'lobby' })).data).toMatchObject({ ok: true, rooms: [] });
    await alice.next('left', 'lobby');
    expect((await bob.ask('join', { room: 'lobby' })).data).toMatchObject({ ok: true, rooms: ['lobby'] });
    expect((await alice.next('joined', 'lobby')).data).toEqual({ room: 'lobby', name: bobWelcome.data.name });
    expect(bob.pending('joined')).toEqual([]);
  });

  it("forgets a session's name when the session ends, not when its connection drops", async () => {
    const gateway = app.get(ChatGateway);
    const registry = app.get(SessionRegistry);
    const connectionsBefore = registry.connectionCount;
    const namesBefore = gateway.nameCount;

    const dropped = await connect();
    await dropped.next('welcome');
    const closed = await connect();
    await closed.next('welcome');
    expect(gateway.nameCount).toBe(namesBefore + 2);

    dropped.ws.terminate(); // the session waits for a resume, with its name
    closed.ws.close(1000); // the session ends
    await waitUntil(() => registry.connectionCount === connectionsBefore, { what: 'both connections to close' });
    expect(gateway.nameCount).toBe(namesBefore + 1);

    const { sessionId, resumeToken } = dropped.ready.data;
    const again = await connect({ sessionId, resumeToken, lastSeq: dropped.lastSeq });
    expect(again.ready.data).toMatchObject({ sessionId, resumed: true });
    again.ws.close(1000);
    await waitUntil(() => gateway.nameCount === namesBefore, { what: 'the resumed session to end' });
  });

  it('lets two clients chat in a room: join, say, nick, leave', async () => {
    const alice = await connect();
    const bob = await connect();
    const aliceName = (await alice.next('welcome')).data.name;
    const bobName = (await bob.next('welcome')).data.name;

    expect(await alice.ask('join', { room: 'dev-1' })).toEqual({
      event: 'join',
      data: { ok: true, room: 'dev-1', rooms: ['lobby', 'dev-1'] },
      ref: 1,
    });
    expect((await bob.ask('join', { room: 'dev-1' })).data).toEqual({ ok: true, room: 'dev-1', rooms: ['lobby', 'dev-1'] });
    expect((await alice.next('joined', 'dev-1')).data).toEqual({ room: 'dev-1', name: bobName });
    // Joining again changes nothing and announces nothing.
    expect((await bob.ask('join', { room: 'dev-1' })).data).toMatchObject({ ok: true, rooms: ['lobby', 'dev-1'] });

    expect(await alice.ask('say', { room: 'dev-1', text: 'hello bob' })).toEqual({ event: 'say', data: { ok: true }, ref: 2 });
    for (const client of [alice, bob]) {
      const said = await client.next('said', 'dev-1');
      expect(said.data).toEqual({ room: 'dev-1', from: aliceName, text: 'hello bob', at: expect.any(String) });
      expect(typeof said.seq).toBe('number');
      expect(Number.isNaN(Date.parse(said.data.at))).toBe(false);
    }

    expect(await alice.ask('nick', { name: '  alice ' })).toMatchObject({ data: { ok: true, name: 'alice' } });
    const renamed = [await bob.next('renamed'), await bob.next('renamed')].map((frame) => frame.data);
    expect(renamed).toEqual(
      expect.arrayContaining([
        { room: 'lobby', from: aliceName, to: 'alice' },
        { room: 'dev-1', from: aliceName, to: 'alice' },
      ]),
    );
    expect(alice.pending('renamed')).toEqual([]);

    expect((await bob.ask('leave', { room: 'dev-1' })).data).toEqual({ ok: true, room: 'dev-1', rooms: ['lobby'] });
    expect((await alice.next('left', 'dev-1')).data).toEqual({ room: 'dev-1', name: bobName });
    expect(bob.pending('left')).toEqual([]);
    // Leaving a room one is not in is a no-op.
    expect((await bob.ask('leave', { room: 'dev-1' })).data).toEqual({ ok: true, room: 'dev-1', rooms: ['lobby'] });

    // No more lines from dev-1 for bob: the lobby line after it is the barrier (pushes are in order).
    await alice.ask('say', { room: 'dev-1', text: 'bob is gone' });
    await alice.ask('say', { room: 'lobby', text: 'barrier' });
    expect((await bob.next('said', 'lobby')).data).toMatchObject({ from: 'alice', text: 'barrier' });
    expect((await alice.next('said', 'dev-1')).data).toMatchObject({ text: 'bob is gone' });
    expect(bob.pending('said')).toEqual([]);
  });

  it('rejoins quietly: join and nick with quiet: true tell the room nothing; whoami says who and where', async () => {
    const alice = await connect();
    const bob = await connect();
    await alice.next('welcome');
    const bobWelcome = (await bob.next('welcome')).data;
    await alice.ask('join', { room: 'quiet-1' });
    expect((await bob.ask('join', { room: 'quiet-1', quiet: true })).data).toMatchObject({ ok: true, rooms: ['lobby', 'quiet-1'] });
    expect((await bob.ask('nick', { name: 'ghost', quiet: true })).data).toEqual({ ok: true, name: 'ghost' });
    expect((await bob.ask('whoami', {})).data).toEqual({ sessionId: bobWelcome.sessionId, name: 'ghost', rooms: ['lobby', 'quiet-1'] });
    // The line after them is the barrier: pushes are in order, so nothing was announced before it.
    await bob.ask('say', { room: 'quiet-1', text: 'boo' });
    expect((await alice.next('said', 'quiet-1')).data).toMatchObject({ from: 'ghost', text: 'boo' });
    expect(alice.pending('joined')).toEqual([]);
    expect(alice.pending('renamed')).toEqual([]);
    expect((await bob.ask('join', { room: 'quiet-2', quiet: 'yes' })).data).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('answers a say to a room the session is not in with FORBIDDEN', async () => {
    const alice = await connect();
    const bob = await connect();
    await bob.ask('join', { room: 'secret' });

    const refused = await alice.ask('say', { room: 'secret', text: 'let me in' });
    expect(refused).toEqual({
      event: '$error',
      data: { code: 'FORBIDDEN', message: 'join the room first', ref: 1 },
    });
    // Nothing reached the room, and the connection is still usable.
    await bob.ask('say', { room: 'secret', text: 'barrier' });
    expect((await bob.next('said', 'secret')).data.text).toBe('barrier');
    expect(bob.pending('said')).toEqual([]);
    expect((await alice.ask('say', { room: 'lobby', text: 'still here' })).data).toEqual({ ok: true });
  });

  it('answers bad payloads with VALIDATION_FAILED and its details', async () => {
    const client = await connect();

    const badRooms: Array<[unknown, string[]]> = [
      ['', ['isLength', 'matches']],
      ['Lobby', ['matches']],
      ['two words', ['matches']],
      ['x'.repeat(33), ['isLength']],
      ['../etc', ['matches']],
      [42, ['isLength', 'isString', 'matches']],
      [undefined, ['isLength', 'isString', 'matches']],
    ];
    for (const [room, constraints] of badRooms) {
      for (const event of ['join', 'leave', 'say']) {
        const answer = await client.ask(event, event === 'say' ? { room, text: 'hi' } : { room });
        expect(answer.event).toBe('$error');
        expect(answer.data).toMatchObject({ code: 'VALIDATION_FAILED' });
        expect(answer.data.details).toHaveLength(1);
        expect(answer.data.details[0].property).toBe('room');
        expect(Object.keys(answer.data.details[0].constraints).sort()).toEqual(constraints);
      }
    }
    expect((await client.ask('join', { room: 'a' })).data).toMatchObject({ ok: true });
    expect((await client.ask('join', { room: 'x'.repeat(32) })).data).toMatchObject({ ok: true });

    const empty = await client.ask('say', { room: 'lobby', text: '' });
    expect(empty.data).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(empty.data.details).toEqual([{ property: 'text', constraints: { isNotEmpty: 'text should not be empty' } }]);

    const extra = await client.ask('say', { room: 'lobby', text: 'hi', admin: true });
    expect(extra.data.details).toEqual([
      { property: 'admin', constraints: { whitelistValidation: 'property admin should not exist' } },
    ]);
    expect((await client.ask('say', { room: 'lobby', text: 'x'.repeat(501) })).data).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await client.ask('nick', { name: 42 })).data).toMatchObject({ code: 'VALIDATION_FAILED' });

    // Nothing was broadcast, and the connection is still usable.
    expect(client.pending('said')).toEqual([]);
    expect(client.pending('joined')).toEqual([]);
    expect((await client.ask('say', { room: 'lobby', text: 'still here' })).data).toEqual({ ok: true });
  });

  it('keeps a resumed session in its rooms, and does not put it back in the lobby', async () => {
    const carol = await connect();
    await carol.next('welcome');
    await carol.ask('join', { room: 'keep' });
    await carol.ask('leave', { room: 'lobby' });
    const { sessionId, resumeToken } = carol.ready.data;
    carol.ws.terminate(); // a dropped connection: the session waits for a resume

    const dave = await connect();
    await dave.ask('join', { room: 'keep' });
    await dave.ask('say', { room: 'keep', text: 'while you were away' });

    const again = await connect({ sessionId, resumeToken, lastSeq: carol.lastSeq });
    expect(again.ready.data).toMatchObject({ sessionId, resumed: true, missed: false });
    expect((await again.next('said', 'keep')).data.text).toBe('while you were away'); // replayed
    expect((await again.next('welcome')).data).toEqual({ sessionId, name: expect.any(String), rooms: ['keep'] });
    expect((await again.ask('say', { room: 'keep', text: 'back' })).data).toEqual({ ok: true });
    expect((await again.ask('say', { room: 'lobby', text: 'no' })).data).toMatchObject({ code: 'FORBIDDEN' });
  });

  // Spends the instance's presence budget: keep it after the tests that expect presence lines.
  it('sends presence lines within the budget, and every chat line', async () => {
    const started = Date.now();
    const watcher = await connect();
    await watcher.ask('join', { room: 'busy' });
    const guests = await Promise.all(Array.from({ length: 3 * PRESENCE_BURST }, () => connect()));
    await Promise.all(guests.map((guest) => guest.ask('join', { room: 'busy' })));
    const refilled = Math.ceil(((Date.now() - started) / 1000) * PRESENCE_LINES_PER_SECOND);

    // Pushes are in order: once the chat line is here, every `joined` that was sent is too.
    await guests[0].ask('say', { room: 'busy', text: 'after the crowd' });
    expect((await watcher.next('said', 'busy')).data.text).toBe('after the crowd');
    const announced = watcher.pending('joined').length;
    expect(announced).toBeGreaterThan(0);
    expect(announced).toBeLessThanOrEqual(PRESENCE_BURST + refilled);
  });

  it('serves the health endpoint', async () => {
    const health = await fetch(`${base}/health/ws`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', connections: expect.any(Number) });
  });
});

describe('sample chat app, two instances sharing Redis', () => {
  const apps: INestApplication[] = [];
  const sockets: TestClient[] = [];
  const config: SampleConfig = { redisUrl: REDIS_URL, channelPrefix: uniquePrefix('sample') };

  const start = async (): Promise<string> => {
    const app = await createSampleApp({ logger: false }, config);
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/ws`;
  };

  const connect = async (url: string): Promise<ChatClient> => {
    const ws = new TestClient(url, 'rws.v1');
    sockets.push(ws);
    const client = new ChatClient(ws);
    await ws.open();
    ws.send({ event: '$hello', data: {} });
    client.ready = await ws.next((frame) => frame.event === '$ready');
    await client.next('welcome'); // sent once its lobby subscription is live
    return client;
  };

  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await Promise.all(apps.map((app) => app.close()));
  });

  it('delivers each line to the room members on both instances exactly once', async () => {
    const [one, two] = [await start(), await start()];
    const ann = await connect(one);
    const ben = await connect(two);
    const outsider = await connect(two);

    await ann.ask('join', { room: 'shared' });
    await ben.ask('join', { room: 'shared' }); // resolves once instance two receives the room
    expect((await ann.next('joined', 'shared')).data).toMatchObject({ room: 'shared' });

    await ann.ask('say', { room: 'shared', text: 'from ann' });
    await ben.ask('say', { room: 'shared', text: 'from ben' });
    for (const client of [ann, ben]) {
      const texts = [(await client.next('said', 'shared')).data.text, (await client.next('said', 'shared')).data.text];
      expect(texts.sort()).toEqual(['from ann', 'from ben']);
    }

    // A last line from each side; after both arrived everywhere, and a moment more, no copies.
    await ann.ask('say', { room: 'shared', text: 'end ann' });
    await ben.ask('say', { room: 'shared', text: 'end ben' });
    for (const client of [ann, ben]) {
      for (const text of ['end ann', 'end ben']) await client.ws.next((frame) => frame.event === 'said' && frame.data.text === text);
    }
    await sleep(200);
    expect(ann.pending('said')).toEqual([]);
    expect(ben.pending('said')).toEqual([]);
    expect(outsider.pending('said')).toEqual([]); // in the lobby only

    // The lobby spans both instances too.
    await outsider.ask('say', { room: 'lobby', text: 'lobby line' });
    for (const client of [ann, ben, outsider]) expect((await client.next('said', 'lobby')).data.text).toBe('lobby line');
    await sleep(200);
    for (const client of [ann, ben, outsider]) expect(client.pending('said')).toEqual([]);
  });
});

describe('sample file share', () => {
  let app: INestApplication;
  let url: string;
  const clients: ReliableWsClient[] = [];
  const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

  /** A client of the sample that has had its welcome (so it is in the lobby) and joined `rooms`. */
  const member = async (...rooms: string[]): Promise<{ client: ReliableWsClient; shared: SharedFileInfo[] }> => {
    const client = new ReliableWsClient(url, { WebSocket, reconnect: { maxRetries: 0 } });
    clients.push(client);
    const shared: SharedFileInfo[] = [];
    client.on('shared', (file: SharedFileInfo) => shared.push(file));
    await within(new Promise((resolve) => client.on('welcome', resolve)), 5000, 'welcome');
    for (const room of rooms) await client.request('join', { room });
    return { client, shared };
  };

  /** Offers and uploads `bytes`; resolves with the share's reply. */
  const share = async (client: ReliableWsClient, room: string, bytes: Uint8Array, name = 'notes.txt'): Promise<{ ok: true; id: string }> => {
    await client.request('offer', { room, name, type: 'text/plain', size: bytes.length });
    return client.upload('share', bytes);
  };

  const failure = (promise: Promise<unknown>): Promise<RequestError> =>
    promise.then(
      () => Promise.reject(new Error('expected a RequestError')),
      (error: RequestError) => error,
    );

  beforeAll(async () => {
    app = await createSampleApp({ logger: false }, { channelPrefix: 'unused' }); // in memory
    await app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/ws`;
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await app?.close();
  });

  it('shares a file with the room; fetch streams its bytes to the one who asks', async () => {
    const ann = await member('files');
    const ben = await member('files');
    const outsider = await member();
    const bytes = randomBytes(300_000); // several chunks of the default 64 KiB frames
    const reply = await share(ann.client, 'files', bytes);
    expect(reply).toEqual({ ok: true, id: expect.any(String) });
    const info = { id: reply.id, room: 'files', name: 'notes.txt', type: 'text/plain', size: bytes.length, from: expect.stringMatching(/^guest-/) };
    await waitUntil(() => ann.shared.length === 1 && ben.shared.length === 1, { what: 'the shared line' });
    expect(ben.shared).toEqual([info]);

    const got: Uint8Array[] = [];
    const progress: number[] = [];
    ben.client.on(`file:${reply.id}`, (data: Uint8Array) => got.push(data));
    ben.client.on('$progress', ({ event, received }) => event === `file:${reply.id}` && progress.push(received));
    const annGot: Uint8Array[] = [];
    ann.client.on(`file:${reply.id}`, (data: Uint8Array) => annGot.push(data));
    await expect(ben.client.request('fetch', { id: reply.id })).resolves.toEqual({ ok: true });
    await waitUntil(() => got.length === 1, { what: 'the stream' });
    expect(sha(got[0])).toBe(sha(bytes));
    expect(progress.at(-1)).toBe(bytes.length);

    expect(await failure(outsider.client.request('fetch', { id: reply.id }))).toMatchObject({ code: 'FORBIDDEN' });
    await sleep(100);
    expect(outsider.shared).toEqual([]);
    expect(annGot).toEqual([]);
  });

  it('validates offers: name, type, size, room; the upload must follow an offer and match its size', async () => {
    const { client } = await member('checks');
    const kept = app.get(ChatGateway).files.count;
    const offer = { room: 'checks', name: 'a.txt', type: 'text/plain', size: 10 };
    const invalid = [
      [{ ...offer, name: '../etc/passwd' }, 'name'],
      [{ ...offer, name: 'a\\b' }, 'name'],
      [{ ...offer, name: 'bell\u0007' }, 'name'],
      [{ ...offer, name: '' }, 'name'],
      [{ ...offer, name: 'x'.repeat(101) }, 'name'],
      [{ ...offer, type: 'text/html; charset=utf-8' }, 'type'],
      [{ ...offer, size: 0 }, 'size'],
      [{ ...offer, size: 1.5 }, 'size'],
      [{ ...offer, size: MAX_FILE_BYTES + 1 }, 'size'],
      [{ ...offer, room: 'Bad Room' }, 'room'],
    ] as const;
    for (const [data, property] of invalid) {
      const error = await failure(client.request('offer', data));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect((error.details as Array<{ property: string }>).map((detail) => detail.property)).toContain(property);
    }
    await expect(client.request('offer', { ...offer, type: '' })).resolves.toEqual({ ok: true }); // a type the browser does not know
    expect(await failure(client.request('offer', { ...offer, room: 'elsewhere' }))).toMatchObject({ code: 'FORBIDDEN' });

    expect(await failure(client.upload('share', new Uint8Array(11)))).toMatchObject({ code: 'BAD_MESSAGE', message: 'the offer said 10 bytes, the upload has 11' });
    // The offer was used up by the failed upload.
    expect(await failure(client.upload('share', new Uint8Array(10)))).toMatchObject({ code: 'BAD_MESSAGE', message: 'offer the file first' });
    // Beyond the transfer budget the library refuses the upload before a byte is sent.
    expect(await failure(client.upload('share', new Uint8Array(2 * MAX_FILE_BYTES + 1)))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });

    expect(await failure(client.request('fetch', { id: 'not-a-uuid' }))).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await failure(client.request('fetch', { id: randomUUID() }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(app.get(ChatGateway).files.count).toBe(kept);
  });

  it(`keeps at most ${MAX_SHELF_FILES} files per instance; the oldest go first`, async () => {
    const gateway = app.get(ChatGateway);
    const { client } = await member('many');
    const ids: string[] = [];
    for (let i = 0; i <= MAX_SHELF_FILES; i++) ids.push((await share(client, 'many', Buffer.from(`file ${i}`), `f${i}.txt`)).id);
    expect(gateway.files.count).toBe(MAX_SHELF_FILES);
    expect(await failure(client.request('fetch', { id: ids[0] }))).toMatchObject({ code: 'NOT_FOUND' });
    await expect(client.request('fetch', { id: ids.at(-1) })).resolves.toEqual({ ok: true });
  });

  it('bounds the bytes kept as well: adding a file evicts the oldest until both bounds hold', () => {
    const shelf = new FileShelf(10, 100);
    const info = { room: 'r', name: 'f', type: '', size: 40, from: 'x' };
    const first = shelf.add(info, Buffer.alloc(40));
    const second = shelf.add(info, Buffer.alloc(40));
    expect([shelf.count, shelf.bytes]).toEqual([2, 80]);
    const third = shelf.add(info, Buffer.alloc(40));
    expect([shelf.count, shelf.bytes]).toEqual([2, 80]);
    expect(shelf.get(first.id)).toBeUndefined();
    expect(shelf.get(second.id)?.bytes.length).toBe(40);
    expect(shelf.get(third.id)).toMatchObject({ ...info, id: third.id });
  });
});
