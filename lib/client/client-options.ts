import { MAX_TIMER_DELAY_MS } from '../protocol/index.js';
import type { ReliableWsClientOptions } from './reliable-ws-client.interfaces.js';

type Rule = (value: number) => boolean;

/** A delay waited with a timer: an integer of ms from `min` up to what a timer holds. */
const delay =
  (min: number): Rule =>
  (value) =>
    Number.isSafeInteger(value) && value >= min && value <= MAX_TIMER_DELAY_MS;

/** A count of messages or bytes, at least `min`. */
const count =
  (min: number): Rule =>
  (value) =>
    Number.isSafeInteger(value) && value >= min;

/**
 * Checks the client's options (the reconnect ones in `checkReconnectOptions`); throws a
 * `RangeError` naming the first wrong one. Unset options take their defaults.
 */
export function checkClientOptions(options: ReliableWsClientOptions): void {
  const { heartbeat, queue } = options;
  if (heartbeat !== undefined && heartbeat !== false && (typeof heartbeat !== 'object' || heartbeat === null)) invalid('heartbeat', heartbeat);
  if (queue !== undefined && (typeof queue !== 'object' || queue === null)) invalid('queue', queue);
  const rules: Array<[name: string, value: unknown, valid: Rule]> = [
    ['connectTimeoutMs', options.connectTimeoutMs, delay(1)],
    ['ackDelayMs', options.ackDelayMs, delay(0)],
    ['maxBufferedBytes', options.maxBufferedBytes, count(0)],
    ['maxTransferBytes', options.maxTransferBytes, count(0)],
    ['queue.maxMessages', queue?.maxMessages, count(1)],
    ['queue.maxBytes', queue?.maxBytes, count(1)],
  ];
  if (heartbeat) rules.push(['heartbeat.intervalMs', heartbeat.intervalMs, delay(1)], ['heartbeat.timeoutMs', heartbeat.timeoutMs, delay(1)]);
  for (const [name, value, valid] of rules) {
    if (value !== undefined && !(typeof value === 'number' && valid(value))) invalid(name, value);
  }
}

/** A request's or an upload's `timeoutMs`, if set, is a delay a timer can hold; else a `RangeError`. */
export function checkTimeout(timeoutMs: number | undefined): RangeError | undefined {
  if (timeoutMs === undefined || (typeof timeoutMs === 'number' && delay(1)(timeoutMs))) return undefined;
  return new RangeError(`ReliableWsClient: invalid option "timeoutMs": ${String(timeoutMs)}`);
}

function invalid(name: string, value: unknown): never {
  throw new RangeError(`ReliableWsClient: invalid option "${name}": ${String(value)}`);
}
