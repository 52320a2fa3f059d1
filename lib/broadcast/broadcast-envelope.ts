import { isAppEventName, isRecord, preparePush, type PreparedPush } from '../protocol/index.js';

/** A channel and a position in it: `[channel, epoch, offset]`. */
export type ChannelMark = [channel: string, epoch: string, offset: number];

/** What a broadcast is addressed to. */
export type BroadcastTarget =
  | { kind: 'all' }
  | { kind: 'room'; room: string }
  | { kind: 'client'; sessionId: string }
  | { kind: 'user'; userId: string };

export type PushEnvelope = {
  type: 'push';
  origin: string;
  /** Unique per broadcast, so that a session handed over between instances gets it once. */
  id: string;
  target: BroadcastTarget;
  event: string;
  except?: string;
  /** The serialised data; '' for a binary push. */
  dataJson: string;
  /** The bytes of a binary push (base64 on the bus, once per publish). */
  binary?: Uint8Array;
  /** When it was published, in ms since the epoch (for the broadcast duration metric). */
  at?: number;
};

/** Moving a session to the instance its client resumes on (see SessionHandover). */
export type HandoverEnvelope =
  | {
      type: 'handover-prepare';
      origin: string;
      request: string;
      sessionId: string;
      /** `claimProof` of the resume token's hash and this request (a client's resume). */
      proof?: string;
      /** The claiming client's user id, for the owner to compare. */
      userId?: string;
      /** A claim of a session its owner offered at shutdown. */
      adopt?: true;
    }
  | { type: 'handover-ready'; origin: string; request: string; rooms: string[]; userId?: string }
  | {
      type: 'handover-commit';
      origin: string;
      request: string;
      /** Where the claimer started hearing each of the session's channels: the owner delivers up to there first. */
      positions?: ChannelMark[];
    }
  | { type: 'handover-done'; origin: string; request: string; key: string }
  | { type: 'handover-taken'; origin: string; request: string }
  | {
      type: 'handover-refused';
      origin: string;
      request: string;
      /** The claim was rightful, but the session is promised to another claim just now. */
      busy?: true;
    }
  | { type: 'adopt-call'; origin: string; call: string }
  | { type: 'adopt-here'; origin: string; call: string }
  | { type: 'adopt-offer'; origin: string; adopter: string; sessionIds: string[] };

/** A push, a membership change, or a handover step travelling between instances. */
export type BroadcastEnvelope =
  | PushEnvelope
  | { type: 'join' | 'leave'; origin: string; sessionId: string; room: string; request: string }
  | { type: 'done'; origin: string; request: string }
  | HandoverEnvelope;

/**
 * The header travels as JSON, the payload as the JSON it already is, after a newline (which
 * JSON text never contains unescaped): the payload is not serialised again for Redis, and is
 * used as is on the receiving side. A binary payload goes in base64 after the newline, with
 * `"binary":true` in the header.
 */
export function encodeEnvelope(envelope: BroadcastEnvelope): string {
  if (envelope.type !== 'push') return JSON.stringify(envelope);
  const { dataJson, binary, ...header } = envelope;
  if (binary) return `${JSON.stringify({ ...header, binary: true })}\n${base64Of(binary)}`;
  return `${JSON.stringify(header)}\n${dataJson}`;
}

/** The push an envelope carries, prepared for delivery. */
export function pushOf(envelope: PushEnvelope): PreparedPush {
  return preparePush(envelope.event, envelope.dataJson, envelope.id, envelope.binary);
}

function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The push of a decoded header and what followed its newline: JSON data, or base64 bytes when the
 * header says `binary`. The data goes into every recipient's frame as it is, so it must be exactly
 * one JSON value (parsed once per push here, never per recipient; the parse throws otherwise).
 */
