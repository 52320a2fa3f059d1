import { SetMetadata } from '@nestjs/common';
import type { RateLimitOptions } from './rate-limit.options.js';

export const RATE_LIMIT_METADATA = 'nestjs-reliable-ws:rate-limit';
export const SKIP_RATE_LIMIT_METADATA = 'nestjs-reliable-ws:skip-rate-limit';

/**
 * Gives a handler (or every handler of a gateway) its own bucket instead of the module's:
 * `@RateLimit({ points: 5, durationMs: 1000 })`.
 */
export function RateLimit(limit: RateLimitOptions): MethodDecorator & ClassDecorator {
  for (const key of ['points', 'durationMs'] as const) {
    const value = limit?.[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`@RateLimit: invalid option "${key}": expected an integer >= 1, got ${String(value)}`);
    }
  }
  return SetMetadata(RATE_LIMIT_METADATA, { points: limit.points, durationMs: limit.durationMs });
}

/** Exempts a handler (or a gateway) from rate limiting. */
export const SkipRateLimit = (): MethodDecorator & ClassDecorator => SetMetadata(SKIP_RATE_LIMIT_METADATA, true);
