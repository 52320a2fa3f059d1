import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  binaryHeaderJson,
  decodeBinaryFrame,
  decodeClientBinary,
  decodeServerBinary,
  encodeBinaryHead,
  encodeBinaryMessage,
  MAX_BINARY_HEADER_BYTES,
} from './binary-frame.js';
import { chunkHeaderJson, chunkHeaderOf, streamDataOf, uploadDataOf } from './transfer.js';

const eventName = fc.string({ minLength: 1, maxLength: 128 }).filter((event) => !event.startsWith('$'));

describe('binary frames', () => {
  it('round-trips event, id and payload (client → server)', () => {
    fc.assert(
      fc.property(eventName, fc.option(fc.nat(), { nil: undefined }), fc.uint8Array({ maxLength: 2000 }), (event, id, payload) => {
        const frame = encodeBinaryMessage(binaryHeaderJson(event, { id }), payload);
        const decoded = decodeClientBinary(frame);
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        expect(decoded.message.event).toBe(event);
        expect(decoded.message.id).toBe(id);
        expect(Buffer.from(decoded.message.data!).equals(Buffer.from(payload))).toBe(true);
      }),
    );
  });

  it('round-trips seq and ref (server → client), head and payload as two parts', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 128 }), fc.nat(), fc.uint8Array({ maxLength: 500 }), (event, seq, payload) => {
        const head = encodeBinaryHead(binaryHeaderJson(event, { seq, ref: seq + 1 }));
        const message = decodeServerBinary(Uint8Array.from([...head, ...payload]));
        expect(message).toMatchObject({ event, seq, ref: seq + 1 });
        expect(Array.from(message!.data!)).toEqual(Array.from(payload));
      }),
    );
  });

  it('round-trips chunk headers', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.string({ minLength: 1, maxLength: 128 })), fc.nat(), (transfer, offset) => {
        const decoded = decodeBinaryFrame(encodeBinaryMessage(chunkHeaderJson(transfer, offset), new Uint8Array(3)));
        expect(decoded.ok && chunkHeaderOf(decoded.header)).toEqual({ transfer, offset });
      }),
    );
  });

  it('never throws on garbage, and refuses what is not a frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        decodeBinaryFrame(bytes);
        decodeServerBinary(bytes);
        const decoded = decodeClientBinary(bytes);
        if (decoded.ok) expect(typeof decoded.message.event).toBe('string');
      }),
    );
    expect(decodeBinaryFrame(new Uint8Array([0])).ok).toBe(false);
    expect(decodeBinaryFrame(new Uint8Array([0, 5, 0x7b])).ok).toBe(false); // shorter than its header
    expect(decodeBinaryFrame(encodeBinaryMessage('[1]', new Uint8Array(0))).ok).toBe(false); // not an object
    expect(decodeBinaryFrame(new Uint8Array([0, 2, 0xff, 0xfe])).ok).toBe(false); // not UTF-8
    expect(decodeClientBinary(encodeBinaryMessage('{"event":""}', new Uint8Array(0))).ok).toBe(false);
    expect(decodeClientBinary(encodeBinaryMessage('{"event":"x","id":-1}', new Uint8Array(0))).ok).toBe(false);
  });

  it('refuses a header above 1024 bytes on both sides', () => {
    const long = JSON.stringify({ event: 'x', pad: 'p'.repeat(MAX_BINARY_HEADER_BYTES) });
    expect(() => encodeBinaryHead(long)).toThrow(RangeError);
    const bytes = new Uint8Array(2 + long.length);
    new DataView(bytes.buffer).setUint16(0, long.length);
    bytes.set(new TextEncoder().encode(long), 2);
    expect(decodeBinaryFrame(bytes)).toEqual({ ok: false, reason: expect.stringContaining('1024') });
  });

  it('checks transfer announcements', () => {
    expect(uploadDataOf({ transfer: 1, event: 'file', size: 10 })).toEqual({ transfer: 1, event: 'file', size: 10 });
    for (const bad of [null, [], { transfer: 1, event: '$x', size: 1 }, { transfer: -1, event: 'a', size: 1 }, { transfer: 1, event: 'a', size: 1.5 }]) {
      expect(uploadDataOf(bad)).toBeUndefined();
    }
    expect(streamDataOf({ transfer: 's1', event: 'e', size: 4, offset: 5 })).toBeUndefined();
  });
});
