import { isSystemEventName, MAX_EVENT_NAME_LENGTH } from './system-event.js';

/** A message id: a client's own correlation value, echoed back as `ref`. */
export type MessageId = number | string;

/** A whole number from 0 up (a count, a size, an offset, an id). */
export function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A plain JSON object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The longest string a message id may be. */
export const MAX_ID_STRING_LENGTH = 128;

export function isValidMessageId(id: unknown): id is MessageId {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_STRING_LENGTH;
}

export function isValidEventName(event: unknown): event is string {
  return typeof event === 'string' && event.length > 0 && event.length <= MAX_EVENT_NAME_LENGTH;
}

/** An event an application may send or push: a valid name outside the protocol's `$` events. */
export function isAppEventName(event: unknown): event is string {
  return isValidEventName(event) && !isSystemEventName(event);
}

/** The TypeError for a name that is not an application's event. */
export function appEventNameError(event: unknown): TypeError {
  return new TypeError(
    `an event must be a non-empty string of at most ${MAX_EVENT_NAME_LENGTH} characters, not starting with "$" (the protocol's), got ${String(event).slice(0, 40)}`,
  );
}
