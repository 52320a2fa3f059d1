import { ForbiddenException } from '@nestjs/common';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import fc from 'fast-check';
import { of } from 'rxjs';
import { ReliableGateway } from '../lib/index.js';
import type { TestApp } from './support/app.js';
import { getHealth } from './support/health.js';
import { startAppWithoutRateLimit } from './support/lenient-app.js';
import { waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/**
 * Property: whatever a client sends, every frame gets exactly the answers the protocol (§3 of
 * DESIGN.md) prescribes — computed here by an oracle written from the contract, independent of
 * the library — and the server stays up.
 */

@ReliableGateway({ path: '/ws' })
class FuzzGateway {
  // Replies are wrapped so that random data can never look like an `{ event, data }` reply.
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return { echoed: data };
  }

  @SubscribeMessage('async-echo')
  async asyncEcho(@MessageBody() data: unknown) {
    await new Promise((resolve) => setImmediate(resolve));
    return { echoed: data };
  }

  @SubscribeMessage('obs')
  obs(@MessageBody() data: unknown) {
    return of({ echoed: data });
  }

  @SubscribeMessage('nothing')
  nothing() {}

  @SubscribeMessage('boom')
  boom() {
    throw new Error('internal detail');
  }

  @SubscribeMessage('forbidden')
  forbidden() {
    throw new ForbiddenException('no');
  }
}

const REPLYING = new Set(['echo', 'async-echo', 'obs']);
const ERROR_BY_EVENT = new Map([
  ['boom', 'INTERNAL'],
  ['forbidden', 'FORBIDDEN'],
]);
const KNOWN_EVENTS = [...REPLYING, 'nothing', ...ERROR_BY_EVENT.keys()];
/** Names that trip handler lookups done with plain objects. */
const PROTOTYPE_NAMES = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'];
/** Under the default 64 KiB payload limit, with room to spare. */
const MAX_FRAME_BYTES = 60_000;

// ---------------------------------------------------------------------------------------------
// The oracle: the answer key a frame must produce, or none. Keys look like `<ref>|<content>`.
// ---------------------------------------------------------------------------------------------

const refKey = (ref: unknown): string => (ref === undefined ? '-' : JSON.stringify(ref));

function isValidId(id: unknown): boolean {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0;
  return typeof id === 'string' && id.length >= 1 && id.length <= 128;
}

/**
 * The expected answer of a text frame: a key, `null` for no answer, or `'skip'` for frames whose
 * answer the contract leaves open (they are not sent).
 */
function expectedForText(text: string): string | null | 'skip' {
  const bad = (ref?: unknown) => `${refKey(ref)}|error:BAD_MESSAGE`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return bad();
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return bad();
  const message = parsed as Record<string, unknown>;
  const hasId = Object.prototype.hasOwnProperty.call(message, 'id');
  const id = hasId ? message.id : undefined;
  if (hasId && !isValidId(id)) return bad();
  const { event, data } = message;
  if (typeof event !== 'string' || event.length === 0 || event.length > 128) return bad(id);
  const ref = refKey(id);
  if (event.startsWith('$')) {
    if (event === '$ping') return `-|pong:${JSON.stringify(data ?? null)}`;
    if (event === '$hello') return `${ref}|error:BAD_MESSAGE`; // the session has already started
    if (event === '$ack') return hasId ? 'skip' : null;
    if (event === '$auth') return 'skip'; // depends on the auth configuration
    return `${ref}|error:UNKNOWN_EVENT`;
  }
  if (REPLYING.has(event)) return `${ref}|reply:${event}:${JSON.stringify({ echoed: data })}`;
  if (event === 'nothing') return hasId ? `${ref}|ack` : null;
  const code = ERROR_BY_EVENT.get(event);
  if (code) return `${ref}|error:${code}`;
  return `${ref}|error:UNKNOWN_EVENT`;
}

/** The key of a frame the server sent, in the oracle's terms. */
function keyOfAnswer(frame: Frame): string {
  expect(frame).not.toHaveProperty('seq'); // answers are never sequenced
  if (frame.event === '$error') {
    expect(frame).not.toHaveProperty('ref');
    expect(typeof frame.data?.message).toBe('string');
    return `${refKey(frame.data?.ref)}|error:${frame.data?.code}`;
  }
  if (frame.event === '$ack') {
    expect(frame).not.toHaveProperty('ref');
    expect(Object.keys(frame.data ?? {})).toEqual(['ref']);
    return `${refKey(frame.data.ref)}|ack`;
  }
  if (frame.event === '$pong') {
    expect(frame).not.toHaveProperty('ref');
    return `-|pong:${JSON.stringify(frame.data)}`;
  }
  return `${refKey(frame.ref)}|reply:${frame.event}:${JSON.stringify(frame.data)}`;
}

