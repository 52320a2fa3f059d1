import type { ClientMessage, ServerMessage } from './envelope.js';
import { isValidEventName, isValidMessageId, type MessageId } from './message-fields.js';

/**
 * Binary frames, both directions: `[u16 big-endian header length][header: UTF-8 JSON][payload]`.
 * The header is the text envelope without `data` (`{"event":"x","id":3}`, `{"event":"x","seq":7}`,
 * `{"event":"$chunk","transfer":1,"offset":0}`); the payload is the message's `data`.
 */

/** Longest header a binary frame may carry. */
export const MAX_BINARY_HEADER_BYTES = 1024;

/** The two bytes that give the header's length. */
export const BINARY_LENGTH_PREFIX_BYTES = 2;

/** A binary frame as two parts, so that a payload sent to many recipients is never copied per recipient. */
export interface BinaryFrame {
  /** The length prefix and the header. */
  readonly head: Uint8Array;
  readonly payload: Uint8Array;
}

/** What a server writes: a JSON text frame or a binary one. */
export type OutgoingFrame = string | BinaryFrame;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Whether a value is sent as a binary frame: a `Uint8Array`, which a Node `Buffer` is. */
export function isBinaryData(data: unknown): data is Uint8Array {
  return data instanceof Uint8Array;
}

/** The length prefix and the header of a binary frame. Throws a RangeError for a header above the limit. */
export function encodeBinaryHead(headerJson: string): Uint8Array {
  const header = encoder.encode(headerJson);
  if (header.byteLength > MAX_BINARY_HEADER_BYTES) {
    throw new RangeError(`a binary frame header may have at most ${MAX_BINARY_HEADER_BYTES} bytes`);
  }
  const head = new Uint8Array(BINARY_LENGTH_PREFIX_BYTES + header.byteLength);
  new DataView(head.buffer).setUint16(0, header.byteLength);
  head.set(header, BINARY_LENGTH_PREFIX_BYTES);
  return head;
}

/** One contiguous binary frame (what a browser's `WebSocket.send` takes): one copy of the payload. */
export function encodeBinaryMessage(headerJson: string, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encodeBinaryHead(headerJson);
  const frame = new Uint8Array(head.byteLength + payload.byteLength);
  frame.set(head);
  frame.set(payload, head.byteLength);
  return frame;
}

/** `{"event":…}` plus the extra fields, as JSON. */
export function binaryHeaderJson(event: string, extra?: { id?: MessageId; ref?: MessageId; seq?: number }): string {
  let header = `{"event":${JSON.stringify(event)}`;
  if (extra?.id !== undefined) header += `,"id":${JSON.stringify(extra.id)}`;
  if (extra?.ref !== undefined) header += `,"ref":${JSON.stringify(extra.ref)}`;
  if (extra?.seq !== undefined) header += `,"seq":${extra.seq}`;
  return header + '}';
}

export function binaryFrameByteLength(frame: BinaryFrame): number {
  return frame.head.byteLength + frame.payload.byteLength;
}

/** Bytes of a frame on the wire: UTF-16 length for text (what the callers bound), bytes for binary. */
export function frameSize(frame: OutgoingFrame): number {
  return typeof frame === 'string' ? frame.length : binaryFrameByteLength(frame);
}

export type BinaryDecodeResult =
  | { ok: true; header: Record<string, unknown>; payload: Uint8Array }
  | { ok: false; reason: string };

/** Splits a binary frame into its header (a parsed JSON object) and its payload (a view, not a copy). Never throws. */
export function decodeBinaryFrame(bytes: Uint8Array): BinaryDecodeResult {
  if (bytes.byteLength < BINARY_LENGTH_PREFIX_BYTES) return { ok: false, reason: 'binary frame too short for its header length' };
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(0);
  if (length > MAX_BINARY_HEADER_BYTES) {
    return { ok: false, reason: `binary frame header longer than ${MAX_BINARY_HEADER_BYTES} bytes` };
  }
  const end = BINARY_LENGTH_PREFIX_BYTES + length;
  if (end > bytes.byteLength) return { ok: false, reason: 'binary frame shorter than its header length' };
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(BINARY_LENGTH_PREFIX_BYTES, end)));
  } catch {
    return { ok: false, reason: 'binary frame header is not UTF-8 JSON' };
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    return { ok: false, reason: 'binary frame header must be a JSON object' };
  }
  return { ok: true, header: header as Record<string, unknown>, payload: bytes.subarray(end) };
}

export type BinaryClientDecodeResult =
  | { ok: true; message: ClientMessage<Uint8Array>; header: Record<string, unknown> }
  | { ok: false; reason: string; id?: MessageId };

/**
 * Parses a binary frame from a client with the rules of text frames (event name, id); the payload
 * becomes `data`. The header is returned too, for the fields of `$chunk`. Never throws.
 */
export function decodeClientBinary(bytes: Uint8Array): BinaryClientDecodeResult {
  const frame = decodeBinaryFrame(bytes);
  if (!frame.ok) return frame;
  const { event, id } = frame.header;
  if (id !== undefined && !isValidMessageId(id)) {
    return { ok: false, reason: '"id" must be a non-negative integer or a string of 1 to 128 characters' };
  }
  if (!isValidEventName(event)) {
    return { ok: false, reason: '"event" must be a non-empty string of at most 128 characters', id };
  }
  const message: ClientMessage<Uint8Array> = { event, data: frame.payload };
  if (id !== undefined) message.id = id;
  return { ok: true, message, header: frame.header };
}

/** Parses a binary frame from the server (used by clients); undefined for anything that is not one. */
export function decodeServerBinary(bytes: Uint8Array): (ServerMessage<Uint8Array> & Record<string, unknown>) | undefined {
  const frame = decodeBinaryFrame(bytes);
  if (!frame.ok || typeof frame.header.event !== 'string') return undefined;
  return { ...frame.header, event: frame.header.event, data: frame.payload };
}
