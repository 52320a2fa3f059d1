import type { ErrorCode } from './error-code.js';
import { binaryHeaderJson, encodeBinaryHead, isBinaryData, type BinaryFrame, type OutgoingFrame } from './binary-frame.js';
import { appEventNameError, isAppEventName, isRecord, isValidEventName, isValidMessageId, MAX_ID_STRING_LENGTH, type MessageId } from './message-fields.js';
import { MAX_EVENT_NAME_LENGTH } from './system-event.js';

/** A frame sent by a client: `{ event, data?, id? }`. */
export interface ClientMessage<T = unknown> {
  event: string;
  data?: T;
  id?: MessageId;
}

/** A frame sent by the server. `ref` answers a client id; `seq` numbers pushes. */
export interface ServerMessage<T = unknown> {
  event: string;
  data?: T;
  ref?: MessageId;
  seq?: number;
}

export interface ErrorData {
  code: ErrorCode | (string & {});
  message: string;
  ref?: MessageId;
  details?: unknown;
  retryAfterMs?: number;
}

/** `$error` data with the documented shape (used by clients), else undefined. */
export function errorDataOf(data: unknown): ErrorData | undefined {
  if (!isRecord(data)) return undefined;
  const { code, message, ref, retryAfterMs } = data;
  const valid =
    typeof code === 'string' &&
    code !== '' &&
    typeof message === 'string' &&
    (ref === undefined || isValidMessageId(ref)) &&
    (retryAfterMs === undefined || (typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) && retryAfterMs >= 0));
  return valid ? (data as unknown as ErrorData) : undefined;
}

export interface HelloData {
  token?: string;
  resume?: { sessionId: string; resumeToken: string; lastSeq: number };
}

export type DecodeResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; reason: string; id?: MessageId };

/** How deeply a client frame may nest objects and arrays, the envelope itself included. */
export const DEFAULT_MAX_MESSAGE_DEPTH = 64;

const ACK_PREFIX = Array.from('{"event":"$ack","data":{"seq":', (char) => char.charCodeAt(0));
const CLOSING_BRACE = 0x7d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** Digits of the largest seq read without parsing (below 2^53). */
const MAX_ACK_DIGITS = 15;

/**
 * The seq of a cumulative `$ack` in the exact form clients send it,
 * `{"event":"$ack","data":{"seq":N}}`, read from the frame's bytes without parsing; undefined for
 * any other frame (which then goes through `decodeClientMessage`).
 */
export function plainAckSeq(bytes: Uint8Array): number | undefined {
  const end = bytes.length - 2;
  const digits = end - ACK_PREFIX.length;
  if (digits < 1 || digits > MAX_ACK_DIGITS || bytes[end] !== CLOSING_BRACE || bytes[end + 1] !== CLOSING_BRACE) return undefined;
  for (let i = 0; i < ACK_PREFIX.length; i++) if (bytes[i] !== ACK_PREFIX[i]) return undefined;
  if (digits > 1 && bytes[ACK_PREFIX.length] === DIGIT_0) return undefined;
  let seq = 0;
  for (let i = ACK_PREFIX.length; i < end; i++) {
    const byte = bytes[i];
    if (byte < DIGIT_0 || byte > DIGIT_9) return undefined;
    seq = seq * 10 + (byte - DIGIT_0);
  }
  return seq;
}

/**
 * Parses and checks one text frame from a client. Never throws. A frame that nests deeper than
 * `maxDepth` is refused before its value is used (its top-level `id` is still read for `ref`).
 */
export function decodeClientMessage(text: string, maxDepth = DEFAULT_MAX_MESSAGE_DEPTH): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not valid JSON' };
  }
  if (nestsDeeperThan(text, maxDepth)) {
    return { ok: false, reason: `frame nests deeper than ${maxDepth} levels`, id: topLevelId(parsed) };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, reason: 'frame must be a JSON object' };
  }
  const { event, data, id } = parsed as Record<string, unknown>;
  const validId = isValidMessageId(id) ? id : undefined;
  if (id !== undefined && validId === undefined) {
    return {
      ok: false,
      reason: `"id" must be a non-negative integer or a string of 1 to ${MAX_ID_STRING_LENGTH} characters`,
    };
  }
  if (!isValidEventName(event)) {
    return {
      ok: false,
      reason: `"event" must be a non-empty string of at most ${MAX_EVENT_NAME_LENGTH} characters`,
      id: validId,
    };
  }
  const message: ClientMessage = { event, data };
  if (validId !== undefined) message.id = validId;
  return { ok: true, message };
}

