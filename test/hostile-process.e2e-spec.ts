import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { refOf } from './support/answers.js';
import { buildLibrary, type BuiltLibrary } from './support/build-lib.js';
import { getHealth } from './support/health.js';
import { hugeNumbersText, nestedText, prototypeBombText } from './support/hostile-json.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/**
 * Issue 10, point 1: a server in a child process of its own (on the compiled library) takes
 * thousands of hostile frames from several connections — the 5,000-level `$ping`, deep echo data,
 * return values JSON cannot carry, floods while `verify` hangs, random bytes — and is still alive
 * and answering afterwards, with its memory bounded and its prototypes untouched.
 */

const SUPPORT = resolve(dirname(fileURLToPath(import.meta.url)), 'support');
const AUTH_TIMEOUT_MS = 1000;
const SLOW_VERIFY_MS = 3000;
const MAX_RSS_BYTES = 300 * 1024 * 1024;
/** Frames held while credentials are checked, at most (DESIGN.md §8.1). */
const MAX_HELD_FRAMES = 32;
const MAX_HELD_BYTES = 256 * 1024;

const DEEP_PING = (id: string): string => `{"event":"$ping","data":${nestedText(5000)},"id":"${id}"}`;
const canonical = (json: string): string => JSON.stringify(JSON.parse(json));

interface Probe {
  rss: number;
  heapUsed: number;
  prototypeChanges: string[];
  inherited: string[];
}

interface ServerChild {
  process: ChildProcess;
  port: number;
  output(): string;
}

