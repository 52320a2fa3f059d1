import { isAppEventName, isBinaryData, serializeData } from '../protocol/index.js';
import { QueueFullError } from './errors.js';
import type { QueueOptions } from './reliable-ws-client.interfaces.js';

/** A send, serialized once: what the queue keeps and what crosses to a shared worker. */
export interface OutgoingMessage {
  event: string;
  /** The serialised data; '' for a binary message. */
  dataJson: string;
  /** The bytes of a binary message (sent as one binary frame). */
  payload?: Uint8Array;
  /** Its size in the queue: UTF-8 bytes of event and data plus the envelope around them. */
  bytes: number;
}

/** `{"event":…,"data":…,"id":…}` around the event and the data, with a six-digit id. */
const ENVELOPE_BYTES = 32;

const encoder = new TextEncoder();

export const DEFAULT_QUEUE: QueueOptions = { maxMessages: 100_000, maxBytes: 1024 * 1024 };

export const DEFAULT_REQUEST_TIMEOUT_MS = 10000;

/** Checks the event name and serializes the data; throws where the client's `send` must. */
export function encodeOutgoing(event: string, data: unknown): OutgoingMessage {
  checkEventName(event);
  if (isBinaryData(data)) return { event, dataJson: '', payload: data, bytes: data.byteLength + encoder.encode(event).length + ENVELOPE_BYTES };
  return encodeSystem(event, data);
}

/** A message of the protocol's own (`$upload`, `$cancel`), queued like a send. */
export function encodeSystem(event: string, data: unknown): OutgoingMessage {
  const dataJson = serializeData(data);
  return { event, dataJson, bytes: encoder.encode(dataJson).length + encoder.encode(event).length + ENVELOPE_BYTES };
}

export function checkEventName(event: string): void {
  if (!isAppEventName(event)) {
    throw new TypeError(`ReliableWsClient: invalid event name ${JSON.stringify(event)}`);
  }
}

/** What the unanswered sends of one client hold, bounded by `queue` (bytes first). */
export class QueueBudget {
  private count = 0;
  private bytes = 0;

  constructor(private readonly limits: QueueOptions) {}

  get size(): number {
    return this.count;
  }

  /** Takes room for a message or throws `QueueFullError`, taking nothing. */
  reserve(bytes: number): void {
    if (this.bytes + bytes > this.limits.maxBytes) throw new QueueFullError('maxBytes', this.limits.maxBytes);
    if (this.count >= this.limits.maxMessages) throw new QueueFullError('maxMessages', this.limits.maxMessages);
    this.count++;
    this.bytes += bytes;
  }

  release(bytes: number): void {
    this.count--;
    this.bytes -= bytes;
  }

  clear(): void {
    this.count = 0;
    this.bytes = 0;
  }
}
