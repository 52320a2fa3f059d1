import { ForbiddenException } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { IsOptional, IsString } from 'class-validator';
import fc from 'fast-check';
import { of } from 'rxjs';
import { ReliableGateway, type ReliableSocket } from '../lib/index.js';
import type { TestApp } from './support/app.js';
import { getHealth } from './support/health.js';
import {
  deeplyNestedValue,
  HUGE_NUMBER_TEXTS,
  hugeNumbersText,
  inheritedProbes,
  nestedText,
  PROBE_KEYS,
  prototypeBombText,
  prototypeChanges,
  prototypeSnapshot,
  textDepth,
} from './support/hostile-json.js';
import { startAppWithoutRateLimit } from './support/lenient-app.js';
import { memoryAfterGc, type MemoryAfterGc } from './support/memory.js';
import { waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/**
 * Property: whatever a client sends — random JSON, garbage envelopes, random bytes, frames nested
 * around and far beyond the depth limit, huge numbers, prototype keys at every level, `$`-events
 * with garbage — every frame gets exactly the answers the protocol (§3 and §8.1 of DESIGN.md)
 * prescribes, computed here by an oracle written from the contract, independent of the library;
 * the server stays up, the built-in prototypes stay untouched and memory stays bounded.
 */

class NoteDto {
  @IsOptional()
  @IsString()
  text?: string | null;
}

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

  @SubscribeMessage('circular')
  circular() {
    const value: Record<string, unknown> = { a: 1 };
    value.self = value;
    return value;
  }

  @SubscribeMessage('bigint')
  bigint() {
    return { n: 10n };
  }

  @SubscribeMessage('too-deep')
  tooDeep() {
    return deeplyNestedValue(100_000);
  }

  @SubscribeMessage('push-circular')
  pushCircular(@ConnectedSocket() socket: ReliableSocket) {
    const value: Record<string, unknown> = {};
    value.self = value;
    socket.send('never', value);
  }

  @SubscribeMessage('dto')
  dto(@MessageBody() body: NoteDto) {
    return { noted: body.text ?? null };
  }
}

/** The contract's default `maxMessageDepth`: the envelope is level 1. */
const MAX_DEPTH = 64;
const REPLYING = new Set(['echo', 'async-echo', 'obs']);
const ERROR_BY_EVENT = new Map([
  ['boom', 'INTERNAL'],
  ['forbidden', 'FORBIDDEN'],
  ['circular', 'INTERNAL'],
  ['bigint', 'INTERNAL'],
  ['too-deep', 'INTERNAL'],
  ['push-circular', 'INTERNAL'],
]);
const KNOWN_EVENTS = [...REPLYING, 'nothing', 'dto', ...ERROR_BY_EVENT.keys()];
/** Names that trip handler lookups done with plain objects. */
const PROTOTYPE_NAMES = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'prototype'];
const SYSTEM_NAMES = ['$ping', '$hello', '$ack', '$auth', '$x', '$foo', '$', '$$', '$echo', '$ready', '$error', '$pong'];
/** Under the default 64 KiB payload limit, with room to spare. */
const MAX_FRAME_BYTES = 60_000;

// ---------------------------------------------------------------------------------------------
// The oracle: the answer a frame must produce, or none. An answer key looks like
// `<ref>|<content>`; an expectation lists the keys it accepts (a key ending in `*` is a prefix).
// ---------------------------------------------------------------------------------------------

type Expectation = string[];

const refKey = (ref: unknown): string => (ref === undefined ? '-' : JSON.stringify(ref));

function isValidId(id: unknown): boolean {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0;
  return typeof id === 'string' && id.length >= 1 && id.length <= 128;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const own = (value: object, key: string): boolean => Object.prototype.hasOwnProperty.call(value, key);

/**
 * The expected answer of a text frame: the accepted keys, `null` for no answer, or `'skip'` for
 * frames whose answer the contract leaves open (they are not sent).
 */
function expectedForText(text: string): Expectation | null | 'skip' {
  const bad = (ref?: unknown): Expectation => [`${refKey(ref)}|error:BAD_MESSAGE`];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return bad();
  }
  const topLevelId = isPlainObject(parsed) && own(parsed, 'id') && isValidId(parsed.id) ? parsed.id : undefined;
  if (textDepth(text) > MAX_DEPTH) return bad(topLevelId);
  if (!isPlainObject(parsed)) return bad();
  const hasId = own(parsed, 'id');
  const { event, data, id } = parsed;
  if (hasId && !isValidId(id)) return bad();
  if (typeof event !== 'string' || event.length === 0 || event.length > 128) return bad(id);
  const ref = refKey(id);
  if (event.startsWith('$')) return expectedForSystemEvent(event, data, hasId, ref);
  if (REPLYING.has(event)) return [`${ref}|reply:${event}:${JSON.stringify({ echoed: data })}`];
  if (event === 'nothing') return hasId ? [`${ref}|ack`] : null;
  if (event === 'dto') return expectedForDto(data, ref);
  const code = ERROR_BY_EVENT.get(event);
  return [`${ref}|error:${code ?? 'UNKNOWN_EVENT'}`];
}

