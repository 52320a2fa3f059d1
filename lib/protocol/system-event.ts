/** The subprotocol a client that speaks this protocol asks for. */
export const SUBPROTOCOL = 'rws.v1';

/** Event names reserved by the protocol; application events may not start with this prefix. */
export const SYSTEM_EVENT_PREFIX = '$';

export const SystemEvent = {
  HELLO: '$hello',
  READY: '$ready',
  PING: '$ping',
  PONG: '$pong',
  ACK: '$ack',
  AUTH: '$auth',
  ERROR: '$error',
  /** Chunked transfer (see transfer.ts). */
  UPLOAD: '$upload',
  STREAM: '$stream',
  CHUNK: '$chunk',
  CHUNK_ACK: '$chunk-ack',
  CANCEL: '$cancel',
} as const;

export type SystemEvent = (typeof SystemEvent)[keyof typeof SystemEvent];

export const MAX_EVENT_NAME_LENGTH = 128;

export function isSystemEventName(event: string): boolean {
  return event.startsWith(SYSTEM_EVENT_PREFIX);
}
