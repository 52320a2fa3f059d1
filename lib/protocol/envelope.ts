import type { ErrorCode } from './error-code.js';
import { MAX_EVENT_NAME_LENGTH } from './system-event.js';

/** A message id: a client's own correlation value, echoed back as `ref`. */
export type MessageId = number | string;

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

export interface ReadyData {
  sessionId: string;
  resumeToken?: string;
  resumed: boolean;
  missed: boolean;
  lastId: number;
  heartbeatMs: number;
}

export interface HelloData {
  token?: string;
  resume?: { sessionId: string; resumeToken: string; lastSeq: number };
}

export type DecodeResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; reason: string; id?: MessageId };

const MAX_ID_STRING_LENGTH = 128;

export function isValidMessageId(id: unknown): id is MessageId {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_STRING_LENGTH;
}

export function isValidEventName(event: unknown): event is string {
  return typeof event === 'string' && event.length > 0 && event.length <= MAX_EVENT_NAME_LENGTH;
}

/** Parses and checks one text frame from a client. Never throws. */
export function decodeClientMessage(text: string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not valid JSON' };
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

/** JSON for a payload; `undefined` becomes `null` so that every frame stays valid JSON. */
export function serializeData(data: unknown): string {
  return JSON.stringify(data) ?? 'null';
}

/**
 * A push serialised once for any number of recipients: each recipient's frame is the shared
 * head plus its own `seq`, or one shared frame when pushes carry no `seq`.
 */
export class PreparedPush {
  /** `{"event":…,"data":…` without the closing brace. */
  private readonly head: string;
  private unsequenced: string | undefined;

  /** @param id the broadcast's own id, when it came through the broadcast bus. */
  constructor(
    readonly event: string,
    readonly dataJson: string,
    readonly id?: string,
  ) {
    this.head = `{"event":${JSON.stringify(event)},"data":${dataJson}`;
  }

  /** One recipient's frame. */
  frame(seq: number | undefined): string {
    if (seq !== undefined) return `${this.head},"seq":${seq}}`;
    this.unsequenced ??= `${this.head}}`;
    return this.unsequenced;
  }
}

export function preparePush(event: string, dataJson: string, id?: string): PreparedPush {
  return new PreparedPush(event, dataJson, id);
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