function expectedForSystemEvent(event: string, data: unknown, hasId: boolean, ref: string): Expectation | null | 'skip' {
  if (event === '$ping') return [`${ref}|pong:${JSON.stringify(data ?? null)}`];
  if (event === '$hello') return [`${ref}|error:BAD_MESSAGE`]; // the session has already started
  if (event === '$ack') return hasId ? [`${ref}|ack`] : null;
  // Without auth configured the contract leaves `$auth`'s answer open; exactly one it must be.
  if (event === '$auth') return hasId ? [`${ref}|error:*`, `${ref}|ack`] : [`-|error:*`];
  return [`${ref}|error:UNKNOWN_EVENT`];
}

/** `NoteDto` with the default validation options (whitelist, forbidNonWhitelisted). */
function expectedForDto(data: unknown, ref: string): Expectation {
  const refused = `${ref}|error:VALIDATION_FAILED`;
  if (!isPlainObject(data)) return [refused];
  const keys = Object.keys(data);
  if (keys.some((key) => PROTOTYPE_NAMES.includes(key))) return [refused, `${ref}|reply:dto:*`];
  const text = data.text ?? null;
  if (keys.some((key) => key !== 'text') || (text !== null && typeof text !== 'string')) return [refused];
  return [`${ref}|reply:dto:${JSON.stringify({ noted: text })}`];
}

/** The key of a frame the server sent, in the oracle's terms. */
function keyOfAnswer(frame: Frame): string {
  expect(frame).not.toHaveProperty('seq'); // answers are never sequenced
  if (frame.event === '$error') {
    expect(frame).not.toHaveProperty('ref');
    expect(typeof frame.data?.message).toBe('string');
    if (frame.data?.code === 'INTERNAL') expect(frame.data.message).toBe('Internal error'); // no internals leaked
    return `${refKey(frame.data?.ref)}|error:${frame.data?.code}`;
  }
  if (frame.event === '$ack') {
    expect(frame).not.toHaveProperty('ref');
    expect(Object.keys(frame.data ?? {})).toEqual(['ref']);
    return `${refKey(frame.data.ref)}|ack`;
  }
  if (frame.event === '$pong') return `${refKey(frame.ref)}|pong:${JSON.stringify(frame.data)}`;
  return `${refKey(frame.ref)}|reply:${frame.event}:${JSON.stringify(frame.data)}`;
}

const accepts = (pattern: string, key: string): boolean =>
  pattern.endsWith('*') ? key.startsWith(pattern.slice(0, -1)) : key === pattern;

/**
 * Human-readable mismatches between the expectations and the answers (empty when every
 * expectation took exactly one answer and no answer is left over). Expectations with a single
 * exact key are matched first, so that patterns only take what no exact key claims.
 */
function mismatches(expected: Expectation[], actual: string[]): string[] {
  const left = new Map<string, number>();
  for (const key of actual) left.set(key, (left.get(key) ?? 0) + 1);
  const take = (expectation: Expectation): boolean => {
    for (const [key, count] of left) {
      if (count === 0 || !expectation.some((pattern) => accepts(pattern, key))) continue;
      left.set(key, count - 1);
      return true;
    }
    return false;
  };
  const isExact = (e: Expectation): boolean => e.length === 1 && !e[0].endsWith('*');
  const ordered = [...expected.filter(isExact), ...expected.filter((e) => !isExact(e))];
  const out = ordered.filter((e) => !take(e)).map((e) => `missing ${e.join(' or ').slice(0, 200)}`);
  for (const [key, count] of left) if (count > 0) out.push(`unexpected ${count} × ${key.slice(0, 200)}`);
  return out;
}