function pushFields(header: Fields, rest: string): Fields | undefined {
  if (header.binary === undefined) {
    JSON.parse(rest);
    return { ...header, dataJson: rest };
  }
  if (header.binary !== true || !BASE64.test(rest)) return undefined;
  return { ...header, dataJson: '', binary: Buffer.from(rest, 'base64') };
}

/** A push's id is its instance's UUID and a counter; receivers remember recent ones (`RecentIds`). */
const MAX_PUSH_ID_LENGTH = 64;

/** Parses what came over the bus; anything that is not a well-formed envelope is undefined. */
export function decodeEnvelope(payload: string): BroadcastEnvelope | undefined {
  let envelope: unknown;
  try {
    const newline = payload.indexOf('\n');
    if (newline === -1) {
      envelope = JSON.parse(payload);
    } else {
      const header: unknown = JSON.parse(payload.slice(0, newline));
      envelope = isRecord(header) && header.type === 'push' ? pushFields(header, payload.slice(newline + 1)) : undefined;
    }
  } catch {
    return undefined;
  }
  return isEnvelope(envelope) ? envelope : undefined;
}

type Fields = Record<string, unknown>;

/** The string fields each kind of envelope must have. */
const STRING_FIELDS: Readonly<Record<BroadcastEnvelope['type'], readonly string[]>> = {
  push: ['origin', 'id', 'event', 'dataJson'],
  join: ['origin', 'sessionId', 'room', 'request'],
  leave: ['origin', 'sessionId', 'room', 'request'],
  done: ['origin', 'request'],
  'handover-prepare': ['origin', 'request', 'sessionId'],
  'handover-ready': ['origin', 'request'],
  'handover-commit': ['origin', 'request'],
  'handover-done': ['origin', 'request', 'key'],
  'handover-taken': ['origin', 'request'],
  'handover-refused': ['origin', 'request'],
  'adopt-call': ['origin', 'call'],
  'adopt-here': ['origin', 'call'],
  'adopt-offer': ['origin', 'adopter'],
};

function isEnvelope(value: unknown): value is BroadcastEnvelope {
  if (!isRecord(value) || typeof value.type !== 'string' || !Object.hasOwn(STRING_FIELDS, value.type)) return false;
  const type = value.type as BroadcastEnvelope['type'];
  if (!STRING_FIELDS[type].every((field) => typeof value[field] === 'string')) return false;
  switch (type) {
    case 'push':
      return (
        (value.id as string).length <= MAX_PUSH_ID_LENGTH &&
        isAppEventName(value.event) &&
        isTarget(value.target) &&
        optionalString(value.except) &&
        (value.binary === undefined || value.binary instanceof Uint8Array) &&
        (value.at === undefined || Number.isFinite(value.at))
      );
    case 'handover-ready':
      return Array.isArray(value.rooms) && value.rooms.every((room) => typeof room === 'string') && optionalString(value.userId);
    case 'handover-commit':
      return value.positions === undefined || (Array.isArray(value.positions) && value.positions.every(isChannelMark));
    case 'handover-prepare':
      return optionalString(value.proof) && optionalString(value.userId) && (value.adopt === undefined || value.adopt === true);
    case 'handover-refused':
      return value.busy === undefined || value.busy === true;
    case 'adopt-offer':
      return Array.isArray(value.sessionIds) && value.sessionIds.every((id) => typeof id === 'string');
    default:
      return true;
  }
}

function isChannelMark(mark: unknown): mark is ChannelMark {
  return (
    Array.isArray(mark) &&
    mark.length === 3 &&
    typeof mark[0] === 'string' &&
    typeof mark[1] === 'string' &&
    Number.isSafeInteger(mark[2])
  );
}

function isTarget(target: unknown): target is BroadcastTarget {
  if (!isRecord(target)) return false;
  switch (target.kind) {
    case 'all':
      return true;
    case 'room':
      return typeof target.room === 'string';
    case 'client':
      return typeof target.sessionId === 'string';
    case 'user':
      return typeof target.userId === 'string';
    default:
      return false;
  }
}

function optionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}
