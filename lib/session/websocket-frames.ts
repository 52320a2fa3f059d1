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
const DIGIT_ZERO = 0x30;
const SEQ_KEY = ',"seq":';
const MAX_HEADER_BYTES = 10;
/** Digits of the largest safe integer. */
const MAX_SEQ_DIGITS = 16;

/** Above this, a sequenced frame is written in two parts instead of copying the shared head per connection. */
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
/** Header, head and `,"seq":` of the last push, by the number of digits of the seq that follows. */
let prefixes: Buffer[] = [];

/**
 * Where whole sequenced frames of the last push are written: room for the longest header, the
 * head, `,"seq":`, the digits and `}`. Each recipient's frame rewrites only its header and seq
 * in place, as long as the socket that got the previous frame wrote it out at once
 * (`pushFrameWritten`); a socket that holds a frame keeps the workspace, and the next frame gets
 * a new one.
 */
let workspace: Buffer | undefined;
let workspaceInUse = false;
/** The last frame handed out from the workspace, and its bounds there: reused while they stay the same. */
let workspaceFrame: Buffer | undefined;
let frameStart = 0;
let frameEnd = 0;

function encodedHead(push: PreparedPush): Buffer {
  if (push !== lastPush) {
    lastPush = push;
    lastHead = headBytes(push);
    lastWholeFrame = undefined;
    prefixes = [];
    workspace = undefined;
    workspaceFrame = undefined;
  }
  return lastHead;
}

/**
 * One recipient's frame of a text push: `{"event":…,"data":…` then `,"seq":N}`, or `}` alone
 * without `seq`. For a socket that will queue the frame (`queued`: corked, or data waiting), a
 * sequenced frame comes in two parts, the first shared by every recipient, so that nothing is
 * copied per recipient; otherwise as one buffer: once the socket has written it out whole,
 * report it with `pushFrameWritten` so that the next recipient's frame may take its bytes.
 */
export function pushFrame(push: PreparedPush, seq: number | undefined, queued: boolean): EncodedFrame {
  const head = encodedHead(push);
  if (seq === undefined) {
    lastWholeFrame ??= wholeFrame(head);
    return lastWholeFrame;
  }
  const digits = digitCount(seq);
  const payloadLength = head.length + SEQ_KEY.length + digits + 1;
  if (queued || payloadLength > COPY_LIMIT_BYTES) return [sequencedPrefix(head, digits, payloadLength), seqTail(seq, digits)];
  return workspaceFrameOf(head, seq, digits, payloadLength);
}

/** Tells that `frame`, from `pushFrame`, has left the process: no socket holds it. */
export function pushFrameWritten(frame: EncodedFrame): void {
  if (frame === workspaceFrame) workspaceInUse = false;
}

function sequencedPrefix(head: Buffer, digits: number, payloadLength: number): Buffer {
  let prefix = prefixes[digits];
  if (!prefix) {
    prefix = Buffer.allocUnsafe(headerLength(payloadLength) + head.length + SEQ_KEY.length);
    const offset = writeHeader(prefix, payloadLength);
    head.copy(prefix, offset);
    prefix.write(SEQ_KEY, offset + head.length, 'latin1');
    prefixes[digits] = prefix;
  }
  return prefix;
}

/** `N}` */
function seqTail(seq: number, digits: number): Buffer {
  const tail = Buffer.allocUnsafe(digits + 1);
  writeDigits(tail, digits, seq);
  tail[digits] = CLOSING_BRACE;
  return tail;
}

function workspaceFrameOf(head: Buffer, seq: number, digits: number, payloadLength: number): Buffer {
  if (!workspace || workspaceInUse) {
    workspace = Buffer.allocUnsafe(MAX_HEADER_BYTES + head.length + SEQ_KEY.length + MAX_SEQ_DIGITS + 1);
    head.copy(workspace, MAX_HEADER_BYTES);
    workspace.write(SEQ_KEY, MAX_HEADER_BYTES + head.length, 'latin1');
    workspaceFrame = undefined;
  }
  const end = MAX_HEADER_BYTES + payloadLength;
  writeDigits(workspace, end - 1, seq);
  workspace[end - 1] = CLOSING_BRACE;
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

/** Writes the decimal digits of `value` into `target`, the last one just before `end`. */
function writeDigits(target: Buffer, end: number, value: number): void {
  let rest = value;
  let at = end;
  do {
    target[--at] = DIGIT_ZERO + (rest % 10);
    rest = Math.floor(rest / 10);
  } while (rest > 0);
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

/** `{"event":…,"data":…` from its parts (see `PreparedPush.headPrefix`). */
function headBytes({ headPrefix, dataJson }: PreparedPush): Buffer {
  const bytes = Buffer.allocUnsafe(Buffer.byteLength(headPrefix) + Buffer.byteLength(dataJson));
  bytes.write(dataJson, bytes.write(headPrefix));
  return bytes;
}
