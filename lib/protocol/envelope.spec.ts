import fc from 'fast-check';
import {
  plainAckSeq,
  decodeClientMessage,
  decodeServerMessage,
  encodeFrame,
  memberText,
  nestsDeeperThan,
  serializeData,
  UnserializableDataError,
  utf8Length,
} from './envelope.js';
import { isValidEventName, isValidMessageId } from './message-fields.js';
import { MAX_EVENT_NAME_LENGTH } from './system-event.js';

const eventName = fc.string({ minLength: 1, maxLength: MAX_EVENT_NAME_LENGTH });
const messageId = fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), fc.string({ minLength: 1, maxLength: 128 }));
/** JSON.parse(JSON.stringify(x)): what a payload becomes on the wire (e.g. -0 → 0). */
const wire = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('decodeClientMessage', () => {
  it('accepts { event, data, id }', () => {
    expect(decodeClientMessage('{"event":"say","data":{"text":"hi"},"id":17}')).toEqual({
      ok: true,
      message: { event: 'say', data: { text: 'hi' }, id: 17 },
    });
  });

  it('accepts a message without data or id, and adds no id key', () => {
    const decoded = decodeClientMessage('{"event":"x"}');
    expect(decoded).toEqual({ ok: true, message: { event: 'x', data: undefined } });
    expect(decoded.ok && 'id' in decoded.message).toBe(false);
  });

  it('accepts string ids, id 0, system event names, and ignores unknown keys', () => {
    expect(decodeClientMessage('{"event":"a","id":"abc"}')).toMatchObject({ ok: true, message: { id: 'abc' } });
    expect(decodeClientMessage('{"event":"a","id":0}')).toMatchObject({ ok: true, message: { id: 0 } });
    expect(decodeClientMessage('{"event":"$ping","data":null}')).toEqual({ ok: true, message: { event: '$ping', data: null } });
    const decoded = decodeClientMessage('{"event":"a","seq":5,"ref":1}');
    expect(decoded).toEqual({ ok: true, message: { event: 'a', data: undefined } });
  });

  it.each([
    ['not JSON', '{bad', /not valid JSON/],
    ['empty frame', '', /not valid JSON/],
    ['an array', '[1,2]', /JSON object/],
    ['null', 'null', /JSON object/],
    ['a number', '42', /JSON object/],
    ['a string', '"event"', /JSON object/],
    ['no event', '{"data":1}', /"event"/],
    ['empty event', '{"event":""}', /"event"/],
    ['event not a string', '{"event":5}', /"event"/],
    ['event too long', JSON.stringify({ event: 'e'.repeat(MAX_EVENT_NAME_LENGTH + 1) }), /"event"/],
    ['negative id', '{"event":"a","id":-1}', /"id"/],
    ['fractional id', '{"event":"a","id":1.5}', /"id"/],
    ['unsafe integer id', `{"event":"a","id":${2 ** 53}}`, /"id"/],
    ['empty string id', '{"event":"a","id":""}', /"id"/],
    ['too long string id', JSON.stringify({ event: 'a', id: 'i'.repeat(129) }), /"id"/],
    ['null id', '{"event":"a","id":null}', /"id"/],
    ['object id', '{"event":"a","id":{}}', /"id"/],
  ])('rejects %s', (_name, text, reason) => {
    const decoded = decodeClientMessage(text);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.reason).toMatch(reason);
  });

  it('keeps a valid id on a rejected envelope so the error can carry ref', () => {
    expect(decodeClientMessage('{"event":"","id":7}')).toEqual({ ok: false, reason: expect.any(String), id: 7 });
    expect(decodeClientMessage('{"id":"x"}')).toEqual({ ok: false, reason: expect.any(String), id: 'x' });
  });

  it('has no id on a rejection caused by the id itself', () => {
    const decoded = decodeClientMessage('{"event":"a","id":-5}');
    expect(decoded).toEqual({ ok: false, reason: expect.any(String) });
  });

  it('accepts an event of exactly the maximum length', () => {
    expect(decodeClientMessage(JSON.stringify({ event: 'e'.repeat(MAX_EVENT_NAME_LENGTH) })).ok).toBe(true);
  });

  it('round-trips any valid message (property)', () => {
    fc.assert(
      fc.property(eventName, fc.jsonValue(), fc.option(messageId, { nil: undefined }), (event, data, id) => {
        const decoded = decodeClientMessage(JSON.stringify({ event, data, id }));
        const expected: Record<string, unknown> = { event, data: wire(data) };
        if (id !== undefined) expected.id = id;
        expect(decoded).toEqual({ ok: true, message: expected });
      }),
      { numRuns: 500 },
    );
  });

  it('never throws, whatever the text (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        const decoded = decodeClientMessage(text);
        expect(typeof decoded.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });
});