/** Ids that were not answered exactly once: every frame with a valid id gets one answer. */
function answerCountsByRef(expected: Expectation[], actual: string[]): string[] {
  const refOfKey = (key: string): string => key.slice(0, key.indexOf('|'));
  const count = (refs: string[]): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const ref of refs) if (ref !== '-') counts.set(ref, (counts.get(ref) ?? 0) + 1);
    return counts;
  };
  const want = count(expected.map((e) => refOfKey(e[0])));
  const got = count(actual.map(refOfKey));
  return [...new Set([...want.keys(), ...got.keys()])]
    .filter((ref) => want.get(ref) !== got.get(ref))
    .map((ref) => `${ref.slice(0, 60)}: ${want.get(ref) ?? 0} frames, ${got.get(ref) ?? 0} answers`);
}

// ---------------------------------------------------------------------------------------------
// Frame generators.
// ---------------------------------------------------------------------------------------------

type IdSpec = { kind: 'num' } | { kind: 'str' } | { kind: 'none' } | { kind: 'raw'; value: unknown };

/** A raw id: a fresh unique one (written with a numeric suffix that keeps its value), or a raw text. */
type RawId = { fresh: 'num' | 'str'; suffix: string } | { text: string } | undefined;

interface RawMember {
  key: string;
  value: string | RawId;
}

type Mutation = { kind: 'truncate' | 'insert' | 'replace'; at: number; char: string } | { kind: 'wrap'; before: string; after: string };

type FrameSpec =
  | { t: 'string'; text: string }
  | { t: 'json'; value: unknown }
  | { t: 'envelope'; event: unknown; hasEvent: boolean; data: unknown; id: IdSpec; extra: Record<string, unknown> }
  | { t: 'raw-envelope'; members: RawMember[]; mutation?: Mutation }
  | { t: 'binary'; bytes: Uint8Array }
  | { t: 'binary-envelope'; event: string; data: unknown };

const anyString = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ maxLength: 100, unit: 'grapheme' }),
  fc.string({ maxLength: 100, unit: 'binary' }),
);

/** Random bytes read as text, the way a server sees bytes that happen to be valid UTF-8. */
const bytesAsText = fc
  .record({ bytes: fc.uint8Array({ maxLength: 400 }), encoding: fc.constantFrom<BufferEncoding>('latin1', 'utf8') })
  .map(({ bytes, encoding }) => Buffer.from(bytes).toString(encoding));

const eventArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KNOWN_EVENTS) },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
  {
    weight: 4,
    arbitrary: fc.oneof(fc.constantFrom(...SYSTEM_NAMES), fc.string({ maxLength: 20 }).map((s) => `$${s}`)),
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

const shapeArb = fc.constantFrom('a', 'o', 'ao', 'oa', 'aao');
const leafArb = fc.constantFrom('0', '"x"', '"]]]}}}"', '[]', '{}', '1e308', '-0', `{"__proto__":{"${PROBE_KEYS[0]}":"yes"}}`);

/** Data as raw JSON text: ordinary values, nesting at and past the limit, prototype bombs, huge numbers. */
const rawDataArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
  {
    weight: 3, // the frame (data + envelope) nests from 3 under to 3 over the limit
    arbitrary: fc
      .record({ levels: fc.integer({ min: MAX_DEPTH - 4, max: MAX_DEPTH + 2 }), shape: shapeArb, leaf: leafArb })
      .map(({ levels, shape, leaf }) => nestedText(levels, shape, leaf)),
  },
  {
    weight: 1, // the frame of the issue: about 5,000 levels
    arbitrary: fc
      .record({ levels: fc.integer({ min: 4900, max: 5100 }), shape: shapeArb })
      .map(({ levels, shape }) => nestedText(levels, shape)),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ levels: fc.integer({ min: 1, max: 20 }), probe: fc.constantFrom(...PROBE_KEYS) })
      .map(({ levels, probe }) => prototypeBombText(levels, probe)),
  },
  { weight: 1, arbitrary: fc.constantFrom(...HUGE_NUMBER_TEXTS, hugeNumbersText()) },
  { weight: 1, arbitrary: bytesAsText.map((text) => JSON.stringify(text)) },
);

