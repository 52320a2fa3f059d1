import { CloseCode } from '../protocol/index.js';
import type { ReliableSocket } from '../session/index.js';
import {
  SYSTEM_EVENT_LIMIT,
  VIOLATION_WINDOW_MS,
  type ModuleRateLimitOptions,
  type RateLimitOptions,
} from './rate-limit.options.js';
import { TokenBucket } from './token-bucket.js';

/** The outcome of charging one message: allowed, or rejected with the wait before a retry. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number; closed: boolean };

const ALLOWED: RateDecision = { allowed: true };

/** A connection's buckets: the first limit it used inline (often its only one), any others in a Map made on demand. */
interface ConnectionLimits {
  firstLimit: RateLimitOptions;
  firstBucket: TokenBucket;
  moreBuckets: Map<RateLimitOptions, TokenBucket> | undefined;
  violations: number;
  windowStartedAt: number;
  /** Set once the connection is to be closed with 4029; everything after is refused. */
  closing: boolean;
}

/**
 * Per-connection token buckets: the module's limit, each `@RateLimit` override, and the
 * protocol's own bucket. After `maxViolations` rejections within a minute the connection is
 * closed with 4029.
 */
export class RateLimiter {
  private readonly connections = new WeakMap<ReliableSocket, ConnectionLimits>();

  constructor(private readonly options: ModuleRateLimitOptions | false) {}

  get enabled(): boolean {
    return this.options !== false;
  }

  /** Charges an application message against the handler's limit (the module's by default). */
  consume(socket: ReliableSocket, limit?: RateLimitOptions, now = performance.now()): RateDecision {
    if (this.options === false) return ALLOWED;
    return this.charge(socket, limit ?? this.options, now);
  }

  /** Charges a protocol event or a frame that reaches no handler. */
  consumeSystem(socket: ReliableSocket, now = performance.now()): RateDecision {
    if (this.options === false) return ALLOWED;
    return this.charge(socket, SYSTEM_EVENT_LIMIT, now);
  }

  private charge(socket: ReliableSocket, limit: RateLimitOptions, now: number): RateDecision {
    const limits = this.limitsOf(socket, limit, now);
    if (limits.closing) return { allowed: false, retryAfterMs: limit.durationMs, closed: true };
    const retryAfterMs = bucketOf(limits, limit, now).take(now);
    if (retryAfterMs === 0) return ALLOWED;
    return { allowed: false, retryAfterMs, closed: this.recordViolation(socket, limits, now) };
  }

  private recordViolation(socket: ReliableSocket, limits: ConnectionLimits, now: number): boolean {
    if (now - limits.windowStartedAt >= VIOLATION_WINDOW_MS) {
      limits.windowStartedAt = now;
      limits.violations = 0;
    }
    limits.violations++;
    if (this.options === false || limits.violations < this.options.maxViolations) return false;
    limits.closing = true;
    // Closed on the next turn, so that answers already decided (this message's $error among them) go out first.
    setImmediate(() => socket.close(CloseCode.RATE_LIMITED));
    return true;
  }

  private limitsOf(socket: ReliableSocket, limit: RateLimitOptions, now: number): ConnectionLimits {
    let limits = this.connections.get(socket);
    if (!limits) {
      limits = {
        firstLimit: limit,
        firstBucket: new TokenBucket(limit, now),
        moreBuckets: undefined,
        violations: 0,
        windowStartedAt: now,
        closing: false,
      };
      this.connections.set(socket, limits);
    }
    return limits;
  }
}

function bucketOf(limits: ConnectionLimits, limit: RateLimitOptions, now: number): TokenBucket {
  if (limits.firstLimit === limit) return limits.firstBucket;
  const more = (limits.moreBuckets ??= new Map());
  let bucket = more.get(limit);
  if (!bucket) {
    bucket = new TokenBucket(limit, now);
    more.set(limit, bucket);
  }
  return bucket;
}
