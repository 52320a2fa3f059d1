import fc from 'fast-check';
import { preparePush } from '../protocol/index.js';
import { encodedLength, pushFrame, pushFrameWritten, textFrame, type EncodedFrame } from './websocket-frames.js';

/** Decodes one unmasked, final text frame (RFC 6455 §5.2) to its payload text. */
function decodeTextFrame(frame: EncodedFrame): string {
  const bytes = Buffer.isBuffer(frame) ? frame : Buffer.concat(frame);
  expect(bytes[0]).toBe(0x81);
  expect(bytes[1] & 0x80).toBe(0);
  let length = bytes[1];
  let offset = 2;
  if (length === 126) {
    length = bytes.readUInt16BE(2);
    offset = 4;
    expect(length).toBeGreaterThanOrEqual(126);
  } else if (length === 127) {
    length = Number(bytes.readBigUInt64BE(2));
    offset = 10;
    expect(length).toBeGreaterThan(0xffff);
  }
  expect(bytes.length).toBe(offset + length);
  expect(encodedLength(frame)).toBe(bytes.length);
  return bytes.subarray(offset).toString('utf8');
}

describe('websocket-frames', () => {
  it('encodes a push for each recipient as the text frame of its wire string', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }).filter((event) => !event.startsWith('$')), // an application's event
        fc.oneof(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.constantFrom(100, 121, 122, 65_520, 65_540, 70_000).map((n) => 'é'.repeat(n / 2))),
        fc.option(fc.nat(), { nil: undefined }),
        (event, text, seq) => {
          const push = preparePush(event, JSON.stringify(text));
          expect(decodeTextFrame(pushFrame(push, seq, false))).toBe(push.frame(seq));
          expect(decodeTextFrame(pushFrame(push, seq, true))).toBe(push.frame(seq));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives every recipient of an unsequenced push the same frame, and sequenced ones their own', () => {
    const push = preparePush('tick', '{"n":1}');
    expect(pushFrame(push, undefined, false)).toBe(pushFrame(push, undefined, true));
    expect(decodeTextFrame(pushFrame(push, 7, false))).toBe('{"event":"tick","data":{"n":1},"seq":7}');
    expect(decodeTextFrame(pushFrame(push, 8, false))).toBe('{"event":"tick","data":{"n":1},"seq":8}');
    const [prefix, tail] = pushFrame(push, 9, true) as Buffer[];
    expect(decodeTextFrame([prefix, tail])).toBe('{"event":"tick","data":{"n":1},"seq":9}');
    expect((pushFrame(push, 3, true) as Buffer[])[0]).toBe(prefix);
    const next = preparePush('tick', '{"n":2}');
    expect(decodeTextFrame(pushFrame(next, undefined, false))).toBe('{"event":"tick","data":{"n":2}}');
  });

  it('gives the bytes of a frame reported written to the next recipient, and never touches a frame still held', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 2 ** 53 - 1 }), fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 20 }),
        fc.constantFrom(10, 90, 16_340),
        (recipients, size) => {
          const push = preparePush('tick', JSON.stringify('x'.repeat(size)));
          const held: Array<{ frame: EncodedFrame; bytes: Buffer; seq: number }> = [];
          for (const [seq, queued, written] of recipients) {
            const frame = pushFrame(push, seq, queued);
            expect(decodeTextFrame(frame)).toBe(push.frame(seq));
            if (written) pushFrameWritten(frame);
            else held.push({ frame, bytes: Buffer.concat(Buffer.isBuffer(frame) ? [frame] : frame), seq });
          }
          for (const { frame, bytes, seq } of held) {
            expect(Buffer.concat(Buffer.isBuffer(frame) ? [frame] : frame)).toEqual(bytes);
            expect(decodeTextFrame(frame)).toBe(push.frame(seq));
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('frames any text, at each header size', () => {
    for (const length of [0, 125, 126, 65_535, 65_536]) {
      const text = 'x'.repeat(length);
      expect(decodeTextFrame(textFrame(text))).toBe(text);
    }
    expect(decodeTextFrame(textFrame('ünïcødé ✓ 😀'))).toBe('ünïcødé ✓ 😀');
  });
});