describe('memberText', () => {
  it('is the value of a member exactly as written: numbers, spacing and escapes kept', () => {
    const text = '{ "event" : "$ping", "data" : {"n":-0, "big":123456789012345678901234567890, "f":1.50, "s":"a\\"}"} , "id":1 }';
    expect(memberText(text, 'data')).toBe('{"n":-0, "big":123456789012345678901234567890, "f":1.50, "s":"a\\"}"}');
    expect(memberText(text, 'id')).toBe('1');
    expect(memberText(text, 'event')).toBe('"$ping"');
    expect(memberText(text, 'missing')).toBeUndefined();
    expect(memberText('{}', 'data')).toBeUndefined();
  });

  it('reads keys as JSON.parse does: escaped keys, and the last of duplicate keys', () => {
    expect(memberText('{"d\\u0061ta":[1, 2],"event":"x"}', 'data')).toBe('[1, 2]');
    expect(memberText('{"data":1,"data":"two"}', 'data')).toBe('"two"');
    expect(memberText('{"data\\"":3,"data":true}', 'data')).toBe('true');
  });

  it('property: for any object text JSON.parse accepts, the member text parses to the same value', () => {
    const spacing = fc.constantFrom(undefined, 0, 1, 2, '\t', ' \n ');
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 })), fc.jsonValue({ maxDepth: 4 }), spacing, (rest, data, space) => {
        const text = JSON.stringify({ ...rest, data }, null, space);
        const member = memberText(text, 'data');
        expect(member).toBeDefined();
        expect(JSON.parse(member!)).toEqual(JSON.parse(text).data);
        for (const key of Object.keys(rest)) expect(JSON.parse(memberText(text, key)!)).toEqual(JSON.parse(text)[key]);
      }),
      { numRuns: 500 },
    );
  });
});

describe('encodeFrame', () => {
  it('builds { event, data } and adds ref and seq only when given', () => {
    expect(encodeFrame('said', '{"a":1}')).toBe('{"event":"said","data":{"a":1}}');
    expect(encodeFrame('say', '"ok"', { ref: 17 })).toBe('{"event":"say","data":"ok","ref":17}');
    expect(encodeFrame('say', 'null', { ref: 'r-1' })).toBe('{"event":"say","data":null,"ref":"r-1"}');
    expect(encodeFrame('said', '1', { seq: 42 })).toBe('{"event":"said","data":1,"seq":42}');
    expect(encodeFrame('said', '1', { ref: 0, seq: 0 })).toBe('{"event":"said","data":1,"ref":0,"seq":0}');
  });

  it('escapes event names and ref strings', () => {
    const frame = encodeFrame('a"b\\c\n\u2028', '1', { ref: '"}' });
    expect(JSON.parse(frame)).toEqual({ event: 'a"b\\c\n\u2028', data: 1, ref: '"}' });
  });

  it('produces exactly JSON.stringify of the same object (property)', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.jsonValue(),
        fc.option(messageId, { nil: undefined }),
        fc.option(fc.nat(), { nil: undefined }),
        (event, data, ref, seq) => {
          const frame = encodeFrame(event, serializeData(data), { ref, seq });
          const object: Record<string, unknown> = { event, data };
          if (ref !== undefined) object.ref = ref;
          if (seq !== undefined) object.seq = seq;
          expect(frame).toBe(JSON.stringify(object));
          expect(decodeServerMessage(frame)).toEqual(wire(object));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('serializeData', () => {
  it('turns undefined (and other non-JSON values) into null so that frames stay valid', () => {
    expect(serializeData(undefined)).toBe('null');
    expect(serializeData(() => 1)).toBe('null');
    expect(JSON.parse(encodeFrame('x', serializeData(undefined)))).toEqual({ event: 'x', data: null });
  });

  it('serialises like JSON.stringify otherwise', () => {
    expect(serializeData({ a: [1, 'b', null], d: new Date(0) })).toBe(JSON.stringify({ a: [1, 'b', null], d: new Date(0) }));
  });
});

describe('decodeServerMessage', () => {
  it('returns the frame for a server message, undefined for anything else', () => {
    expect(decodeServerMessage('{"event":"said","data":1,"seq":3}')).toEqual({ event: 'said', data: 1, seq: 3 });
    expect(decodeServerMessage('nope')).toBeUndefined();
    expect(decodeServerMessage('[]')).toBeUndefined();
    expect(decodeServerMessage('null')).toBeUndefined();
    expect(decodeServerMessage('{"data":1}')).toBeUndefined();
  });
});

describe('isValidMessageId / isValidEventName', () => {
  it('match the envelope rules', () => {
    expect([0, 1, Number.MAX_SAFE_INTEGER, 'a', 'x'.repeat(128)].every(isValidMessageId)).toBe(true);
    expect([-1, 0.5, NaN, Infinity, '', 'x'.repeat(129), null, {}, []].some(isValidMessageId)).toBe(false);
    expect(['a', 'e'.repeat(MAX_EVENT_NAME_LENGTH)].every(isValidEventName)).toBe(true);
    expect(['', 'e'.repeat(MAX_EVENT_NAME_LENGTH + 1), 1, null].some(isValidEventName)).toBe(false);
  });
});

describe('decodeClientMessage: nesting depth', () => {
  const nested = (levels: number, inner = '1') => '['.repeat(levels) + inner + ']'.repeat(levels);
  const frame = (dataLevels: number, id?: unknown) =>
    `{"event":"echo","data":${nested(dataLevels)}${id === undefined ? '' : `,"id":${JSON.stringify(id)}`}}`;

  it('accepts a frame exactly at the limit (the envelope is level 1)', () => {
    expect(decodeClientMessage(frame(63), 64)).toMatchObject({ ok: true });
    expect(decodeClientMessage(frame(3), 4)).toMatchObject({ ok: true });
  });

  it('refuses one level more, with the id as ref when there is a valid one', () => {
    expect(decodeClientMessage(frame(64, 9), 64)).toEqual({ ok: false, reason: 'frame nests deeper than 64 levels', id: 9 });
    expect(decodeClientMessage(frame(64, -1), 64)).toEqual({ ok: false, reason: 'frame nests deeper than 64 levels', id: undefined });
    expect(decodeClientMessage(nested(65), 64)).toEqual({ ok: false, reason: 'frame nests deeper than 64 levels', id: undefined });
  });

  it('refuses 100,000 levels without recursing (no stack overflow)', () => {
    expect(decodeClientMessage(frame(100_000, 'x'), 64)).toMatchObject({ ok: false, id: 'x' });
    expect(decodeClientMessage(`{"event":"a","data":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`, 64)).toMatchObject({ ok: false });
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = `{"event":"a","data":"${'[{'.repeat(500)}\\"${'['.repeat(100)}"}`;
    expect(decodeClientMessage(text, 2)).toMatchObject({ ok: true });
  });

  it('agrees with a recursive depth count on random JSON', () => {
    const depthOf = (value: unknown): number =>
      typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 10 }), (data, limit) => {
        const message = { event: 'e', data };
        expect(nestsDeeperThan(JSON.stringify(message), limit)).toBe(depthOf(message) > limit);
      }),
    );
  });
});