/** Ids that are never valid (so never a `ref`), written as raw text. */
const INVALID_ID_TEXTS = [
  '-1',
  '1.5',
  '""',
  'null',
  'true',
  '[1]',
  '{"a":1}',
  '1e308',
  '-1e308',
  '1e400',
  '5e-324',
  '123456789012345678901234567890',
  '9007199254740993',
  JSON.stringify('x'.repeat(129)),
  nestedText(70),
];

const rawIdArb: fc.Arbitrary<RawId> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('', '', '.0', 'e0', 'E+0').map((suffix): RawId => ({ fresh: 'num', suffix })) },
  { weight: 3, arbitrary: fc.constant<RawId>({ fresh: 'str', suffix: '' }) },
  { weight: 2, arbitrary: fc.constant<RawId>(undefined) },
  { weight: 2, arbitrary: fc.constantFrom(...INVALID_ID_TEXTS).map((text): RawId => ({ text })) },
);

/** Members beside event/data/id: prototype keys at the top level, and duplicates of the envelope's keys. */
const extraMemberArb: fc.Arbitrary<RawMember> = fc.record({
  key: fc.constantFrom('__proto__', 'constructor', 'prototype', 'event', 'data', 'x', 'toString'),
  value: fc.oneof(
    rawDataArb,
    fc.constantFrom(...PROBE_KEYS).map((probe) => `{"prototype":{"${probe}":"yes"}}`),
    eventArb.map((event) => JSON.stringify(event)),
  ),
});

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constantFrom<'truncate' | 'insert' | 'replace'>('truncate', 'insert', 'replace'),
    at: fc.nat(),
    char: fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '\\', '\u0000', '\uFEFF', 'x', ' '),
  }),
  fc.record({
    kind: fc.constant<'wrap'>('wrap'),
    before: fc.constantFrom('', ' \n\t', '\uFEFF', '[', 'x'),
    after: fc.constantFrom('', ' \r\n', ']', '}', ',', 'garbage', '{}'),
  }),
);

const rawEnvelopeArb: fc.Arbitrary<FrameSpec> = fc
  .record({
    event: eventArb.map((event) => JSON.stringify(event)),
    data: fc.option(rawDataArb, { nil: undefined }),
    id: rawIdArb,
    extras: fc.array(extraMemberArb, { maxLength: 3 }),
    mutation: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: mutationArb }),
  })
  .chain(({ event, data, id, extras, mutation }) => {
    const members: RawMember[] = [{ key: 'event', value: event }, ...extras];
    if (data !== undefined) members.push({ key: 'data', value: data });
    if (id !== undefined) members.push({ key: 'id', value: id });
    return fc
      .shuffledSubarray(members, { minLength: members.length, maxLength: members.length })
      .map((shuffled): FrameSpec => ({ t: 'raw-envelope', members: shuffled, mutation }));
  });

const RESERVED_KEYS = new Set(['event', 'data', 'id', '__proto__']);

/** Counterexamples print each frame cut short: a 5,000-level frame would flood the report. */
function labelled(spec: FrameSpec): FrameSpec {
  const summary = (): string => {
    const text = JSON.stringify(spec, (_key, value: unknown) => (value instanceof Uint8Array ? [...value] : value));
    return text.length > 300 ? `${text.slice(0, 300)}…(${text.length} chars)` : text;
  };
  return Object.defineProperty(spec, fc.toStringMethod, { value: summary, enumerable: false });
}

const frameArb: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 2, arbitrary: anyString.map((text): FrameSpec => ({ t: 'string', text })) },
  { weight: 1, arbitrary: bytesAsText.map((text): FrameSpec => ({ t: 'string', text })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value): FrameSpec => ({ t: 'json', value })) },
  {
    weight: 12,
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
  { weight: 14, arbitrary: rawEnvelopeArb },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes): FrameSpec => ({ t: 'binary', bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ event: fc.constantFrom(...KNOWN_EVENTS), data: fc.jsonValue({ maxDepth: 2 }) })
      .map((r): FrameSpec => ({ t: 'binary-envelope', ...r })),
  },
).map(labelled);

// ---------------------------------------------------------------------------------------------
// Rendering a spec into a wire frame with a fresh, unique id for this client.
// ---------------------------------------------------------------------------------------------

interface Rendered {
  payload: string | Buffer;
  binary: boolean;
  expected: Expectation | null;
}

class Renderer {
  private counter = 0;

