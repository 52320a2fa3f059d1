import { Logger, type LoggerService } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { resolveOptions } from '../reliable-ws.options-validation.js';
import type { AuthOptions, ResolvedAuthOptions } from './auth.options.js';
import { Authenticator } from './authenticator.js';

const lines: string[] = [];
const capture: LoggerService = {
  log: (...parts: unknown[]) => void lines.push(parts.map(String).join(' ')),
  warn: (...parts: unknown[]) => void lines.push(parts.map(String).join(' ')),
  error: (...parts: unknown[]) => void lines.push(parts.map(String).join(' ')),
};

beforeAll(() => Logger.overrideLogger(capture));
beforeEach(() => {
  lines.length = 0;
});

function authenticator(auth: AuthOptions): Authenticator {
  return new Authenticator(resolveOptions({ auth }).auth as ResolvedAuthOptions);
}

function request(url = '/ws?token=SECRET123'): IncomingMessage {
  return { url, headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
}

describe('Authenticator.verify', () => {
  it('returns what verify returns, sync or async, and passes the token and the request', async () => {
    const req = request();
    const seen: unknown[] = [];
    const sync = authenticator({ verify: (token, r) => (seen.push([token, r]), { id: token }) });
    expect(await sync.verify('t1', req)).toEqual({ id: 't1' });
    expect(seen).toEqual([['t1', req]]);
    const async = authenticator({ verify: async (token) => ({ id: token }) });
    expect(await async.verify('t2', req)).toEqual({ id: 't2' });
  });

  it('answers a synchronous verify at once (no promise), an asynchronous one with a promise', async () => {
    expect(authenticator({ verify: (token) => ({ id: token }) }).verify('t', request())).toEqual({ id: 't' });
    expect(authenticator({ verify: () => null }).verify('t', request())).toBeUndefined();
    expect(authenticator({ verify: () => { throw new Error('no'); } }).verify('t', request())).toBeUndefined();
    const pending = authenticator({ verify: async (token) => ({ id: token }) }).verify('t', request());
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toEqual({ id: 't' });
  });

  it.each([
    ['null', () => null],
    ['undefined', () => undefined],
    ['false', () => false as unknown as null],
    ['a promise of null', async () => null],
  ])('treats %s as a rejection and logs it with the url redacted', async (_name, verify) => {
    expect(await authenticator({ verify }).verify('SECRET123', request())).toBeUndefined();
    expect(lines.some((line) => line.includes('rejected credentials') && line.includes('token=[redacted]'))).toBe(true);
    expect(lines.join('\n')).not.toContain('SECRET123');
  });

  it('logs the address it is given (the client behind a proxy) and the url quoted and cut short', async () => {
    const url = `/ws?token=SECRET123&pad=${'x'.repeat(12_000)}\n[Nest] forged`;
    expect(await authenticator({ verify: () => null }).verify('SECRET123', request(url), '203.0.113.9')).toBeUndefined();
    const line = lines.find((text) => text.includes('rejected credentials'))!;
    expect(line).toContain('rejected credentials from 203.0.113.9 on "/ws?token=[redacted]&pad=xxx');
    expect(line.length).toBeLessThan(400);
    expect(line).not.toContain('\n');
  });

  it('a throw is a rejection, logged without the token', async () => {
    const auth = authenticator({
      verify: (token) => {
        throw new Error(`cannot verify ${token}`);
      },
    });
    expect(await auth.verify('SECRET123', request())).toBeUndefined();
    expect(lines.some((line) => line.includes('auth.verify threw') && line.includes('cannot verify [redacted]'))).toBe(true);
    expect(lines.join('\n')).not.toContain('SECRET123');
  });

  it('an async rejection (also with a non-Error value) is a rejection, logged without the token', async () => {
    const rejectsError = authenticator({ verify: async (token) => Promise.reject(new Error(`expired ${token}`)) });
    expect(await rejectsError.verify('SECRET123', request('/ws'))).toBeUndefined();
    const rejectsString = authenticator({ verify: (token) => Promise.reject(`bad: ${token}`) });
    expect(await rejectsString.verify('SECRET123', request('/ws'))).toBeUndefined();
    expect(lines.filter((line) => line.includes('auth.verify threw'))).toHaveLength(2);
    expect(lines.some((line) => line.includes('bad: [redacted]'))).toBe(true);
    expect(lines.join('\n')).not.toContain('SECRET123');
  });

  it('a flood of bad tokens logs a few lines per kind, not one per token', async () => {
    const rejecting = authenticator({ verify: () => null });
    const throwing = authenticator({ verify: () => { throw new Error('broken'); } });
    for (let i = 0; i < 1000; i++) {
      rejecting.verify('SECRET123', request());
      throwing.verify('SECRET123', request());
    }
    expect(lines.filter((line) => line.includes('rejected credentials')).length).toBeLessThanOrEqual(5);
    expect(lines.filter((line) => line.includes('auth.verify threw')).length).toBeLessThanOrEqual(5);
    expect(lines.filter((line) => line.includes('rejected credentials')).length).toBeGreaterThan(0);
  });

  it('an empty object is a principal, not a rejection', async () => {
    expect(await authenticator({ verify: () => ({}) }).verify('t', request())).toEqual({});
  });
});

describe('Authenticator.msUntilExpiry', () => {
  const now = 1_700_000_000_000;

  it('defaults to a JWT exp claim in seconds', () => {
    const auth = authenticator({ verify: () => null });
    expect(auth.msUntilExpiry({ exp: now / 1000 + 30 }, now)).toBe(30_000);
    expect(auth.msUntilExpiry({ exp: (now + 1500) / 1000 }, now)).toBeCloseTo(1500, 3);
  });

  it('is 0 once the expiry has passed', () => {
    const auth = authenticator({ verify: () => null });
    expect(auth.msUntilExpiry({ exp: now / 1000 - 10 }, now)).toBe(0);
  });

  it('is undefined without a usable exp', () => {
    const auth = authenticator({ verify: () => null });
    expect(auth.msUntilExpiry({}, now)).toBeUndefined();
    expect(auth.msUntilExpiry({ exp: '123' }, now)).toBeUndefined();
    expect(auth.msUntilExpiry({ exp: Number.NaN }, now)).toBeUndefined();
    expect(auth.msUntilExpiry(null, now)).toBeUndefined();
    expect(auth.msUntilExpiry('user', now)).toBeUndefined();
  });

  it('uses a custom expiresAt returning ms since the epoch or a Date', () => {
    const ms = authenticator({ verify: () => null, expiresAt: (p: { until: number }) => p.until });
    expect(ms.msUntilExpiry({ until: now + 250, exp: 1 }, now)).toBe(250);
    const date = authenticator({ verify: () => null, expiresAt: (p: { until: number }) => new Date(p.until) });
    expect(date.msUntilExpiry({ until: now + 4000 }, now)).toBe(4000);
    expect(date.msUntilExpiry({ until: now - 4000 }, now)).toBe(0);
    const never = authenticator({ verify: () => null, expiresAt: () => undefined });
    expect(never.msUntilExpiry({ exp: now / 1000 - 10 }, now)).toBeUndefined();
  });

  it('treats an expiresAt that throws or returns no time as "no expiry", and logs the throw', () => {
    const throwing = authenticator({ verify: () => null, expiresAt: () => { throw new Error('bad claim'); } });
    expect(throwing.msUntilExpiry({}, now)).toBeUndefined();
    expect(lines.join('\n')).toContain('auth.expiresAt threw: bad claim');
    const invalid = authenticator({ verify: () => null, expiresAt: () => new Date('nope') });
    expect(invalid.msUntilExpiry({}, now)).toBeUndefined();
    const text = authenticator({ verify: () => null, expiresAt: (() => 'soon') as unknown as () => number });
    expect(text.msUntilExpiry({}, now)).toBeUndefined();
  });

  it('uses Date.now() by default', () => {
    const auth = authenticator({ verify: () => null });
    const left = auth.msUntilExpiry({ exp: Date.now() / 1000 + 60 });
    expect(left).toBeGreaterThan(50_000);
    expect(left).toBeLessThanOrEqual(60_000);
  });
});

describe('auth.userId as resolved', () => {
  const userIdOf = (userId: AuthOptions['userId']) => (resolveOptions({ auth: { verify: () => null, userId } }).auth as ResolvedAuthOptions).userId;

  it('passes strings and numbers through, and nothing else', () => {
    expect(userIdOf((p: { name: string }) => p.name)({ name: 'ann' })).toBe('ann');
    expect(userIdOf(() => 7)({})).toBe(7);
    expect(userIdOf((() => ({ id: 1 })) as unknown as () => string)({})).toBeUndefined();
  });

  it('turns a throw into "no user id" and logs it, never a failure of the caller', () => {
    const userId = userIdOf(() => {
      throw new Error('no such claim');
    });
    expect(userId({})).toBeUndefined();
    expect(lines.join('\n')).toContain('auth.userId threw: no such claim');
  });
});
