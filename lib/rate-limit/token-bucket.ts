import type { RateLimitOptions } from './rate-limit.options.js';

/**
 * A token bucket refilled continuously from timestamps: O(1) memory, no timers. Credit is kept
 * in whole units of 1/durationMs of a token, so waiting the returned delay is always enough.
 * `take` returns 0 when a token was taken, or the ms until the next one is available.
 */
export class TokenBucket {
  private credit: number;
  private updatedAt: number;

  constructor(
    private readonly limit: RateLimitOptions,
    now: number,
  ) {
    this.credit = limit.points * limit.durationMs;
    this.updatedAt = now;
  }

  take(now: number): number {
    const { points, durationMs } = this.limit;
    const elapsed = Math.max(0, now - this.updatedAt);
    this.credit = Math.min(points * durationMs, this.credit + elapsed * points);
    this.updatedAt = now;
    if (this.credit >= durationMs) {
      this.credit -= durationMs;
      return 0;
    }
    return Math.ceil((durationMs - this.credit) / points);
  }
}