  constructor(private readonly clientIndex: number) {}

  render(spec: FrameSpec): Rendered | undefined {
    if (spec.t === 'binary') return { payload: Buffer.from(spec.bytes), binary: true, expected: ['-|error:BAD_MESSAGE'] };
    if (spec.t === 'binary-envelope') {
      const text = JSON.stringify({ event: spec.event, data: spec.data, id: this.nextNumericId() });
      return { payload: Buffer.from(text), binary: true, expected: ['-|error:BAD_MESSAGE'] };
    }
    const text = this.textOf(spec);
    // What the server receives: the UTF-8 encoding of the string (lone surrogates become U+FFFD).
    const received = Buffer.from(text, 'utf8');
    if (received.length > MAX_FRAME_BYTES) return undefined;
    const expected = expectedForText(received.toString('utf8'));
    if (expected === 'skip') return undefined;
    return { payload: text, binary: false, expected };
  }

  private textOf(spec: Exclude<FrameSpec, { t: 'binary' | 'binary-envelope' }>): string {
    if (spec.t === 'string') return spec.text;
    if (spec.t === 'json') return JSON.stringify(spec.value);
    if (spec.t === 'raw-envelope') return mutate(this.rawEnvelopeText(spec.members), spec.mutation);
    const message: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(spec.extra)) if (!RESERVED_KEYS.has(key)) message[key] = value;
    if (spec.hasEvent) message.event = spec.event;
    if (spec.data !== undefined) message.data = spec.data;
    if (spec.id.kind === 'num') message.id = this.nextNumericId();
    else if (spec.id.kind === 'str') message.id = this.nextStringId();
    else if (spec.id.kind === 'raw') message.id = spec.id.value;
    return JSON.stringify(message);
  }

  private rawEnvelopeText(members: RawMember[]): string {
    const texts = members.map(({ key, value }) => `${JSON.stringify(key)}:${this.rawValue(value)}`);
    return `{${texts.join(',')}}`;
  }

  private rawValue(value: string | RawId): string {
    if (typeof value === 'string') return value;
    if (value === undefined) return 'null';
    if ('text' in value) return value.text;
    return value.fresh === 'num' ? `${this.nextNumericId()}${value.suffix}` : JSON.stringify(this.nextStringId());
  }

  /** Numeric ids far from the small numbers random data tends to contain. */
  private nextNumericId(): number {
    return 7_000_000_000 + this.clientIndex * 10_000_000 + ++this.counter;
  }

  private nextStringId(): string {
    return `c${this.clientIndex}-${++this.counter}`;
  }
}

function mutate(text: string, mutation: Mutation | undefined): string {
  if (!mutation) return text;
  if (mutation.kind === 'wrap') return `${mutation.before}${text}${mutation.after}`;
  const at = mutation.at % (text.length + 1);
  if (mutation.kind === 'truncate') return text.slice(0, at);
  if (mutation.kind === 'insert') return text.slice(0, at) + mutation.char + text.slice(at);
  return text.slice(0, at) + mutation.char + text.slice(at + 1);
}

// ---------------------------------------------------------------------------------------------
// Hand-picked hostile frames with their answers written out by hand.
// ---------------------------------------------------------------------------------------------

const canonical = (json: string): string => JSON.stringify(JSON.parse(json));
const DEEP = nestedText(5000);

