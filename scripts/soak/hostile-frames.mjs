// Hostile frames for the soak, each with the answer key it must get. Built as raw JSON text (no
// recursion; `__proto__` keys and `-0` that JSON.stringify would drop or rewrite).

/** `levels` nested containers around `leaf`; `shape` gives each level's kind in turn (a / o). */
export function nestedText(levels, shape = 'a', leaf = '0') {
  const opens = [];
  const closes = [];
  for (let level = 0; level < levels; level++) {
    const isObject = shape[level % shape.length] === 'o';
    opens.push(isObject ? '{"k":' : '[');
    closes.push(isObject ? '}' : ']');
  }
  return opens.join('') + leaf + closes.reverse().join('');
}

/** Nested objects with `__proto__`, `constructor.prototype` and `prototype` keys at every level. */
export function prototypeBombText(levels, probe = 'polluted') {
  const poison = `{"${probe}":"yes"}`;
  let text = 'null';
  for (let level = 0; level < levels; level++) {
    text = `{"__proto__":${poison},"constructor":{"prototype":${poison}},"prototype":${poison},"next":${text}}`;
  }
  return text;
}

const HUGE_NUMBERS = '{"a":1e308,"b":-0,"c":123456789012345678901234567890,"d":[1e400,-1e308,5e-324,9007199254740993]}';
const LIMIT_DATA = nestedText(63, 'o'); // with the envelope: 64 levels, the default limit
const canonical = (json) => JSON.stringify(JSON.parse(json));

/** The key of an answer frame: what it says, without its ref. */
export function answerKey(frame) {
  if (frame.event === '$error') return `error:${frame.data?.code}`;
  if (frame.event === '$ack') return 'ack';
  if (frame.event === '$pong') return `pong:${JSON.stringify(frame.data)}`;
  return `reply:${frame.event}:${JSON.stringify(frame.data)}`;
}

/** The id a server frame answers. */
export function refOf(frame) {
  return frame.ref ?? frame.data?.ref;
}

/** A small deterministic generator (mulberry32). */
export function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(random, length) {
  return Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
}

const withId = (head, tail, answer) => (id) => ({ payload: `${head}"${id}"${tail}`, binary: false, answer });

// Texts split around the id so that a frame costs one concatenation.
const DEEP_PING = withId(`{"event":"$ping","data":${nestedText(5000)},"id":`, '}', 'error:BAD_MESSAGE');
const FIXED_KINDS = [
  DEEP_PING,
  withId(`{"event":"echo","data":${nestedText(5000, 'ao')},"id":`, '}', 'error:BAD_MESSAGE'),
  withId(`{"event":"$auth","data":${nestedText(10000)},"id":`, '}', 'error:BAD_MESSAGE'),
  withId(`{"event":"echo","data":${LIMIT_DATA},"id":`, '}', `reply:echo:${canonical(LIMIT_DATA)}`),
  withId(`{"event":"echo","data":${nestedText(64)},"id":`, '}', 'error:BAD_MESSAGE'),
  withId(
    `{"__proto__":{"polluted":"yes"},"event":"echo","data":${prototypeBombText(12)},"id":`,
    ',"constructor":{"prototype":{"isAdmin":"yes"}}}',
    `reply:echo:${canonical(prototypeBombText(12))}`,
  ),
  withId(`{"event":"echo","data":${HUGE_NUMBERS},"id":`, '}', `reply:echo:${canonical(HUGE_NUMBERS)}`),
  withId('{"event":"circular","id":', '}', 'error:INTERNAL'),
  withId('{"event":"bigint","id":', '}', 'error:INTERNAL'),
  withId('{"event":"too-deep","id":', '}', 'error:INTERNAL'),
  withId('{"event":"$ack","data":{"seq":"garbage"},"id":', '}', 'ack'),
  withId('{"event":"$ack","data":{"seq":1e308},"id":', '}', 'ack'),
  withId(`{"event":"$x","data":${prototypeBombText(3)},"id":`, '}', 'error:UNKNOWN_EVENT'),
  withId('{"event":"$hello","data":{"token":"user-1"},"id":', '}', 'error:BAD_MESSAGE'),
  withId(`{"event":"$ping","data":${HUGE_NUMBERS},"id":`, '}', `pong:${canonical(HUGE_NUMBERS)}`),
  withId('{"event":"echo","event":"nope","id":', '}', 'error:UNKNOWN_EVENT'),
  withId('{"event":"echo","data":"[[[[{{{{\\"","id":', '}', 'reply:echo:"[[[[{{{{\\""'),
];

/** Frames without an id: answered `BAD_MESSAGE` without a ref. */
const ANONYMOUS_KINDS = [
  (random) => ({ payload: randomBytes(random, 1 + Math.floor(random() * 300)), binary: true }),
  (random) => ({ payload: `x${randomBytes(random, Math.floor(random() * 300)).toString('latin1')}`, binary: false }),
  () => ({ payload: `{"event":"$ping","data":${nestedText(5000)}}`, binary: false }),
  () => ({ payload: '\uFEFF{"event":"echo"}', binary: false }),
];

export const KINDS_PER_ROUND = FIXED_KINDS.length + ANONYMOUS_KINDS.length;

/** The i-th hostile frame of a connection: `{ payload, binary, answer? }` (answer only with an id). */
export function hostileFrame(i, id, random) {
  const kind = i % KINDS_PER_ROUND;
  if (kind < FIXED_KINDS.length) return FIXED_KINDS[kind](id);
  return ANONYMOUS_KINDS[kind - FIXED_KINDS.length](random);
}