function topLevelId(parsed: unknown): MessageId | undefined {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const { id } = parsed as { id?: unknown };
  return isValidMessageId(id) ? id : undefined;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether a JSON text nests objects and arrays deeper than `maxDepth`, in one pass over the text
 * without recursion. Texts with no more opening brackets than `maxDepth` are cleared by counting.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  if (countOpenings(text, maxDepth + 1) <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === BACKSLASH) i++;
      else if (char === QUOTE) inString = false;
    } else if (char === QUOTE) {
      inString = true;
    } else if (char === OPEN_BRACE || char === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (char === CLOSE_BRACE || char === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** Occurrences of `{` and `[` (strings included), counted up to `stopAt`. */
function countOpenings(text: string, stopAt: number): number {
  let count = 0;
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1 && count < stopAt; i = text.indexOf(bracket, i + 1)) count++;
  }
  return count;
}

/**
 * The text of the value of a top-level member of a JSON object text that `JSON.parse` accepted,
 * as the client wrote it (the last one, as `JSON.parse` takes it); undefined when there is none.
 */
export function memberText(json: string, key: string): string | undefined {
  let found: string | undefined;
  let i = skipWhitespace(json, json.indexOf('{') + 1);
  while (i < json.length && json.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(json, i);
    const rawKey = json.slice(i, keyEnd);
    const valueStart = skipWhitespace(json, skipWhitespace(json, keyEnd) + 1); // past the ':'
    const valueEnd = valueEndAt(json, valueStart);
    if ((rawKey.includes('\\') ? JSON.parse(rawKey) : rawKey.slice(1, -1)) === key) found = json.slice(valueStart, valueEnd);
    i = skipWhitespace(json, valueEnd);
    if (json.charCodeAt(i) === COMMA) i = skipWhitespace(json, i + 1);
  }
  return found;
}

const COMMA = 0x2c;

function skipWhitespace(json: string, i: number): number {
  while (i < json.length && isWhitespace(json.charCodeAt(i))) i++;
  return i;
}

function isWhitespace(char: number): boolean {
  return char === 0x20 || char === 0x0a || char === 0x0d || char === 0x09;
}

/** Index just past the string that opens at `start` (its closing quote included). */
function stringEnd(json: string, start: number): number {
  for (let i = start + 1; i < json.length; i++) {
    const char = json.charCodeAt(i);
    if (char === BACKSLASH) i++;
    else if (char === QUOTE) return i + 1;
  }
  return json.length;
}

/** Index just past the value that starts at `start`. */
function valueEndAt(json: string, start: number): number {
  const first = json.charCodeAt(start);
  if (first === QUOTE) return stringEnd(json, start);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let i = start;
    while (i < json.length && !isValueEnd(json.charCodeAt(i))) i++;
    return i;
  }
  let depth = 0;
  for (let i = start; i < json.length; i++) {
    const char = json.charCodeAt(i);
    if (char === QUOTE) i = stringEnd(json, i) - 1;
    else if (char === OPEN_BRACE || char === OPEN_BRACKET) depth++;
    else if ((char === CLOSE_BRACE || char === CLOSE_BRACKET) && --depth === 0) return i + 1;
  }
  return json.length;
}