describe('serializeData', () => {
  it('throws UnserializableDataError naming the kind and event, never the value', () => {
    const circular: Record<string, unknown> = { secret: 'hunter2' };
    circular.self = circular;
    const deep = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`) as unknown;
    const cases: Array<[unknown, string]> = [
      [circular, 'circular structure'],
      [{ n: 10n }, 'BigInt value'],
      [deep, 'nested too deeply'],
      [{ toJSON: () => { throw new Error('hunter2'); } }, 'toJSON failed'],
    ];
    for (const [value, reason] of cases) {
      let error: unknown;
      try {
        serializeData(value, 'said', 'reply');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UnserializableDataError);
      expect(error).toMatchObject({ kind: 'reply', event: 'said', reason });
      expect((error as Error).message).toBe(`cannot serialise the reply of "said": ${reason}`);
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});

describe('utf8Length', () => {
  it('equals the UTF-8 byte length of any string, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(utf8Length(text)).toBe(new TextEncoder().encode(text).length);
      }),
    );
    expect(utf8Length('\ud800a')).toBe(4);
    expect(utf8Length('😀')).toBe(4);
  });
});

describe('plainAckSeq', () => {
  const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

  it('reads the seq of the cumulative $ack clients send', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999_999_999 }), (seq) => {
        expect(plainAckSeq(bytes(`{"event":"$ack","data":{"seq":${seq}}}`))).toBe(seq);
      }),
    );
  });

  it('reads nothing decodeClientMessage would read differently', () => {
    const near = fc.oneof(
      fc.string(),
      fc.string().map((tail) => `{"event":"$ack","data":{"seq":${tail}}}`),
      fc.stringMatching(/^\{"event":"\$ack","data":\{"seq":-?[0-9.e+]{0,20}\}\}\s?$/),
    );
    fc.assert(
      fc.property(near, (text) => {
        const seq = plainAckSeq(bytes(text));
        if (seq === undefined) return;
        const decoded = decodeClientMessage(text);
        expect(decoded.ok && decoded.message).toEqual({ event: '$ack', data: { seq }, id: undefined });
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses leading zeros, signs, fractions and other shapes', () => {
    for (const text of ['{"event":"$ack","data":{"seq":01}}', '{"event":"$ack","data":{"seq":-1}}', '{"event":"$ack","data":{"seq":1.5}}', '{"event":"$ack","data":{"seq":}}', '{"event":"$ack","data":{"seq":1},"id":2}', '{"event":"$ack","data":{"seq":1}} ']) {
      expect(plainAckSeq(bytes(text))).toBeUndefined();
    }
  });
});
