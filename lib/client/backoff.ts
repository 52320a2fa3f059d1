import { MAX_TIMER_DELAY_MS } from '../protocol/index.js';

export interface ReconnectOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** Spread of each delay: 0.5 gives a delay anywhere in [0.5, 1.5] × the nominal one. */
  jitter: number;
  /** Attempts after a drop before giving up with `$failed`. */
  maxRetries: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 1000,
  maxDelayMs: 30000,
  factor: 2,
  jitter: 0.5,
  maxRetries: 20,
};

/** Beyond this exponent the nominal delay has long reached any sane cap. */
const MAX_EXPONENT = 64;

/**
 * Delay before reconnect attempt `attempt` (1, 2, …):
 * `min(maxDelayMs, initialDelayMs × factor^(attempt-1)) × (1 − jitter + 2 × jitter × random())`.
 * The exponent is clamped, so the delay cannot overflow, and jitter applies at the cap too.
 */
export function reconnectDelay(attempt: number, options: ReconnectOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, attempt - 1), MAX_EXPONENT);
  const growth = options.factor ** exponent;
  // 0 × Infinity would be NaN: a zero initial delay stays zero however large the growth.
  const nominal = options.initialDelayMs === 0 ? 0 : Math.min(options.maxDelayMs, options.initialDelayMs * growth);
  return withJitter(nominal, options, random);
}

/** The wait after a 4029 (rate limited): the longest delay, jittered. */
export function rateLimitedDelay(options: ReconnectOptions, random: () => number = Math.random): number {
  return withJitter(options.maxDelayMs, options, random);
}

/** The nominal delay, jittered, within what a timer holds. */
function withJitter(nominal: number, options: ReconnectOptions, random: () => number): number {
  return Math.min(nominal * (1 - options.jitter + 2 * options.jitter * random()), MAX_TIMER_DELAY_MS);
}

/** Checks reconnect options; throws a `RangeError` naming the wrong one. */
export function checkReconnectOptions(options: ReconnectOptions): ReconnectOptions {
  const rules: Array<[keyof ReconnectOptions, boolean]> = [
    ['initialDelayMs', Number.isFinite(options.initialDelayMs) && options.initialDelayMs >= 0],
    ['maxDelayMs', options.maxDelayMs >= options.initialDelayMs && options.maxDelayMs <= MAX_TIMER_DELAY_MS],
    ['factor', Number.isFinite(options.factor) && options.factor >= 1],
    ['jitter', Number.isFinite(options.jitter) && options.jitter >= 0 && options.jitter <= 1],
    ['maxRetries', Number.isSafeInteger(options.maxRetries) && options.maxRetries >= 0],
  ];
  for (const [name, valid] of rules) {
    if (!valid) throw new RangeError(`ReliableWsClient: invalid option "reconnect.${name}": ${String(options[name])}`);
  }
  return options;
}
