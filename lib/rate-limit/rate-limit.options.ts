export interface RateLimitOptions {
  /** Messages allowed per window; the bucket holds at most this many. */
  points: number;
  /** Time in which a full bucket refills. */
  durationMs: number;
}

export interface ModuleRateLimitOptions extends RateLimitOptions {
  /** Rejected messages within a minute after which the connection is closed with 4029. */
  maxViolations: number;
}

/** Window over which rejected messages are counted towards `maxViolations`. */
export const VIOLATION_WINDOW_MS = 60_000;

/**
 * The bucket of protocol events (`$ping`, `$ack`, `$auth`) and of frames that reach no handler:
 * generous enough for a client that acks every push, tight enough to stop a flood.
 */
export const SYSTEM_EVENT_LIMIT: RateLimitOptions = { points: 500, durationMs: 1000 };