/** What ends a number or a literal: a comma, a closing brace or bracket, or whitespace. */
function isValueEnd(char: number): boolean {
  return char === COMMA || char === CLOSE_BRACE || char === CLOSE_BRACKET || isWhitespace(char);
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;

/** Thrown for a value that JSON cannot carry (circular, BigInt, too deep, a throwing `toJSON`). */
export class UnserializableDataError extends Error {
  constructor(
    readonly kind: string,
    readonly event: string,
    readonly reason: string,
  ) {
    super(`cannot serialise the ${kind} of "${event}": ${reason}`);
    this.name = 'UnserializableDataError';
  }
}

/**
 * JSON for a payload; `undefined` becomes `null` so that every frame stays valid JSON. Throws
 * `UnserializableDataError` (naming `kind` and `event`, never the value) for what JSON cannot carry.
 */
export function serializeData(data: unknown, event = '', kind = 'data'): string {
  try {
    return JSON.stringify(data) ?? 'null';
  } catch (error) {
    throw new UnserializableDataError(kind, event, unserializableReason(error));
  }
}

function unserializableReason(error: unknown): string {
  if (error instanceof RangeError) return 'nested too deeply';
  const message = error instanceof Error ? error.message : '';
  if (/circular/i.test(message)) return 'circular structure';
  if (/bigint/i.test(message)) return 'BigInt value';
  return 'toJSON failed';
}

/** Bytes of a string in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (isHighSurrogate(code) && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 UTF-16 units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * A push serialised once for any number of recipients: each recipient's frame is the shared
 * head plus its own `seq`, or one shared frame when pushes carry no `seq`. A binary push keeps
 * its payload once; each recipient's frame is its own small header plus that same payload.
 */
export class PreparedPush {
  /** `{"event":…,"data":` ('' for a binary push); the frame's head is this, then `dataJson`. */
  readonly headPrefix: string;
  /**
   * The two concatenated: never measured or encoded as a whole, which would flatten it into a
   * second copy of the payload, kept as long as the push (replay buffers keep pushes).
   */
  private readonly head: string;
  private unsequenced: string | undefined;
  private unsequencedBinary: BinaryFrame | undefined;
  private bytes: number | undefined;

  /**
   * @param dataJson the serialised data; '' for a binary push
   * @param id the broadcast's own id, when it came through the broadcast bus.
   * @param payload the bytes of a binary push
   */
  constructor(
    readonly event: string,
    readonly dataJson: string,
    readonly id?: string,
    readonly payload?: Uint8Array,
  ) {
    this.headPrefix = payload ? '' : `{"event":${JSON.stringify(event)},"data":`;
    this.head = this.headPrefix + dataJson;
  }

  /** About the size of one recipient's frame in bytes (what a replay buffer holds for it). */
  get byteLength(): number {
    // From the parts: measuring the concatenated head would flatten it into a second copy of the payload.
    this.bytes ??=
      (this.payload ? this.payload.byteLength : utf8Length(this.dataJson)) + utf8Length(this.event) + PUSH_OVERHEAD_BYTES;
    return this.bytes;
  }

  /** One recipient's frame: JSON text, or a binary frame for a binary push. */
  wireFrame(seq: number | undefined): OutgoingFrame {
    if (!this.payload) return this.frame(seq);
    if (seq !== undefined) return this.binaryFrame(seq);
    this.unsequencedBinary ??= this.binaryFrame(undefined);
    return this.unsequencedBinary;
  }

  /** One recipient's text frame (of a push that is not binary). */
  frame(seq: number | undefined): string {
    if (seq !== undefined) return `${this.head},"seq":${seq}}`;
    this.unsequenced ??= `${this.head}}`;
    return this.unsequenced;
  }

  private binaryFrame(seq: number | undefined): BinaryFrame {
    return { head: encodeBinaryHead(binaryHeaderJson(this.event, { seq })), payload: this.payload! };
  }
}

/** The envelope around event and data (`{"event":,"data":,"seq":<n>}`), plus what a replay entry costs beside its frame. */
const PUSH_OVERHEAD_BYTES = 64;

/**
 * A push of JSON data, or of bytes when `payload` is given (then `dataJson` is ''). Throws a
 * TypeError for an event name clients could not send (a binary frame's header must fit) or one
 * of the protocol's (`$…`), which clients would take for the protocol's own.
 */
export function preparePush(event: string, dataJson: string, id?: string, payload?: Uint8Array): PreparedPush {
  if (!isAppEventName(event)) throw appEventNameError(event);
  return new PreparedPush(event, dataJson, id, payload);
}

/** A push of `data`: binary for a `Uint8Array`, JSON otherwise (throws `UnserializableDataError`, or as `preparePush`). */
export function preparePushOf(event: string, data: unknown, id?: string): PreparedPush {
  return isBinaryData(data) ? preparePush(event, '', id, data) : preparePush(event, serializeData(data, event, 'push'), id);
}

/**
 * Builds a server frame around an already serialised payload, so that a payload sent to many
 * recipients is serialised once.
 */
export function encodeFrame(event: string, dataJson: string, extra?: { ref?: MessageId; seq?: number }): string {
  let frame = `{"event":${JSON.stringify(event)},"data":${dataJson}`;
  if (extra?.ref !== undefined) frame += `,"ref":${JSON.stringify(extra.ref)}`;
  if (extra?.seq !== undefined) frame += `,"seq":${extra.seq}`;
  return frame + '}';
}

/** Parses a server frame (used by clients). Returns undefined for anything that is not one. */
export function decodeServerMessage(text: string): ServerMessage | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    const message = parsed as ServerMessage;
    return typeof message.event === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}
