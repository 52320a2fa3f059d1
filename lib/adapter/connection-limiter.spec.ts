import fc from 'fast-check';
import { ConnectionLimiter } from './connection-limiter.js';

describe('ConnectionLimiter', () => {
  it('grants up to the maximum per IP and refuses beyond it', () => {
    const limiter = new ConnectionLimiter(3);
    expect([1, 2, 3, 4, 5].map(() => limiter.tryAcquire('1.1.1.1'))).toEqual([true, true, true, false, false]);
  });

  it('counts each IP on its own', () => {
    const limiter = new ConnectionLimiter(1);
    expect(limiter.tryAcquire('1.1.1.1')).toBe(true);
    expect(limiter.tryAcquire('2.2.2.2')).toBe(true);
    expect(limiter.tryAcquire('1.1.1.1')).toBe(false);
    expect(limiter.tryAcquire('2.2.2.2')).toBe(false);
  });

  it('frees a slot on release', () => {
    const limiter = new ConnectionLimiter(2);
    limiter.tryAcquire('ip');
    limiter.tryAcquire('ip');
    expect(limiter.tryAcquire('ip')).toBe(false);
    limiter.release('ip');
    expect(limiter.tryAcquire('ip')).toBe(true);
    expect(limiter.tryAcquire('ip')).toBe(false);
  });

  it('an extra release never creates credit beyond the maximum', () => {
    const limiter = new ConnectionLimiter(2);
    limiter.release('ip');
    limiter.release('ip');
    limiter.tryAcquire('ip');
    limiter.release('ip');
    limiter.release('ip');
    expect([1, 2, 3].map(() => limiter.tryAcquire('ip'))).toEqual([true, true, false]);
  });

  it('behaves like a per-IP counter model for any sequence of operations', () => {
    const op = fc.record({ acquire: fc.boolean(), ip: fc.constantFrom('a', 'b', 'c') });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
        const limiter = new ConnectionLimiter(max);
        const model = new Map<string, number>();
        for (const { acquire, ip } of ops) {
          const held = model.get(ip) ?? 0;
          if (acquire) {
            const granted = limiter.tryAcquire(ip);
            expect(granted).toBe(held < max);
            if (granted) model.set(ip, held + 1);
          } else if (held > 0) {
            // the adapter only releases what it acquired
            limiter.release(ip);
            model.set(ip, held - 1);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