const HAND_PICKED: Array<[text: string, expected: Expectation | null]> = [
  // The frame of the issue, and `$ping` data around the limit.
  [`{"event":"$ping","data":${DEEP},"id":"h1"}`, ['"h1"|error:BAD_MESSAGE']],
  [`{"event":"$ping","data":${DEEP}}`, ['-|error:BAD_MESSAGE']],
  [`{"event":"$ping","data":${nestedText(63)},"id":"h2"}`, [`"h2"|pong:${canonical(nestedText(63))}`]],
  [`{"event":"$ping","data":${nestedText(64)},"id":"h3"}`, ['"h3"|error:BAD_MESSAGE']],
  [`{"event":"$ping","data":{"n":-0,"big":123456789012345678901234567890},"id":17}`, ['17|pong:{"n":0,"big":1.2345678901234568e+29}']],
  [`{"event":"$ping","data":"p"}`, ['-|pong:"p"']],
  // Echo data around and far beyond the limit; a deeper container a duplicate key overrides still counts.
  [`{"event":"echo","data":${nestedText(63, 'o')},"id":"h4"}`, [`"h4"|reply:echo:{"echoed":${canonical(nestedText(63, 'o'))}}`]],
  [`{"event":"echo","data":${nestedText(64, 'o')},"id":"h5"}`, ['"h5"|error:BAD_MESSAGE']],
  [`{"event":"echo","data":${nestedText(5000, 'ao')},"id":"h6"}`, ['"h6"|error:BAD_MESSAGE']],
  [`{"event":"echo","data":${DEEP},"data":1,"id":"h7"}`, ['"h7"|error:BAD_MESSAGE']],
  [`{"event":"echo","data":${DEEP},"id":-1}`, ['-|error:BAD_MESSAGE']],
  [DEEP, ['-|error:BAD_MESSAGE']],
  [`{"event":"echo","data":"${'['.repeat(100)}\\"${'{'.repeat(100)}","id":"h8"}`, [`"h8"|reply:echo:{"echoed":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}`]],
  // Huge numbers and prototype keys survive the round trip as values.
  [`{"event":"echo","data":${hugeNumbersText()},"id":"h9"}`, [`"h9"|reply:echo:{"echoed":${canonical(hugeNumbersText())}}`]],
  [
    `{"__proto__":${prototypeBombText(3)},"constructor":{"prototype":{"polluted":"yes"}},"event":"echo","data":${prototypeBombText(20, 'isAdmin')},"id":"h10"}`,
    [`"h10"|reply:echo:{"echoed":${canonical(prototypeBombText(20, 'isAdmin'))}}`],
  ],
  [`{"event":"dto","data":{"__proto__":{"polluted":"yes"},"text":"hi"},"id":"h11"}`, ['"h11"|error:VALIDATION_FAILED', '"h11"|reply:dto:*']],
  [`{"event":"dto","data":{"text":"hi"},"id":"h12"}`, ['"h12"|reply:dto:{"noted":"hi"}']],
  // Return values JSON cannot carry.
  ['{"event":"circular","id":"h13"}', ['"h13"|error:INTERNAL']],
  ['{"event":"bigint","id":"h14"}', ['"h14"|error:INTERNAL']],
  ['{"event":"too-deep","id":"h15"}', ['"h15"|error:INTERNAL']],
  ['{"event":"push-circular","id":"h16"}', ['"h16"|error:INTERNAL']],
  ['{"event":"circular"}', ['-|error:INTERNAL']],
  // `$`-events with garbage.
  ['{"event":"$ack","data":{"seq":"garbage"},"id":"h17"}', ['"h17"|ack']],
  ['{"event":"$ack","data":{"seq":0},"id":"h18"}', ['"h18"|ack']],
  ['{"event":"$ack","data":[[[1]]],"id":"h19"}', ['"h19"|ack']],
  ['{"event":"$ack","data":{"seq":0}}', null],
  [`{"event":"$x","data":${nestedText(10)},"id":"h20"}`, ['"h20"|error:UNKNOWN_EVENT']],
  ['{"event":"$hello","data":{"token":[]},"id":"h21"}', ['"h21"|error:BAD_MESSAGE']],
  [`{"event":"$auth","data":${DEEP},"id":"h22"}`, ['"h22"|error:BAD_MESSAGE']],
  // Garbage envelopes.
  ['\uFEFF{"event":"echo","id":"h23"}', ['-|error:BAD_MESSAGE']],
  ['{"event":"echo","id":"h24",}', ['-|error:BAD_MESSAGE']],
  ['{"event":"echo","event":"nothing","id":"h25"}', ['"h25"|ack']],
  [' \n{"event":"nothing","id":7000000000.0}\t', ['7000000000|ack']],
];

// ---------------------------------------------------------------------------------------------

const CLIENTS = 4;
const NUM_RUNS = 5;
const FRAMES_PER_CLIENT = { minLength: 140, maxLength: 180 };
/**
 * How much the process (server, clients and Jest together) may grow after the first run, measured
 * right after a full collection: the heap must stay flat; RSS moves with the allocator's mood.
 */
const MAX_HEAP_GROWTH_BYTES = 32 * 1024 * 1024;
const MAX_RSS_GROWTH_BYTES = 150 * 1024 * 1024;

