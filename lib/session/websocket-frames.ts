import type { PreparedPush } from '../protocol/index.js';

/**
 * Unmasked server-to-client WebSocket text frames (RFC 6455 §5.2), built here so that a push
 * fanned out to many connections is encoded once: its JSON head once per push, and a push
 * without `seq` once as a whole frame that every connection writes as it is.
 */

const FIN_TEXT = 0x81;
const LENGTH_16 = 126;
const LENGTH_64 = 127;
const CLOSING_BRACE = 0x7d;

/** Above this, a sequenced frame is written in three parts instead of copying the shared head per connection. */
const COPY_LIMIT_BYTES = 16 * 1024;

/** A frame as one buffer, or as parts written back to back (the shared head is not copied). */
export type EncodedFrame = Buffer | readonly Buffer[];

function headerLength(payloadLength: number): number {
  if (payloadLength < LENGTH_16) return 2;
  return payloadLength <= 0xffff ? 4 : 10;
}

/** Writes the header of a final text frame of `payloadLength` bytes at the start of `target`; returns its length. */
function writeHeader(target: Buffer, payloadLength: number): number {
  target[0] = FIN_TEXT;
  if (payloadLength < LENGTH_16) {
    target[1] = payloadLength;
    return 2;
  }
  if (payloadLength <= 0xffff) {
    target[1] = LENGTH_16;
    target.writeUInt16BE(payloadLength, 2);
    return 4;
  }
  target[1] = LENGTH_64;
  target.writeUInt32BE(Math.floor(payloadLength / 0x100000000), 2);
  target.writeUInt32BE(payloadLength >>> 0, 6);
  return 10;
}

/** A whole text frame carrying `text`. */
export function textFrame(text: string): Buffer {
  const payloadLength = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(headerLength(payloadLength) + payloadLength);
  frame.write(text, writeHeader(frame, payloadLength));
  return frame;
}

/**
 * The last push encoded: a fan-out delivers one push to every recipient in a row, so one entry
 * serves it, and nothing is kept beyond the next push.
 */
let lastPush: PreparedPush | undefined;
let lastHead: Buffer = Buffer.alloc(0);
let lastWholeFrame: Buffer | undefined;

function encodedHead(push: PreparedPush): Buffer {
  if (push !== lastPush) {
    lastPush = push;
    lastHead = Buffer.from(push.textHead);
    lastWholeFrame = undefined;
  }
  return lastHead;
}

/** One recipient's frame of a text push: `{"event":…,"data":…` then `,"seq":N}`, or `}` alone without `seq`. */
export function pushFrame(push: PreparedPush, seq: number | undefined): EncodedFrame {
  const head = encodedHead(push);
  if (seq === undefined) {
    lastWholeFrame ??= wholeFrame(head);
    return lastWholeFrame;
  }
  const tail = `,"seq":${seq}}`;
  const payloadLength = head.length + tail.length;
  if (payloadLength > COPY_LIMIT_BYTES) {
    const header = Buffer.allocUnsafe(headerLength(payloadLength));
    writeHeader(header, payloadLength);
    return [header, head, Buffer.from(tail, 'latin1')];
  }
  const frame = Buffer.allocUnsafe(headerLength(payloadLength) + payloadLength);
  const offset = writeHeader(frame, payloadLength);
  head.copy(frame, offset);
  frame.write(tail, offset + head.length, 'latin1');
  return frame;
}

function wholeFrame(head: Buffer): Buffer {
  const payloadLength = head.length + 1;
  const frame = Buffer.allocUnsafe(headerLength(payloadLength) + payloadLength);
  const offset = writeHeader(frame, payloadLength);
  head.copy(frame, offset);
  frame[offset + head.length] = CLOSING_BRACE;
  return frame;
}

/** Bytes of an encoded frame. */
export function encodedLength(frame: EncodedFrame): number {
  if (Buffer.isBuffer(frame)) return frame.length;
  let length = 0;
  for (const part of frame) length += part.length;
  return length;
}