async function startServer(lib: BuiltLibrary): Promise<ServerChild> {
  const child = spawn(process.execPath, [resolve(SUPPORT, 'hostile-app.mjs')], {
    env: {
      ...process.env,
      RWS_LIB: lib.indexJs,
      RWS_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS),
      RWS_SLOW_VERIFY_MS: String(SLOW_VERIFY_MS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const port = await waitUntil(() => Number(/LISTENING (\d+)/.exec(out)?.[1]) || undefined, {
    timeoutMs: 30000,
    intervalMs: 50,
    what: 'the hostile app to listen',
  }).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}; child output:\n${out}`);
  });
  return { process: child, port, output: () => out };
}

/** The key of an answer: what it says, without its ref. */
function answerKey(frame: Frame): string {
  if (frame.event === '$error') return `error:${frame.data?.code}`;
  if (frame.event === '$ack') return 'ack';
  if (frame.event === '$pong') return `pong:${JSON.stringify(frame.data)}`;
  return `reply:${frame.event}:${JSON.stringify(frame.data)}`;
}

// ---------------------------------------------------------------------------------------------
// The hostile frames: one kind after another, each with the answer it must get.
// ---------------------------------------------------------------------------------------------

interface HostileFrame {
  payload: string | Buffer;
  binary: boolean;
  /** The answer key a frame with an id must get (once); undefined for frames without an id. */
  answer?: string;
}

/** A small deterministic generator (mulberry32), so that a failure can be run again. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(random: () => number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
}

const LIMIT_DATA = nestedText(63, 'o'); // with the envelope: 64 levels, the limit
const OVER_LIMIT_DATA = nestedText(64, 'o');
const PROTOTYPE_BOMB = prototypeBombText(15);
const HUGE_NUMBERS = hugeNumbersText();

type HostileKind = (id: string, random: () => number) => HostileFrame;

const withId = (text: string, answer: string): HostileFrame => ({ payload: text, binary: false, answer });

const HOSTILE_KINDS: HostileKind[] = [
  (id) => withId(DEEP_PING(id), 'error:BAD_MESSAGE'),
  (id) => withId(`{"event":"echo","data":${nestedText(5000, 'ao')},"id":"${id}"}`, 'error:BAD_MESSAGE'),
  (id) => withId(`{"event":"$auth","data":${nestedText(10000)},"id":"${id}"}`, 'error:BAD_MESSAGE'),
  (id) => withId(`{"event":"echo","data":${LIMIT_DATA},"id":"${id}"}`, `reply:echo:${canonical(LIMIT_DATA)}`),
  (id) => withId(`{"event":"echo","data":${OVER_LIMIT_DATA},"id":"${id}"}`, 'error:BAD_MESSAGE'),
  (id) =>
    withId(
      `{"__proto__":{"polluted":"yes"},"event":"echo","constructor":{"prototype":{"isAdmin":"yes"}},"data":${PROTOTYPE_BOMB},"id":"${id}"}`,
      `reply:echo:${canonical(PROTOTYPE_BOMB)}`,
    ),
  (id) => withId(`{"event":"echo","data":${HUGE_NUMBERS},"id":"${id}"}`, `reply:echo:${canonical(HUGE_NUMBERS)}`),
  (id) => withId(`{"event":"circular","id":"${id}"}`, 'error:INTERNAL'),
  (id) => withId(`{"event":"bigint","id":"${id}"}`, 'error:INTERNAL'),
  (id) => withId(`{"event":"too-deep","id":"${id}"}`, 'error:INTERNAL'),
  (id) => withId(`{"event":"push-circular","id":"${id}"}`, 'error:INTERNAL'),
  (id, random) => withId(`{"event":"$ack","data":{"seq":${JSON.stringify(randomBytes(random, 8).toString('latin1'))}},"id":"${id}"}`, 'ack'),
  (id) => withId(`{"event":"$ack","data":{"seq":1e308},"id":"${id}"}`, 'ack'),
  (id) => withId(`{"event":"$x","data":${PROTOTYPE_BOMB},"id":"${id}"}`, 'error:UNKNOWN_EVENT'),
  (id) => withId(`{"event":"$hello","data":{"token":"user-1"},"id":"${id}"}`, 'error:BAD_MESSAGE'),
  (id) => withId(`{"event":"$ping","data":${HUGE_NUMBERS},"id":"${id}"}`, `pong:${canonical(HUGE_NUMBERS)}`),
  (_id, random) => ({ payload: randomBytes(random, 1 + Math.floor(random() * 300)), binary: true }),
  (_id, random) => ({ payload: `x${randomBytes(random, Math.floor(random() * 300)).toString('latin1')}`, binary: false }),
];

function hostileFrames(connection: number, count: number): HostileFrame[] {
  const random = seededRandom(1000 + connection);
  return Array.from({ length: count }, (_, i) => HOSTILE_KINDS[i % HOSTILE_KINDS.length](`c${connection}-${i}`, random));
}

/**
 * What went wrong with a connection's answers: every frame with an id answered exactly once with
 * its answer; every frame without one answered `BAD_MESSAGE` without a ref; nothing else.
 */
function answerProblems(sent: HostileFrame[], ids: string[], frames: Frame[]): string[] {
  const problems: string[] = [];
  const byRef = new Map<unknown, Frame[]>();
  for (const frame of frames) byRef.set(refOf(frame), [...(byRef.get(refOf(frame)) ?? []), frame]);
  sent.forEach((frame, i) => {
    if (frame.answer === undefined) return;
    const answers = (byRef.get(ids[i]) ?? []).map(answerKey);
    if (answers.length !== 1 || answers[0] !== frame.answer) {
      problems.push(`${ids[i]}: expected ${frame.answer.slice(0, 80)}, got [${answers.map((a) => a.slice(0, 80)).join(', ')}]`);
    }
  });
  const unreferenced = (byRef.get(undefined) ?? []).map(answerKey);
  const withoutId = sent.filter((frame) => frame.answer === undefined).length;
  if (unreferenced.length !== withoutId || unreferenced.some((key) => key !== 'error:BAD_MESSAGE')) {
    problems.push(`frames without id: ${withoutId}, answers without ref: ${JSON.stringify(unreferenced.slice(0, 5))}…`);
  }
  const internal = frames.filter((f) => f.data?.code === 'INTERNAL' && f.data?.message !== 'Internal error');
  if (internal.length > 0) problems.push(`INTERNAL errors that say more than "Internal error": ${internal.length}`);
  const known = new Set<unknown>([undefined, ...ids]);
  const strays = [...byRef.keys()].filter((ref) => !known.has(ref));
  if (strays.length > 0) problems.push(`answers to ids never sent: ${JSON.stringify(strays.slice(0, 5))}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------

describe('hostile input against a server in its own process', () => {
  let lib: BuiltLibrary;
  let server: ServerChild;
  const clients: TestClient[] = [];

  const url = (): string => `ws://127.0.0.1:${server.port}/ws`;
  const probe = async (timeoutMs?: number): Promise<Probe> =>
    (await getHealth(`http://127.0.0.1:${server.port}/probe`, timeoutMs)).body as Probe;
  const isAlive = (): boolean => server.process.exitCode === null && server.process.signalCode === null;

  /** A connection that has not authenticated (it must send `$hello` first). */
  async function anonymous(): Promise<TestClient> {
    const client = new TestClient(url());
    clients.push(client);
    await client.open();
    return client;
  }

  async function authenticated(user: number): Promise<TestClient> {
    const client = await anonymous();
    client.send({ event: '$hello', data: { token: `user-${user}` } });
    await client.next((frame) => frame.event === '$ready');
    return client;
  }

  beforeAll(async () => {
    lib = await buildLibrary();
    server = await startServer(lib);
  }, 180000);

  afterEach(() => {
    for (const client of clients.splice(0)) client.terminate();
  });

  afterAll(async () => {
    if (server && isAlive()) {
      const exited = new Promise((done) => server.process.once('exit', done));
      server.process.kill('SIGKILL');
      await within(exited, 5000, 'the hostile app to exit');
    }
    lib?.remove();
  });

  it('answers the 5,000-level $ping of the issue, sent before any authentication, with BAD_MESSAGE', async () => {
    const client = await anonymous();
    client.send(DEEP_PING('deep'));
    expect(await client.next()).toEqual({
      event: '$error',
      data: { code: 'BAD_MESSAGE', message: expect.any(String), ref: 'deep' },
    });
    client.send(`{"event":"$ping","data":${nestedText(5000)}}`);
    expect(await client.next()).toEqual({ event: '$error', data: { code: 'BAD_MESSAGE', message: expect.any(String) } });
    expect(await client.request('$ping', { still: 'here' }, 'after')).toEqual({ event: '$pong', data: { still: 'here' }, ref: 'after' });
    expect(isAlive()).toBe(true);
  });

  it('answers return values JSON cannot carry with INTERNAL to their ref, and deep echo data with BAD_MESSAGE', async () => {
    const client = await authenticated(1);
    const internal = (ref: string) => ({ event: '$error', data: { code: 'INTERNAL', message: 'Internal error', ref } });
    expect(await client.request('circular', null, 'circular')).toEqual(internal('circular'));
    expect(await client.request('bigint', null, 'bigint')).toEqual(internal('bigint'));
    expect(await client.request('too-deep', null, 'too-deep')).toEqual(internal('too-deep'));
    expect(await client.request('push-circular', null, 'push-circular')).toEqual(internal('push-circular'));
    client.send(`{"event":"echo","data":${nestedText(5000)},"id":"deep-echo"}`);
    expect((await client.next((f) => refOf(f) === 'deep-echo')).data).toEqual({
      code: 'BAD_MESSAGE',
      message: expect.any(String),
      ref: 'deep-echo',
    });
    client.send(`{"event":"echo","data":${LIMIT_DATA},"id":"at-limit"}`);
    expect(await client.next((f) => refOf(f) === 'at-limit')).toEqual({ event: 'echo', data: JSON.parse(LIMIT_DATA), ref: 'at-limit' });
    expect(isAlive()).toBe(true);
  });

  it('answers INTERNAL to handlers that throw, reject with or return values that cannot be looked at, and refuses such a verify with 4001', async () => {
    const client = await authenticated(2);
    const internal = (ref: string) => ({ event: '$error', data: { code: 'INTERNAL', message: 'Internal error', ref } });
    const cases: Array<[string, string]> = [];
    for (const kind of ['null-prototype', 'throwing-tostring', 'revoked-proxy']) {
      for (const event of ['throw-odd', 'reject-odd', 'error-odd-later']) cases.push([event, kind]);
    }
    for (const kind of ['revoked-proxy', 'throwing-then', 'throwing-lift']) cases.push(['return-odd', kind]);
    for (const [event, kind] of cases) {
      const ref = `${event}:${kind}`;
      expect(await client.request(event, kind, ref)).toEqual(internal(ref));
    }
    const refused = await anonymous();
    refused.send({ event: '$hello', data: { token: 'throw-odd' } });
    expect((await refused.closed()).code).toBe(4001);
    const atHandshake = new TestClient(`${url()}?token=throw-odd`);
    clients.push(atHandshake);
    await atHandshake.open();
    expect((await atHandshake.closed()).code).toBe(4001);
    expect(await client.request('echo', 'still here', 'after')).toEqual({ event: 'echo', data: 'still here', ref: 'after' });
    expect(isAlive()).toBe(true);
  });

  it(`closes with 1008 a connection that sends more than ${MAX_HELD_FRAMES} frames while verify hangs`, async () => {
    const client = await anonymous();
    client.send({ event: '$hello', data: { token: 'hang' } });
    for (let i = 0; i <= MAX_HELD_FRAMES; i++) client.send({ event: 'echo', data: i, id: i });
    expect((await client.closed()).code).toBe(1008);
    expect(client.frames).toEqual([]);
  });

  it('closes with 1008 a connection that sends more than 256 KiB while verify hangs', async () => {
    const client = await anonymous();
    client.send({ event: '$hello', data: { token: 'hang' } });
    const frame = JSON.stringify({ event: 'echo', data: 'x'.repeat(60_000) });
    const frames = Math.ceil(MAX_HELD_BYTES / frame.length) + 1; // far fewer than 32
    for (let i = 0; i < frames; i++) client.send(frame);
    expect((await client.closed()).code).toBe(1008);
  });

  it('closes with 1008 a live connection that floods while its $auth refresh hangs', async () => {
    const client = await authenticated(2);
    client.send({ event: '$auth', data: { token: 'hang' }, id: 'refresh' });
    for (let i = 0; i <= MAX_HELD_FRAMES; i++) client.send({ event: 'echo', data: i, id: i });
    expect((await client.closed()).code).toBe(1008);
  });

  it('closes with 4008 a connection whose verify is slower than auth.timeoutMs, on time', async () => {
    const slow = await anonymous();
    const hanging = await anonymous();
    const started = Date.now();
    slow.send({ event: '$hello', data: { token: 'slow' } });
    hanging.send({ event: '$hello', data: { token: 'hang' } });
    hanging.send({ event: '$ping', data: 'held', id: 'held' }); // within the bounds: held, not closed
    expect((await slow.closed(SLOW_VERIFY_MS)).code).toBe(4008);
    expect((await hanging.closed(SLOW_VERIFY_MS)).code).toBe(4008);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(SLOW_VERIFY_MS);
    expect(slow.frames.filter((f) => f.event === '$ready')).toEqual([]);
  });

  it('closes only the offending connection for a text frame that is not UTF-8 (1007) and for one over maxPayloadBytes (1009)', async () => {
    const notUtf8 = await authenticated(3);
    notUtf8.raw.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await notUtf8.closed()).code).toBe(1007);
    const tooBig = await authenticated(4);
    tooBig.send({ event: 'echo', data: 'x'.repeat(70_000) });
    expect((await tooBig.closed()).code).toBe(1009);
    expect(isAlive()).toBe(true);
  });

  it('survives thousands of hostile frames from several connections: alive, answering, bounded, untouched', async () => {
    const CONNECTIONS = 8;
    const FRAMES_PER_CONNECTION = 450;
    const FLOOD_CYCLES = 40;
    const ANSWERS_TIMEOUT_MS = 30000;
    const logged = server.output().length; // what the earlier tests' handlers logged is theirs
    const before = await probe();
    expect(before.prototypeChanges).toEqual([]);

    const rssSamples: number[] = [];
    let sampling = true;
    // The server reads each connection's backlog of frames in one go and answers HTTP in between:
    // the 200 "too-deep" replies alone cost it some 15 ms each (the handler builds 100,000 levels
    // and JSON.stringify runs out of stack), so a probe may wait seconds on a loaded machine.
    const sampler = (async () => {
      for (let i = 0; i < 600 && sampling; i++) {
        rssSamples.push((await probe(ANSWERS_TIMEOUT_MS)).rss);
        await sleep(100);
      }
    })();

    const hostile = await Promise.all(Array.from({ length: CONNECTIONS }, (_, c) => authenticated(100 + c)));
    const sent = hostile.map((client, c) => {
      const frames = hostileFrames(c, FRAMES_PER_CONNECTION);
      for (const frame of frames) client.raw.send(frame.payload, { binary: frame.binary });
      return frames;
    });
    const floodCloses = floodWhileVerifyHangs(FLOOD_CYCLES);

    const expectedAnswers = sent.map((frames) => frames.length);
    await waitUntil(() => hostile.every((client, c) => client.frames.length >= expectedAnswers[c]), {
      timeoutMs: ANSWERS_TIMEOUT_MS,
      intervalMs: 50,
      what: 'every hostile frame to be answered',
    });
    // Beside the flood the $hello deadline may pass before a connection's extra frames are read: 4008 then.
    expect((await floodCloses).filter((code) => code !== 1008 && code !== 4008)).toEqual([]);
    // A well-formed request after all that is answered correctly, on every hostile connection.
    for (const [c, client] of hostile.entries()) {
      expect(await client.request('echo', { fine: c }, `well-formed-${c}`)).toEqual({ event: 'echo', data: { fine: c }, ref: `well-formed-${c}` });
    }
    sampling = false;
    await sampler;

    const problems = hostile.map((client, c) =>
      answerProblems(
        sent[c],
        sent[c].map((_, i) => `c${c}-${i}`),
        client.frames.filter((f) => refOf(f) !== `well-formed-${c}`),
      ),
    );
    expect(problems).toEqual(hostile.map(() => []));
    expect(sent.flat().length + FLOOD_CYCLES * (MAX_HELD_FRAMES + 2)).toBeGreaterThanOrEqual(4000);

    expect(isAlive()).toBe(true);
    const fresh = await authenticated(999);
    expect(await fresh.request('echo', 'hello', 1)).toEqual({ event: 'echo', data: 'hello', ref: 1 });
    expect(await getHealth(`http://127.0.0.1:${server.port}/health/ws`)).toEqual({
      status: 200,
      body: { status: 'ok', connections: CONNECTIONS + 1 },
    });
    const after = await probe();
    expect(Math.max(...rssSamples, after.rss)).toBeLessThan(MAX_RSS_BYTES);
    expect(rssSamples.length).toBeGreaterThan(0); // sampled while the frames flowed (how often depends on the load)
    expect({ changes: after.prototypeChanges, inherited: after.inherited }).toEqual({ changes: [], inherited: [] });
    // Logged without stack traces and without the payloads (DESIGN.md §8.1: "logged once, without the payload").
    const output = server.output().slice(logged);
    expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(output).not.toMatch(/RangeError|\[\[\[\[|polluted|isAdmin/);
  }, 90000);

  /** Connections that each send `$hello` with a hanging token and then too many frames; their close codes. */
  async function floodWhileVerifyHangs(cycles: number): Promise<number[]> {
    const codes: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const client = await anonymous();
      client.send({ event: '$hello', data: { token: 'hang' } });
      for (let f = 0; f <= MAX_HELD_FRAMES + 1; f++) client.send({ event: 'echo', data: nestedText(20), id: f });
      codes.push((await client.closed()).code);
      clients.splice(clients.indexOf(client), 1);
    }
    return codes;
  }
});