/** Sends rendered frames and returns what they must be answered with. */
function sendAll(client: TestClient, frames: Rendered[]): Expectation[] {
  for (const frame of frames) client.raw.send(frame.payload, { binary: frame.binary });
  return frames.flatMap((frame) => (frame.expected === null ? [] : [frame.expected]));
}

/** Waits for the answers, flushes the pipeline with a well-formed request, and lists what went wrong. */
async function problemsOf(client: TestClient, expected: Expectation[], sentinelId: string): Promise<string[]> {
  const isOpen = (): boolean => client.raw.readyState === client.raw.OPEN;
  await waitUntil(() => client.frames.length >= expected.length || !isOpen(), { timeoutMs: 5000 }).catch(() => undefined);
  if (!isOpen()) {
    const { code, reason } = await client.closed();
    return [`connection closed with ${code} (${reason}) after ${client.frames.length} of ${expected.length} answers`];
  }
  if (client.frames.length < expected.length) return [`${client.frames.length} of ${expected.length} answers within 5 s`];
  expect(await client.request('echo', 'sentinel', sentinelId)).toEqual({
    event: 'echo',
    data: { echoed: 'sentinel' },
    ref: sentinelId,
  });
  const actual = client.frames.map(keyOfAnswer);
  return [...answerCountsByRef(expected, actual), ...mismatches(expected, actual)];
}

