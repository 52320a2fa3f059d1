import fc from 'fast-check';
import { serializeData } from '../protocol/index.js';
import { decodeEnvelope, encodeEnvelope, type BroadcastEnvelope, type BroadcastTarget } from './broadcast-envelope.js';

const ORIGIN = '6f1c0c1e-2b43-4a39-9a43-1b2f5d1c7f00';

function push(target: BroadcastTarget, data: unknown, extra: Partial<BroadcastEnvelope> = {}): BroadcastEnvelope {
  return { type: 'push', origin: ORIGIN, id: `${ORIGIN}:1`, target, event: 'said', dataJson: serializeData(data), ...extra } as BroadcastEnvelope;
}

describe('encodeEnvelope / decodeEnvelope', () => {
  it('round-trips a binary push (base64 once on the bus) and refuses garbage in its place', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        const envelope = push({ kind: 'room', room: 'r' }, null, { dataJson: '', binary: bytes } as Partial<BroadcastEnvelope>);
        const wire = encodeEnvelope(envelope);
        expect(wire.slice(wire.indexOf('\n') + 1)).toBe(Buffer.from(bytes).toString('base64'));
        const decoded = decodeEnvelope(wire) as Extract<BroadcastEnvelope, { type: 'push' }>;
        expect(decoded.dataJson).toBe('');
        expect(Buffer.from(decoded.binary!).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
    const header = JSON.stringify({ type: 'push', origin: ORIGIN, id: 'i', target: { kind: 'all' }, event: 'e', binary: true });
    for (const garbage of ['not base64!', 'abc', '====', '{"a":1}']) expect(decodeEnvelope(`${header}\n${garbage}`)).toBeUndefined();
    const notTrue = JSON.stringify({ type: 'push', origin: ORIGIN, id: 'i', target: { kind: 'all' }, event: 'e', binary: 'yes' });
    expect(decodeEnvelope(`${notTrue}\nAAAA`)).toBeUndefined();
  });

  it('takes a push id of up to 64 characters (an instance UUID and a counter), not longer: receivers remember ids', () => {
    const longest = `${ORIGIN}:${'9'.repeat(64 - ORIGIN.length - 1)}`;
    expect(decodeEnvelope(encodeEnvelope(push({ kind: 'all' }, 1, { id: longest } as Partial<BroadcastEnvelope>)))).toMatchObject({ id: longest });
    expect(decodeEnvelope(encodeEnvelope(push({ kind: 'all' }, 1, { id: `${longest}9` } as Partial<BroadcastEnvelope>)))).toBeUndefined();
  });

  it('round-trips a push to every kind of target', () => {
    const targets: BroadcastTarget[] = [
      { kind: 'all' },
      { kind: 'room', room: 'lobby' },
      { kind: 'client', sessionId: 'abc' },
      { kind: 'user', userId: '42' },
    ];
    for (const target of targets) {
      const envelope = push(target, { text: 'hi', n: 1 });
      expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope);
    }
  });

  it('keeps the payload JSON byte for byte (not serialised again)', () => {
    const envelope = push({ kind: 'all' }, { a: [1, 2, { b: null }], c: 'd' });
    const decoded = decodeEnvelope(encodeEnvelope(envelope));
    expect(decoded).toMatchObject({ type: 'push' });
    expect((decoded as Extract<BroadcastEnvelope, { type: 'push' }>).dataJson).toBe(envelope.type === 'push' && envelope.dataJson);
  });

  it('round-trips `except`', () => {
    const envelope = push({ kind: 'room', room: 'r' }, 1, { except: 'session-1' });
    const decoded = decodeEnvelope(encodeEnvelope(envelope));
    expect(decoded).toEqual(envelope);
    expect((decoded as { except?: string }).except).toBe('session-1');
  });

  it('a push without `except` decodes without an except value', () => {
    const decoded = decodeEnvelope(encodeEnvelope(push({ kind: 'all' }, 1)));
    expect((decoded as { except?: string }).except).toBeUndefined();
  });

  it('payloads with newlines inside strings survive', () => {
    const data = { text: 'line 1\nline 2\r\n\n', nested: ['\n', { '\nkey\n': '\u2028\u2029' }] };
    const envelope = push({ kind: 'room', room: 'r' }, data);
    const decoded = decodeEnvelope(encodeEnvelope(envelope)) as Extract<BroadcastEnvelope, { type: 'push' }>;
    expect(decoded).toEqual(envelope);
    expect(JSON.parse(decoded.dataJson)).toEqual(data);
  });

  it('a payload JSON that itself contains raw newlines (pretty-printed) survives', () => {
    const data = { a: { b: [1, 2] }, s: 'x\ny' };
    const envelope: BroadcastEnvelope = {
      type: 'push',
      origin: ORIGIN,
      id: `${ORIGIN}:1`,
      target: { kind: 'all' },
      event: 'e',
      dataJson: JSON.stringify(data, null, 2),
    };
    const decoded = decodeEnvelope(encodeEnvelope(envelope)) as Extract<BroadcastEnvelope, { type: 'push' }>;
    expect(decoded).toEqual(envelope);
    expect(JSON.parse(decoded.dataJson)).toEqual(data);
  });

  it('header fields with newlines and unicode survive (room, event, ids)', () => {
    const envelope = push({ kind: 'room', room: 'ро\nом 🎉' }, 'x', {
      event: 'ev\nent ✓',
      except: 's\n1',
    } as Partial<BroadcastEnvelope>);
    expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope);
  });

  it('unicode payloads (astral planes, combining marks, RTL, lone surrogates) survive', () => {
    const data = { emoji: '👩‍👩‍👧‍👦🎉', cjk: '漢字かな', rtl: 'שלום مرحبا', combining: 'e\u0301', lone: '\ud800', nul: '\u0000' };
    const envelope = push({ kind: 'user', userId: 'ü' }, data);
    const decoded = decodeEnvelope(encodeEnvelope(envelope)) as Extract<BroadcastEnvelope, { type: 'push' }>;
    expect(decoded).toEqual(envelope);
    expect(JSON.parse(decoded.dataJson)).toEqual(data);
  });

  it('round-trips null, strings, numbers and arrays as payloads', () => {
    for (const data of [null, '', 'text', 0, -1.5, true, [], [1, '2'], {}]) {
      const envelope = push({ kind: 'all' }, data);
      const decoded = decodeEnvelope(encodeEnvelope(envelope)) as Extract<BroadcastEnvelope, { type: 'push' }>;
      expect(decoded).toEqual(envelope);
      expect(JSON.parse(decoded.dataJson)).toEqual(data);
    }
  });

  it('round-trips join, leave and done control messages', () => {
    for (const type of ['join', 'leave'] as const) {
      const envelope: BroadcastEnvelope = { type, origin: ORIGIN, sessionId: 'sid\n1', room: 'room 🎉\n', request: 'r\n1' };
      expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope);
    }
    const done: BroadcastEnvelope = { type: 'done', origin: ORIGIN, request: 'r\n1' };
    expect(decodeEnvelope(encodeEnvelope(done))).toEqual(done);
  });

  it('round-trips a handover refusal, busy or not; a busy field other than true is no envelope', () => {
    for (const busy of [undefined, true] as const) {
      const refused: BroadcastEnvelope = { type: 'handover-refused', origin: ORIGIN, request: 'r\n1', ...(busy && { busy }) };
      expect(decodeEnvelope(encodeEnvelope(refused))).toEqual(refused);
    }
    // as Redis would carry them: any JSON but true, 100,000 levels of nesting, a 1 MiB string
    const wireOf = (busyJson: string): string => `{"type":"handover-refused","origin":"${ORIGIN}","request":"r1","busy":${busyJson}}`;
    const hostile = fc.oneof(
      fc.jsonValue({ maxDepth: 6 }).filter((value) => value !== true).map((value) => JSON.stringify(value)),
      fc.constantFrom(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, `"${'x'.repeat(1 << 20)}"`, '[true]', '"true"'),
    );
    fc.assert(
      fc.property(hostile, (busyJson) => {
        expect(decodeEnvelope(wireOf(busyJson))).toBeUndefined();
      }),
      { numRuns: 300 },
    );
    expect(decodeEnvelope(wireOf('true'))).toEqual({ type: 'handover-refused', origin: ORIGIN, request: 'r1', busy: true });
  });

  it('returns undefined for text that is not an envelope encoding', () => {
    expect(decodeEnvelope('not json')).toBeUndefined();
    expect(decodeEnvelope('{"type":"push"\n1')).toBeUndefined();
    expect(decodeEnvelope('')).toBeUndefined();
    expect(decodeEnvelope('\n{}')).toBeUndefined();
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        decodeEnvelope(text);
      }),
      { numRuns: 500 },
    );
  });

  describe('property: decode(encode(e)) equals e', () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    const textWithNewlines = fc.oneof(text, fc.array(text, { maxLength: 4 }).map((parts) => parts.join('\n')));
    const target: fc.Arbitrary<BroadcastTarget> = fc.oneof(
      fc.constant({ kind: 'all' as const }),
      textWithNewlines.map((room) => ({ kind: 'room' as const, room })),
      textWithNewlines.map((sessionId) => ({ kind: 'client' as const, sessionId })),
      textWithNewlines.map((userId) => ({ kind: 'user' as const, userId })),
    );
    const payload = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.jsonValue().map((v) => JSON.stringify(v, null, 2)),
      fc.dictionary(textWithNewlines, textWithNewlines).map((v) => JSON.stringify(v)),
    );
    const pushEnvelope: fc.Arbitrary<BroadcastEnvelope> = fc
      .record({
        origin: textWithNewlines,
        id: textWithNewlines.filter((id) => id.length <= 64), // what a push id may be
        target,
        event: textWithNewlines.filter((event) => event.length >= 1 && event.length <= 128 && !event.startsWith('$')), // what a push may be named
        except: fc.option(textWithNewlines, { nil: undefined }),
        dataJson: payload,
      })
      .map(({ except, ...rest }) => ({ type: 'push' as const, ...rest, ...(except === undefined ? {} : { except }) }));
    const controlEnvelope: fc.Arbitrary<BroadcastEnvelope> = fc.oneof(
      fc.record({
        type: fc.constantFrom('join' as const, 'leave' as const),
        origin: textWithNewlines,
        sessionId: textWithNewlines,
        room: textWithNewlines,
        request: textWithNewlines,
      }),
      fc.record({ type: fc.constant('done' as const), origin: textWithNewlines, request: textWithNewlines }),
    );

    it('for pushes (payload kept verbatim) and control messages', () => {
      fc.assert(
        fc.property(fc.oneof(pushEnvelope, controlEnvelope), (envelope) => {
          const decoded = decodeEnvelope(encodeEnvelope(envelope));
          expect(decoded).toEqual(envelope);
          if (envelope.type === 'push') {
            expect((decoded as Extract<BroadcastEnvelope, { type: 'push' }>).dataJson).toBe(envelope.dataJson);
          }
        }),
        { numRuns: 1000 },
      );
    });

    it('the payload parses back to the value that was serialised', () => {
      fc.assert(
        fc.property(fc.jsonValue(), target, (value, to) => {
          const envelope: BroadcastEnvelope = { type: 'push', origin: ORIGIN, id: 'i', target: to, event: 'e', dataJson: serializeData(value) };
          const decoded = decodeEnvelope(encodeEnvelope(envelope)) as Extract<BroadcastEnvelope, { type: 'push' }>;
          expect(JSON.parse(decoded.dataJson)).toEqual(JSON.parse(JSON.stringify(value)));
        }),
        { numRuns: 500 },
      );
    });
  });
});

