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

/** Writes the header of a final text frame of `payloadLength` bytes into `target` at `at`; returns its length. */
function writeHeader(target: Buffer, payloadLength: number, at = 0): number {
  target[at] = FIN_TEXT;
  if (payloadLength < LENGTH_16) {
    target[at + 1] = payloadLength;
    return 2;
  }
  if (payloadLength <= 0xffff) {
    target[at + 1] = LENGTH_16;
    target.writeUInt16BE(payloadLength, at + 2);
    return 4;
  }
  target[at + 1] = LENGTH_64;
  target.writeUInt32BE(Math.floor(payloadLength / 0x100000000), at + 2);
  target.writeUInt32BE(payloadLength >>> 0, at + 6);
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

/**
 * Where the sequenced frames of the last push are written: room for the longest header, the
 * head, then `,"seq":`, the digits and `}`. Each recipient's frame rewrites only its header and
 * seq, in place, while the socket that got the previous frame wrote it out at once
 * (`pushFrameWritten`); a socket that keeps a frame queued keeps the workspace, and the next
 * frame gets a new one.
 */
let workspace: Buffer | undefined;
let workspaceInUse = false;
/** The last frame handed out from the workspace, and its bounds there: reused while they stay the same. */
let workspaceFrame: Buffer | undefined;
let frameStart = 0;
let frameEnd = 0;

const SEQ_KEY = ',"seq":';
const MAX_HEADER_BYTES = 10;
const MAX_SEQ_DIGITS = 16;
const DIGIT_ZERO = 0x30;

function encodedHead(push: PreparedPush): Buffer {
  if (push !== lastPush) {
    lastPush = push;
    lastHead = Buffer.from(push.textHead);
    lastWholeFrame = undefined;
    workspace = undefined;
    workspaceFrame = undefined;
  }
  return lastHead;
}

/**
 * One recipient's frame of a text push: `{"event":…,"data":…` then `,"seq":N}`, or `}` alone
 * without `seq`. Once a socket has written a frame out whole, report it with `pushFrameWritten`
 * so that the next recipient's frame may take its bytes; a frame not reported is never touched.
 */
export function pushFrame(push: PreparedPush, seq: number | undefined): EncodedFrame {
  const head = encodedHead(push);
  if (seq === undefined) {
    lastWholeFrame ??= wholeFrame(head);
    return lastWholeFrame;
  }
  const digits = digitCount(seq);
  const payloadLength = head.length + SEQ_KEY.length + digits + 1;
  if (payloadLength > COPY_LIMIT_BYTES) {
    const header = Buffer.allocUnsafe(headerLength(payloadLength));
    writeHeader(header, payloadLength);
    return [header, head, Buffer.from(`${SEQ_KEY}${seq}}`, 'latin1')];
  }
  return workspaceFrameOf(head, seq, digits, payloadLength);
}

/** Tells that `frame`, from `pushFrame`, has left the process: no socket holds it. */
export function pushFrameWritten(frame: EncodedFrame): void {
  if (frame === workspaceFrame) workspaceInUse = false;
}

function workspaceFrameOf(head: Buffer, seq: number, digits: number, payloadLength: number): Buffer {
  if (!workspace || workspaceInUse) {
    workspace = Buffer.allocUnsafe(MAX_HEADER_BYTES + head.length + SEQ_KEY.length + MAX_SEQ_DIGITS + 1);
    head.copy(workspace, MAX_HEADER_BYTES);
    workspace.write(SEQ_KEY, MAX_HEADER_BYTES + head.length, 'latin1');
    workspaceFrame = undefined;
  }
  const end = MAX_HEADER_BYTES + payloadLength;
  workspace[end - 1] = CLOSING_BRACE;
  for (let at = end - 2, rest = seq; at >= end - 1 - digits; at--, rest = Math.floor(rest / 10)) {
    workspace[at] = DIGIT_ZERO + (rest % 10);
  }
  const start = MAX_HEADER_BYTES - headerLength(payloadLength);
  writeHeader(workspace, payloadLength, start);
  if (!workspaceFrame || frameStart !== start || frameEnd !== end) {
    workspaceFrame = workspace.subarray(start, end);
    frameStart = start;
    frameEnd = end;
  }
  workspaceInUse = true;
  return workspaceFrame;
}

function digitCount(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
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