function multiset(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** Human-readable difference of two multisets (empty when equal). */
function difference(expected: string[], actual: string[]): string[] {
  const want = multiset(expected);
  const got = multiset(actual);
  const out: string[] = [];
  for (const key of new Set([...want.keys(), ...got.keys()])) {
    const w = want.get(key) ?? 0;
    const g = got.get(key) ?? 0;
    if (w !== g) out.push(`${key.slice(0, 200)}: expected ${w}, got ${g}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Frame generators.
// ---------------------------------------------------------------------------------------------

type IdSpec = { kind: 'num' } | { kind: 'str' } | { kind: 'none' } | { kind: 'raw'; value: unknown };

type FrameSpec =
  | { t: 'string'; text: string }
  | { t: 'json'; value: unknown }
  | { t: 'envelope'; event: unknown; hasEvent: boolean; data: unknown; id: IdSpec; extra: Record<string, unknown> }
  | { t: 'binary'; bytes: Uint8Array }
  | { t: 'binary-envelope'; event: string; data: unknown };

const anyString = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ maxLength: 100, unit: 'grapheme' }),
  fc.string({ maxLength: 100, unit: 'binary' }),
);

const eventArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KNOWN_EVENTS) },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
  {
    weight: 3,
    arbitrary: fc.oneof(
      fc.constantFrom('$ping', '$hello', '$ack', '$foo', '$', '$$', '$echo', '$ready', '$error', '$pong'),
      fc.string({ maxLength: 20 }).map((s) => `$${s}`),
    ),
  },
  { weight: 1, arbitrary: fc.string({ minLength: 120, maxLength: 136 }) }, // around the 128 limit
  { weight: 1, arbitrary: fc.string({ minLength: 129, maxLength: 5000 }) }, // huge
  { weight: 1, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
    ),
  },
);

const dataArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) }, // no `data` key at all
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8000 }) },
);

const idArb: fc.Arbitrary<IdSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<IdSpec>({ kind: 'num' }) },
  { weight: 4, arbitrary: fc.constant<IdSpec>({ kind: 'str' }) },
  { weight: 2, arbitrary: fc.constant<IdSpec>({ kind: 'none' }) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.integer({ max: -1 }),
        fc.double().filter((d) => !Number.isInteger(d)),
        fc.constant(''),
        fc.string({ minLength: 129, maxLength: 200 }),
        fc.boolean(),
        fc.constant(null),
        fc.array(fc.nat(), { maxLength: 2 }),
        fc.dictionary(fc.string({ maxLength: 3 }), fc.nat(), { maxKeys: 2 }),
        fc.constant(2 ** 53 + 2),
      )
      .map((value): IdSpec => ({ kind: 'raw', value })),
  },
);

const RESERVED_KEYS = new Set(['event', 'data', 'id', '__proto__']);

const frameArb: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 2, arbitrary: anyString.map((text): FrameSpec => ({ t: 'string', text })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value): FrameSpec => ({ t: 'json', value })) },
  {
    weight: 24,
    arbitrary: fc
      .record({
        event: eventArb,
        data: dataArb,
        id: idArb,
        extra: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
        dropEvent: fc.integer({ min: 0, max: 19 }), // 1 in 20 envelopes has no event at all
      })
      .map(({ dropEvent, ...rest }): FrameSpec => ({ t: 'envelope', ...rest, hasEvent: dropEvent !== 0 })),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes): FrameSpec => ({ t: 'binary', bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ event: fc.constantFrom(...KNOWN_EVENTS), data: fc.jsonValue({ maxDepth: 2 }) })
      .map((r): FrameSpec => ({ t: 'binary-envelope', ...r })),
  },
);

// ---------------------------------------------------------------------------------------------
// Rendering a spec into a wire frame with a fresh, unique id for this client.
// ---------------------------------------------------------------------------------------------

interface Rendered {
  payload: string | Buffer;
  binary: boolean;
  expected: string | null;
}

class Renderer {
  private counter = 0;

  constructor(private readonly clientIndex: number) {}

  render(spec: FrameSpec): Rendered | undefined {
    if (spec.t === 'binary') return { payload: Buffer.from(spec.bytes), binary: true, expected: '-|error:BAD_MESSAGE' };
    if (spec.t === 'binary-envelope') {
      const text = JSON.stringify({ event: spec.event, data: spec.data, id: this.nextNumericId() });
      return { payload: Buffer.from(text), binary: true, expected: '-|error:BAD_MESSAGE' };
    }
    let text: string;
    if (spec.t === 'string') text = spec.text;
    else if (spec.t === 'json') text = JSON.stringify(spec.value);
    else {
      const message: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(spec.extra)) if (!RESERVED_KEYS.has(key)) message[key] = value;
      if (spec.hasEvent) message.event = spec.event;
      if (spec.data !== undefined) message.data = spec.data;
      if (spec.id.kind === 'num') message.id = this.nextNumericId();
      else if (spec.id.kind === 'str') message.id = `c${this.clientIndex}-${++this.counter}`;
      else if (spec.id.kind === 'raw') message.id = spec.id.value;
      text = JSON.stringify(message);
    }
    // What the server receives: the UTF-8 encoding of the string (lone surrogates become U+FFFD).
    const received = Buffer.from(text, 'utf8');
    if (received.length > MAX_FRAME_BYTES) return undefined;
    const expected = expectedForText(received.toString('utf8'));
    if (expected === 'skip') return undefined;
    return { payload: text, binary: false, expected };
  }

  /** Numeric ids far from the small numbers random data tends to contain. */
  private nextNumericId(): number {
    return 7_000_000_000 + this.clientIndex * 10_000_000 + ++this.counter;
  }
}

// ---------------------------------------------------------------------------------------------

const CLIENTS = 4;
const NUM_RUNS = 5;
const FRAMES_PER_CLIENT = { minLength: 140, maxLength: 180 };

describe('robustness (property-based)', () => {
  let t: TestApp;
  let totalFrames = 0;

  beforeAll(async () => {
    t = await startAppWithoutRateLimit({}, [FuzzGateway]);
  });
  afterAll(() => t?.close());

  it('every random frame gets exactly the answer the protocol prescribes, on concurrent clients', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(frameArb, FRAMES_PER_CLIENT), { minLength: CLIENTS, maxLength: CLIENTS }),
        async (perClient) => {
          const clients = await Promise.all(perClient.map(() => TestClient.ready(t.wsUrl('/ws'))));
          try {
            const expectations = perClient.map((specs, index) => {
              const renderer = new Renderer(index);
              const expected: string[] = [];
              const client = clients[index];
              for (const spec of specs) {
                const frame = renderer.render(spec);
                if (!frame) continue;
                client.raw.send(frame.payload, { binary: frame.binary });
                totalFrames++;
                if (frame.expected !== null) expected.push(frame.expected);
              }
              return expected;
            });

            await Promise.all(
              clients.map((client, index) =>
                waitUntil(() => client.frames.length >= expectations[index].length, {
                  timeoutMs: 5000,
                  what: `client ${index} to receive ${expectations[index].length} answers (got ${client.frames.length})`,
                }),
              ),
            );
            // A final well-formed request flushes anything still in the pipeline behind it.
            for (const [index, client] of clients.entries()) {
              expect(await client.request('echo', 'sentinel', `sentinel-${index}`)).toEqual({
                event: 'echo',
                data: { echoed: 'sentinel' },
                ref: `sentinel-${index}`,
              });
            }
            for (const [index, client] of clients.entries()) {
              const actual = client.frames.map(keyOfAnswer);
              expect(difference(expectations[index], actual)).toEqual([]);
              expect(client.raw.readyState).toBe(client.raw.OPEN);
            }
          } finally {
            for (const client of clients) client.close();
          }
        },
      ),
      { numRuns: NUM_RUNS, endOnFailure: true },
    );
    expect(totalFrames).toBeGreaterThanOrEqual(2500);

    // The server is still up: a well-behaved client gets correct replies…
    const good = await TestClient.ready(t.wsUrl('/ws'));
    expect(await good.request('echo', { ok: 1 }, 1)).toEqual({ event: 'echo', data: { echoed: { ok: 1 } }, ref: 1 });
    expect(await good.request('nothing', null, 2)).toEqual({ event: '$ack', data: { ref: 2 } });
    expect((await good.request('boom', null, 3)).data).toEqual({ code: 'INTERNAL', message: 'Internal error', ref: 3 });
    good.send({ event: '$ping', data: 'p' });
    expect(await good.next((f) => f.event === '$pong')).toEqual({ event: '$pong', data: 'p' });
    // …the health endpoint answers 200, and every closed fuzz connection was cleaned up.
    const health = await waitUntil(
      async () => {
        const h = await getHealth(t.httpUrl('/health/ws'));
        return h.body?.connections === 1 ? h : undefined;
      },
      { timeoutMs: 3000, what: 'the fuzz connections to be released' },
    );
    expect(health).toEqual({ status: 200, body: { status: 'ok', connections: 1 } });
    good.close();
  }, 20_000);

  it('the oracle itself agrees with hand-written cases', () => {
    expect(expectedForText('{bad')).toBe('-|error:BAD_MESSAGE');
    expect(expectedForText('[]')).toBe('-|error:BAD_MESSAGE');
    expect(expectedForText('{"event":"echo","id":-1}')).toBe('-|error:BAD_MESSAGE');
    expect(expectedForText('{"event":"","id":3}')).toBe('3|error:BAD_MESSAGE');
    expect(expectedForText('{"event":"echo","data":1,"id":"a"}')).toBe('"a"|reply:echo:{"echoed":1}');
    expect(expectedForText('{"event":"nothing"}')).toBeNull();
    expect(expectedForText('{"event":"nothing","id":2}')).toBe('2|ack');
    expect(expectedForText('{"event":"$ping"}')).toBe('-|pong:null');
    expect(expectedForText('{"event":"$nope","id":4}')).toBe('4|error:UNKNOWN_EVENT');
    expect(expectedForText('{"event":"boom"}')).toBe('-|error:INTERNAL');
  });
});