describe('robustness (property-based)', () => {
  let t: TestApp;
  let prototypesBefore: Map<string, unknown>;

  beforeAll(async () => {
    prototypesBefore = prototypeSnapshot();
    t = await startAppWithoutRateLimit({}, [FuzzGateway]);
  });
  afterAll(() => t?.close());

  it('answers each hand-picked hostile frame as written, once per id, and stays up', async () => {
    const client = await TestClient.ready(t.wsUrl('/ws'));
    try {
      const frames = HAND_PICKED.map(([text, expected]) => ({ payload: text, binary: false, expected }));
      expect(await problemsOf(client, sendAll(client, frames), 'hand-picked-sentinel')).toEqual([]);
      expect(client.raw.readyState).toBe(client.raw.OPEN);
    } finally {
      client.close();
    }
    expect(prototypeChanges(prototypesBefore, prototypeSnapshot())).toEqual([]);
    expect(inheritedProbes()).toEqual([]);
  });

  it('echoes $ping data exactly as written, byte for byte (no parse and re-serialisation)', async () => {
    const client = await TestClient.ready(t.wsUrl('/ws'));
    try {
      const texts: string[] = [];
      client.raw.on('message', (data) => texts.push(String(data)));
      const data = '{"n":-0, "big":123456789012345678901234567890, "f":1.50, "e":1E400, "s":"\\u00e9"}';
      client.send(`{ "d\\u0061ta": 1, "event":"$ping", "data" : ${data} , "id":17}`);
      client.send('{"event":"$ping","id":18}');
      await waitUntil(() => texts.length >= 2, { what: 'two $pong frames' });
      expect(texts).toEqual([`{"event":"$pong","data":${data},"ref":17}`, '{"event":"$pong","data":null,"ref":18}']);
    } finally {
      client.close();
    }
  });

  it('holds nothing behind a $auth when no auth is configured: 40 frames pipelined after it are answered', async () => {
    const client = await TestClient.ready(t.wsUrl('/ws'));
    try {
      const auth = '{"event":"$auth","data":{"token":"t"},"id":"auth"}';
      const frames: Rendered[] = [{ payload: auth, binary: false, expected: ['"auth"|error:*', '"auth"|ack'] }];
      for (let i = 0; i < 40; i++) {
        frames.push({ payload: `{"event":"$ping","data":${i},"id":${i}}`, binary: false, expected: [`${i}|pong:${i}`] });
      }
      // Corked, the frames reach the server in one read, as they do over a real network.
      const tcp = (client.raw as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
      tcp.cork();
      const expected = sendAll(client, frames);
      tcp.uncork();
      expect(await problemsOf(client, expected, 'auth-sentinel')).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('every random frame gets exactly the answer the protocol prescribes, on concurrent clients', async () => {
    let totalFrames = 0;
    const memoryAfterRun: MemoryAfterGc[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(frameArb, FRAMES_PER_CLIENT), { minLength: CLIENTS, maxLength: CLIENTS }),
        async (perClient) => {
          const clients = await Promise.all(perClient.map(() => TestClient.ready(t.wsUrl('/ws'))));
          try {
            const expectations = perClient.map((specs, index) => {
              const renderer = new Renderer(index);
              const frames = specs.map((spec) => renderer.render(spec)).filter((frame) => frame !== undefined);
              totalFrames += frames.length;
              return sendAll(clients[index], frames);
            });
            const problems = await Promise.all(
              clients.map((client, index) => problemsOf(client, expectations[index], `sentinel-${index}`)),
            );
            expect(problems).toEqual(clients.map(() => []));
            expect(prototypeChanges(prototypesBefore, prototypeSnapshot())).toEqual([]);
            expect(inheritedProbes()).toEqual([]);
          } finally {
            for (const client of clients) client.close();
          }
          memoryAfterRun.push(memoryAfterGc());
        },
      ),
      { numRuns: NUM_RUNS, endOnFailure: true },
    );
    expect(totalFrames).toBeGreaterThanOrEqual(2500);
    const [first, ...later] = memoryAfterRun;
    expect(Math.max(...later.map((m) => m.heapUsed)) - first.heapUsed).toBeLessThan(MAX_HEAP_GROWTH_BYTES);
    expect(Math.max(...later.map((m) => m.rss)) - first.rss).toBeLessThan(MAX_RSS_GROWTH_BYTES);

    // The server is still up: a well-behaved client gets correct replies…
    const good = await TestClient.ready(t.wsUrl('/ws'));
    expect(await good.request('echo', { ok: 1 }, 1)).toEqual({ event: 'echo', data: { echoed: { ok: 1 } }, ref: 1 });
    expect(await good.request('nothing', null, 2)).toEqual({ event: '$ack', data: { ref: 2 } });
    expect((await good.request('boom', null, 3)).data).toEqual({ code: 'INTERNAL', message: 'Internal error', ref: 3 });
    expect(await good.request('$ping', 'p', 4)).toEqual({ event: '$pong', data: 'p', ref: 4 });
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
  }, 30_000);

  it('the oracle itself agrees with hand-written cases', () => {
    expect(expectedForText('{bad')).toEqual(['-|error:BAD_MESSAGE']);
    expect(expectedForText('[]')).toEqual(['-|error:BAD_MESSAGE']);
    expect(expectedForText('{"event":"echo","id":-1}')).toEqual(['-|error:BAD_MESSAGE']);
    expect(expectedForText('{"event":"","id":3}')).toEqual(['3|error:BAD_MESSAGE']);
    expect(expectedForText('{"event":"echo","data":1,"id":"a"}')).toEqual(['"a"|reply:echo:{"echoed":1}']);
    expect(expectedForText('{"event":"nothing"}')).toBeNull();
    expect(expectedForText('{"event":"nothing","id":2}')).toEqual(['2|ack']);
    expect(expectedForText('{"event":"$ping"}')).toEqual(['-|pong:null']);
    expect(expectedForText('{"event":"$ping","id":5}')).toEqual(['5|pong:null']);
    expect(expectedForText('{"event":"$ack","data":{"seq":1},"id":6}')).toEqual(['6|ack']);
    expect(expectedForText('{"event":"$nope","id":4}')).toEqual(['4|error:UNKNOWN_EVENT']);
    expect(expectedForText('{"event":"boom"}')).toEqual(['-|error:INTERNAL']);
    expect(expectedForText(`{"event":"echo","data":${nestedText(63)},"id":8}`)).toEqual([
      `8|reply:echo:{"echoed":${canonical(nestedText(63))}}`,
    ]);
    expect(expectedForText(`{"event":"echo","data":${nestedText(64)},"id":8}`)).toEqual(['8|error:BAD_MESSAGE']);
    expect(expectedForText(`{"event":"echo","data":${nestedText(64)},"id":[8]}`)).toEqual(['-|error:BAD_MESSAGE']);
    for (const [text, expected] of HAND_PICKED) expect(expectedForText(text)).toEqual(expected);

    expect(mismatches([['1|ack'], ['-|error:*']], ['-|error:BAD_MESSAGE', '1|ack'])).toEqual([]);
    expect(mismatches([['1|ack']], ['1|ack', '1|ack'])).toEqual(['unexpected 1 × 1|ack']);
    expect(answerCountsByRef([['1|ack'], ['2|ack']], ['1|ack', '1|ack'])).toEqual(['1: 1 frames, 2 answers', '2: 1 frames, 0 answers']);
  });
});
