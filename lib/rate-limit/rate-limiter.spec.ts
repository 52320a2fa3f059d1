import type { WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { CloseCode } from '../protocol/index.js';
import { ReliableSocket } from '../session/index.js';
import { RateLimiter } from './rate-limiter.js';
import { SYSTEM_EVENT_LIMIT, VIOLATION_WINDOW_MS, type RateLimitOptions } from './rate-limit.options.js';

/**
 * A real ReliableSocket around a minimal stand-in for the `ws` socket that only records
 * `close(code, reason)`; RateLimiter needs nothing else from a connection. Explicit `now` values,
 * no real time.
 */
function socket(): { socket: ReliableSocket; closes: Array<{ code: number; reason: string }> } {
  const closes: Array<{ code: number; reason: string }> = [];
  const raw = {
    readyState: 1,
    bufferedAmount: 0,
    close(code: number, reason: string) {
      closes.push({ code, reason });
      this.readyState = 2;
    },
  };
  const s = new ReliableSocket(raw as unknown as WebSocket, {} as IncomingMessage, '127.0.0.1', { maxBufferedBytes: 1 << 20 });
  return { socket: s, closes };
}

const T0 = 5_000_000;

describe('RateLimiter', () => {
  it('charges the module limit by default: `points` allowed, then RATE_LIMITED with retryAfterMs in (0, durationMs]', () => {
    const limiter = new RateLimiter({ points: 3, durationMs: 900, maxViolations: 100 });
    const { socket: s, closes } = socket();
    for (let i = 0; i < 3; i++) expect(limiter.consume(s, undefined, T0)).toEqual({ allowed: true });
    const rejected = limiter.consume(s, undefined, T0);
    expect(rejected).toEqual({ allowed: false, retryAfterMs: 300, closed: false });
    expect(closes).toEqual([]);
  });

  it('refills with time', () => {
    const limiter = new RateLimiter({ points: 2, durationMs: 1000, maxViolations: 100 });
    const { socket: s } = socket();
    limiter.consume(s, undefined, T0);
    limiter.consume(s, undefined, T0);
    expect(limiter.consume(s, undefined, T0 + 499).allowed).toBe(false);
    expect(limiter.consume(s, undefined, T0 + 999).allowed).toBe(true);
    expect(limiter.consume(s, undefined, T0 + 999).allowed).toBe(false);
  });

  it('the maxViolations-th rejection within the window closes the connection with 4029 on the next turn', async () => {
    const limiter = new RateLimiter({ points: 1, durationMs: 1000, maxViolations: 3 });
    const { socket: s, closes } = socket();
    expect(limiter.consume(s, undefined, T0).allowed).toBe(true);
    expect(limiter.consume(s, undefined, T0 + 1)).toMatchObject({ allowed: false, closed: false });
    expect(limiter.consume(s, undefined, T0 + 2)).toMatchObject({ allowed: false, closed: false });
    expect(closes).toEqual([]);
    expect(limiter.consume(s, undefined, T0 + 3)).toMatchObject({ allowed: false, closed: true });
    expect(closes).toEqual([]);
    await nextTurn();
    expect(closes.map((c) => c.code)).toEqual([CloseCode.RATE_LIMITED]);
    expect(limiter.consume(s, undefined, T0 + 5000)).toMatchObject({ allowed: false, closed: true });
    expect(CloseCode.RATE_LIMITED).toBe(4029);
  });

  it('violations older than the 60 s window no longer count', async () => {
    const limiter = new RateLimiter({ points: 1, durationMs: 1000, maxViolations: 3 });
    const { socket: s, closes } = socket();
    limiter.consume(s, undefined, T0);
    expect(limiter.consume(s, undefined, T0 + 1).allowed).toBe(false);
    expect(limiter.consume(s, undefined, T0 + 2).allowed).toBe(false);
    // a minute later the count starts again: two more violations are not yet the third
    const later = T0 + VIOLATION_WINDOW_MS + 10;
    expect(limiter.consume(s, undefined, later).allowed).toBe(true);
    expect(limiter.consume(s, undefined, later + 1)).toMatchObject({ allowed: false, closed: false });
    expect(limiter.consume(s, undefined, later + 2)).toMatchObject({ allowed: false, closed: false });
    expect(closes).toEqual([]);
    expect(limiter.consume(s, undefined, later + 3)).toMatchObject({ allowed: false, closed: true });
    await nextTurn();
    expect(closes.map((c) => c.code)).toEqual([4029]);
  });

  it('maxViolations: 1 closes on the first rejection', async () => {
    const limiter = new RateLimiter({ points: 1, durationMs: 1000, maxViolations: 1 });
    const { socket: s, closes } = socket();
    limiter.consume(s, undefined, T0);
    expect(limiter.consume(s, undefined, T0)).toMatchObject({ allowed: false, closed: true });
    await nextTurn();
    expect(closes.map((c) => c.code)).toEqual([4029]);
  });

  it('a handler limit (@RateLimit) is its own bucket, independent of the module bucket', () => {
    const limiter = new RateLimiter({ points: 2, durationMs: 1000, maxViolations: 100 });
    const own: RateLimitOptions = { points: 1, durationMs: 1000 };
    const { socket: s } = socket();
    expect(limiter.consume(s, undefined, T0).allowed).toBe(true);
    expect(limiter.consume(s, undefined, T0).allowed).toBe(true);
    expect(limiter.consume(s, undefined, T0).allowed).toBe(false);
    expect(limiter.consume(s, own, T0).allowed).toBe(true);
    expect(limiter.consume(s, own, T0)).toMatchObject({ allowed: false, retryAfterMs: 1000 });
  });

  it('the system bucket is separate and generous (SYSTEM_EVENT_LIMIT)', () => {
    const limiter = new RateLimiter({ points: 1, durationMs: 1000, maxViolations: 1000 });
    const { socket: s } = socket();
    limiter.consume(s, undefined, T0);
    expect(limiter.consume(s, undefined, T0).allowed).toBe(false);
    let allowed = 0;
    for (let i = 0; i < SYSTEM_EVENT_LIMIT.points + 10; i++) if (limiter.consumeSystem(s, T0).allowed) allowed++;
    expect(allowed).toBe(SYSTEM_EVENT_LIMIT.points);
    const rejected = limiter.consumeSystem(s, T0);
    expect(rejected.allowed).toBe(false);
    if (!rejected.allowed) {
      expect(rejected.retryAfterMs).toBeGreaterThan(0);
      expect(rejected.retryAfterMs).toBeLessThanOrEqual(SYSTEM_EVENT_LIMIT.durationMs);
    }
  });

  it('buckets are per connection', () => {
    const limiter = new RateLimiter({ points: 1, durationMs: 1000, maxViolations: 100 });
    const a = socket().socket;
    const b = socket().socket;
    expect(limiter.consume(a, undefined, T0).allowed).toBe(true);
    expect(limiter.consume(a, undefined, T0).allowed).toBe(false);
    expect(limiter.consume(b, undefined, T0).allowed).toBe(true);
  });

  it('`false` disables everything: always allowed, never closes', () => {
    const limiter = new RateLimiter(false);
    const { socket: s, closes } = socket();
    expect(limiter.enabled).toBe(false);
    for (let i = 0; i < 10_000; i++) {
      expect(limiter.consume(s, undefined, T0).allowed).toBe(true);
      expect(limiter.consume(s, { points: 1, durationMs: 1000 }, T0).allowed).toBe(true);
      expect(limiter.consumeSystem(s, T0).allowed).toBe(true);
    }
    expect(closes).toEqual([]);
  });

  it('property: allowed takes in any window ≤ points + rate × elapsed; it closes exactly at maxViolations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 120 }),
        async (points, durationMs, maxViolations, steps) => {
          const limiter = new RateLimiter({ points, durationMs, maxViolations });
          const { socket: s, closes } = socket();
          const times: number[] = [];
          const allowed: number[] = [];
          let violations = 0;
          let now = T0;
          for (const dt of steps) {
            now += dt;
            if (now - T0 >= VIOLATION_WINDOW_MS) break; // stay within one violation window
            const decision = limiter.consume(s, undefined, now);
            times.push(now);
            allowed.push(decision.allowed ? 1 : 0);
            if (!decision.allowed) {
              violations++;
              if (decision.retryAfterMs <= 0 || decision.retryAfterMs > durationMs) return false;
              if (decision.closed !== (violations === maxViolations)) return false;
              if (decision.closed) break;
            }
          }
          await nextTurn();
          if (closes.length !== (violations >= maxViolations ? 1 : 0)) return false;
          const prefix = [0];
          for (const a of allowed) prefix.push(prefix[prefix.length - 1] + a);
          for (let i = 0; i < times.length; i++) {
            for (let j = i; j < times.length; j++) {
              if (prefix[j + 1] - prefix[i] > points + ((times[j] - times[i]) * points) / durationMs + 1e-9) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Lets the close that the limiter defers to the next turn happen. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