describe('decodeEnvelope: whatever arrives over the bus', () => {
  it('refuses envelopes of the wrong shape instead of passing them on', () => {
    const bad = [
      '{"type":"push","origin":"o"}\n1',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"room"}}\n1',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"nope"}}\n1',
      '{"type":"push","origin":"o","id":"i","event":"e","target":null}\n1',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"},"except":5}\n1',
      '{"type":"push","origin":"o","id":"i","event":"","target":{"kind":"all"}}\n1',
      '{"type":"push","origin":"o","id":"i","event":"$ready","target":{"kind":"all"}}\n1',
      `{"type":"push","origin":"o","id":"i","event":"${'e'.repeat(129)}","target":{"kind":"all"}}\n1`,
      `{"type":"push","origin":"o","id":"i","event":"${'e'.repeat(1100)}","target":{"kind":"all"},"binary":true}\nAAAA`,
      '{"type":"join","origin":"o","sessionId":1,"room":"r","request":"q"}',
      '{"type":"handover-ready","origin":"o","request":"q","rooms":"r"}',
      '{"type":"adopt-offer","origin":"o","sessions":[{"sessionId":"s"}]}',
      '{"type":"__proto__","origin":"o"}',
      '{"type":"toString","origin":"o"}',
      '[1]\n2',
      // A payload that is not exactly one JSON value would put whatever it holds into every recipient's frame.
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"}}\n',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"}}\n1}',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"}}\n1,"seq":1',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"}}\n{"a":1',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"}}\n"a" "b"',
      '{"type":"push","origin":"o","id":"i","event":"e","target":{"kind":"all"}}\nundefined',
      'null',
      '"push"',
    ];
    for (const payload of bad) expect(decodeEnvelope(payload)).toBeUndefined();
  });

  it('never throws on random text', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        expect(() => decodeEnvelope(text)).not.toThrow();
      }),
    );
  });
});
