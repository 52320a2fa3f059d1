import type { RateLimitOptions } from './rate-limit.options.js';

/**
 * A token bucket refilled continuously from timestamps: O(1) memory, no timers.
 * `take` returns 0 when a token was taken, or the ms until the next one is available.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly limit: RateLimitOptions,
    now: number,
  ) {
    this.tokens = limit.points;
    this.updatedAt = now;
  }

  take(now: number): number {
    const { points, durationMs } = this.limit;
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(points, this.tokens + (elapsed * points) / durationMs);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.min(durationMs, Math.max(1, Math.ceil(((1 - this.tokens) * durationMs) / points)));
  }
}
