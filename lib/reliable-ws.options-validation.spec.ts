import type { IncomingMessage } from 'node:http';
import { Cluster, Redis } from 'ioredis';
import { isOriginAllowed } from './adapter/handshake.js';
import { ReliableWsOptionsError, resolveOptions } from './reliable-ws.options-validation.js';
import { DEFAULT_OPTIONS, type ReliableWsOptions } from './reliable-ws.options.js';

/** Resolves options that are deliberately wrong for the type system. */
const resolveRaw = (raw: unknown) => resolveOptions(raw as ReliableWsOptions);

function errorOf(raw: unknown): ReliableWsOptionsError {
  try {
    resolveRaw(raw);
  } catch (error) {
    return error as ReliableWsOptionsError;
  }
  throw new Error(`resolveOptions accepted ${String(raw)}`);
}

describe('resolveOptions: defaults', () => {
  it('fills in every default for undefined and {}', () => {
    expect(resolveOptions(undefined)).toEqual(DEFAULT_OPTIONS);
    expect(resolveOptions({})).toEqual(DEFAULT_OPTIONS);
  });

  it('has the documented defaults (DESIGN.md §2)', () => {
    expect(resolveOptions({})).toMatchObject({
      allowedOrigins: 'same-origin',
      requireOrigin: false,
      maxPayloadBytes: 65536,
      maxMessageDepth: 64,
      maxTransferBytes: 16777216,
      maxConnectionsPerIp: 1000,
      trustProxy: false,
      heartbeat: { intervalMs: 30000, timeoutMs: 10000 },
      backpressure: { maxBufferedBytes: 1048576 },
      rateLimit: { points: 50, durationMs: 1000, maxViolations: 20 },
      resume: { bufferSize: 1000, ttlMs: 120000 },
      shutdown: { closeCode: 1001, spreadMs: 0, timeoutMs: 10000 },
      health: { path: '/health/ws' },
      validation: { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true, maxValues: 1000 },
    });
  });

  it("keeps class-validator's options and checks validation.maxValues", () => {
    expect(resolveOptions({ validation: { forbidNonWhitelisted: false, maxValues: 5 } }).validation).toEqual({
      whitelist: true,
      forbidNonWhitelisted: false,
      forbidUnknownValues: true,
      maxValues: 5,
    });
    expect(resolveOptions({ validation: { skipMissingProperties: true } }).validation).toMatchObject({ maxValues: 1000 });
  });

  it('merges a partial section with its defaults', () => {
    const resolved = resolveOptions({ heartbeat: { intervalMs: 100 }, shutdown: { spreadMs: 500 }, resume: { ttlMs: 0 } });
    expect(resolved.heartbeat).toEqual({ intervalMs: 100, timeoutMs: 10000 });
    expect(resolved.shutdown).toEqual({ closeCode: 1001, spreadMs: 500, timeoutMs: 10000 });
    expect(resolved.resume).toEqual({
      bufferSize: 1000,
      maxBufferedBytes: 1048576,
      ttlMs: 0,
      maxTotalBytes: 268435456,
      maxDetachedSessions: 10000,
    });
  });

  it('keeps explicit values', () => {
    const check = () => true;
    const resolved = resolveOptions({
      allowedOrigins: check,
      requireOrigin: true,
      maxPayloadBytes: 1024,
      maxConnectionsPerIp: 5,
      trustProxy: 2,
      backpressure: { maxBufferedBytes: 4096 },
      shutdown: { closeCode: 4000, timeoutMs: 0 },
      health: { path: '/hc' },
    });
    expect(resolved).toMatchObject({
      allowedOrigins: check,
      requireOrigin: true,
      maxPayloadBytes: 1024,
      maxConnectionsPerIp: 5,
      trustProxy: 2,
      backpressure: { maxBufferedBytes: 4096 },
      shutdown: { closeCode: 4000, spreadMs: 0, timeoutMs: 0 },
      health: { path: '/hc' },
    });
  });

  it('takes the longest delay a timer holds (2^31 - 1 ms) for an option waited with a timer', () => {
    const resolved = resolveOptions({ resume: { ttlMs: 2 ** 31 - 1 }, shutdown: { timeoutMs: 2 ** 31 - 1 } });
    expect(resolved.resume && resolved.resume.ttlMs).toBe(2 ** 31 - 1);
    expect(resolved.shutdown.timeoutMs).toBe(2 ** 31 - 1);
  });

  it('turns resume and health off with false', () => {
    expect(resolveOptions({ resume: false, health: false })).toMatchObject({ resume: false, health: false });
  });

  it("accepts '*', RegExps and lower-cases origin strings", () => {
    expect(resolveOptions({ allowedOrigins: '*' }).allowedOrigins).toBe('*');
    const pattern = /^https:\/\/.*\.example\.com$/;
    expect(resolveOptions({ allowedOrigins: ['HTTPS://App.Example.com', pattern, 'http://localhost:3000'] }).allowedOrigins).toEqual([
      'https://app.example.com',
      pattern,
      'http://localhost:3000',
    ]);
  });

  it('accepts every CloseCode and application codes 4000-4999 as shutdown.closeCode', () => {
    for (const code of [1000, 1001, 1012, 4000, 4009, 4999]) {
      expect(resolveOptions({ shutdown: { closeCode: code } }).shutdown.closeCode).toBe(code);
    }
  });

  it('returns fresh objects: changing one result does not change the defaults', () => {
    const first = resolveOptions({});
    first.heartbeat.intervalMs = 1;
    (first.shutdown as { spreadMs: number }).spreadMs = 99;
    expect(resolveOptions({}).heartbeat.intervalMs).toBe(30000);
    expect(resolveOptions({}).shutdown.spreadMs).toBe(0);
    expect(DEFAULT_OPTIONS.heartbeat.intervalMs).toBe(30000);
  });

  it('an origin string it accepts also matches that origin (never accepted but dead)', () => {
    // 'https://example.com/' passes the check; it must either be normalised or refused
    let resolved;
    try {
      resolved = resolveOptions({ allowedOrigins: ['https://example.com/'] });
    } catch (error) {
      expect(error).toBeInstanceOf(ReliableWsOptionsError);
      return;
    }
    const request = { headers: { origin: 'https://example.com', host: 'api.example.com' } } as unknown as IncomingMessage;
    expect(isOriginAllowed(request, resolved)).toBe(true);
  });
});

describe('resolveOptions: errors name the option and the value', () => {
  const cases: Array<[string, unknown, string, string]> = [
    ['options not an object', 5, 'options', 'got 5'],
    ['options an array', [], 'options', 'got []'],
    ['unknown top-level option', { maxPayload: 1 }, 'maxPayload', 'got 1'],
    ['unknown nested option', { heartbeat: { interval: 5 } }, 'heartbeat.interval', 'got 5'],
    ['section not an object', { heartbeat: 5 }, 'heartbeat', 'got 5'],
    ['section null', { backpressure: null }, 'backpressure', 'got null'],
    ['negative integer', { maxPayloadBytes: -1 }, 'maxPayloadBytes', 'got -1'],
    ['zero where >= 1', { maxConnectionsPerIp: 0 }, 'maxConnectionsPerIp', 'got 0'],
    ['maxPayloadBytes below 1 KiB (no $hello fits)', { maxPayloadBytes: 1023 }, 'maxPayloadBytes', 'an integer >= 1024, got 1023'],
    ['backpressure.maxBufferedBytes below 1 KiB', { backpressure: { maxBufferedBytes: 10 } }, 'backpressure.maxBufferedBytes', 'an integer >= 1024, got 10'],
    ['float', { maxPayloadBytes: 1.5 }, 'maxPayloadBytes', 'got 1.5'],
    ['string number', { maxPayloadBytes: '100' }, 'maxPayloadBytes', 'got "100"'],
    ['NaN (a bad environment variable through Number())', { maxPayloadBytes: NaN }, 'maxPayloadBytes', 'got NaN'],
    ['Infinity', { backpressure: { maxBufferedBytes: Infinity } }, 'backpressure.maxBufferedBytes', 'got Infinity'],
    ['-Infinity', { maxConnectionsPerIp: -Infinity }, 'maxConnectionsPerIp', 'got -Infinity'],
    ['NaN in a list', { trustProxy: NaN }, 'trustProxy', 'got NaN'],
    ['bigint', { maxPayloadBytes: 10n }, 'maxPayloadBytes', 'got 10n'],
    ['heartbeat.intervalMs 0', { heartbeat: { intervalMs: 0 } }, 'heartbeat.intervalMs', 'got 0'],
    ['heartbeat.timeoutMs 0', { heartbeat: { timeoutMs: 0 } }, 'heartbeat.timeoutMs', 'got 0'],
    ['resume.ttlMs past the longest timer (30 days)', { resume: { ttlMs: 2_592_000_000 } }, 'resume.ttlMs', 'got 2592000000'],
    ['shutdown.timeoutMs past the longest timer', { shutdown: { timeoutMs: 2 ** 31 } }, 'shutdown.timeoutMs', 'got 2147483648'],
    ['auth.timeoutMs past the longest timer', { auth: { verify: () => null, timeoutMs: 2 ** 31 } }, 'auth.timeoutMs', 'got 2147483648'],
    ['heartbeat.intervalMs past the longest timer', { heartbeat: { intervalMs: 2 ** 32 } }, 'heartbeat.intervalMs', 'got 4294967296'],
    ['broadcast.canaryIntervalMs past the longest timer', { broadcast: { redis: 'redis://127.0.0.1:6379', canaryIntervalMs: 2 ** 31 } }, 'broadcast.canaryIntervalMs', 'got 2147483648'],
    ['requireOrigin not boolean', { requireOrigin: 'yes' }, 'requireOrigin', 'got "yes"'],
    ['allowedOrigins a string', { allowedOrigins: 'https://example.com' }, 'allowedOrigins', 'got "https://example.com"'],
    ['origin without scheme', { allowedOrigins: ['example.com'] }, 'allowedOrigins[0]', 'got "example.com"'],
    ['origin with a path', { allowedOrigins: ['https://a.com', 'https://b.com/app'] }, 'allowedOrigins[1]', 'got "https://b.com/app"'],
    ['origin not a string', { allowedOrigins: [42] }, 'allowedOrigins[0]', 'got 42'],
    ["origin 'null'", { allowedOrigins: ['null'] }, 'allowedOrigins[0]', 'got "null"'],
    ['trustProxy string', { trustProxy: 'yes' }, 'trustProxy', 'got "yes"'],
    ['trustProxy true', { trustProxy: true }, 'trustProxy', 'got true'],
    ['trustProxy 0', { trustProxy: 0 }, 'trustProxy', 'got 0'],
    ['closeCode below 1000', { shutdown: { closeCode: 999 } }, 'shutdown.closeCode', 'got 999'],
    ['closeCode not a CloseCode', { shutdown: { closeCode: 1002 } }, 'shutdown.closeCode', 'got 1002'],
    ['closeCode 3000', { shutdown: { closeCode: 3000 } }, 'shutdown.closeCode', 'got 3000'],
    ['closeCode 5000', { shutdown: { closeCode: 5000 } }, 'shutdown.closeCode', 'got 5000'],
    ['spreadMs negative', { shutdown: { spreadMs: -1 } }, 'shutdown.spreadMs', 'got -1'],
    ['resume true', { resume: true }, 'resume', 'got true'],
    ['resume.bufferSize 0', { resume: { bufferSize: 0 } }, 'resume.bufferSize', 'got 0'],
    ['resume.maxBufferedBytes 0', { resume: { maxBufferedBytes: 0 } }, 'resume.maxBufferedBytes', 'got 0'],
    ['resume.maxTotalBytes a string', { resume: { maxTotalBytes: '256mb' } }, 'resume.maxTotalBytes', 'got "256mb"'],
    ['resume.maxDetachedSessions negative', { resume: { maxDetachedSessions: -1 } }, 'resume.maxDetachedSessions', 'got -1'],
    ['validation.maxValues 0', { validation: { maxValues: 0 } }, 'validation.maxValues', 'got 0'],
    ['validation.maxValues a string', { validation: { maxValues: '1000' } }, 'validation.maxValues', 'got "1000"'],
    ['validation.maxValues Infinity', { validation: { maxValues: Infinity } }, 'validation.maxValues', 'got Infinity'],
    ['maxMessageDepth 0', { maxMessageDepth: 0 }, 'maxMessageDepth', 'got 0'],
    ['maxTransferBytes negative', { maxTransferBytes: -1 }, 'maxTransferBytes', 'got -1'],
    ['maxTransferBytes a string', { maxTransferBytes: '16M' }, 'maxTransferBytes', 'got "16M"'],
    ['maxMessageDepth a float', { maxMessageDepth: 2.5 }, 'maxMessageDepth', 'got 2.5'],
    ['health.path without slash', { health: { path: 'x' } }, 'health.path', 'got "x"'],
    ['health.path with a query', { health: { path: '/health?x=1' } }, 'health.path', 'got "/health?x=1"'],
    ['health.path with a wildcard', { health: { path: '/health/*' } }, 'health.path', 'got "/health/*"'],
    ['health.path with a parameter', { health: { path: '/health/:probe' } }, 'health.path', 'got "/health/:probe"'],
    ['health.path with a group', { health: { path: '/health(x)' } }, 'health.path', 'got "/health(x)"'],
    ['health.path with a space', { health: { path: '/he alth' } }, 'health.path', 'got "/he alth"'],
    ['health.path a trailing slash', { health: { path: '/health/' } }, 'health.path', 'got "/health/"'],
    ['health.path a number', { health: { path: 5 } }, 'health.path', 'got 5'],
    ['health true', { health: true }, 'health', 'got true'],
    ['a function value', { maxPayloadBytes: () => 1 }, 'maxPayloadBytes', 'got a function'],
    ['broadcast.redis a number', { broadcast: { redis: 6379 } }, 'broadcast.redis', 'got 6379'],
    ['a cluster without sharded', { broadcast: { redis: { cluster: [7000] } } }, 'broadcast.sharded', 'got false'],
    ['a cluster without nodes', { broadcast: { sharded: true, redis: { cluster: [] } } }, 'broadcast.redis.cluster', 'got []'],
    ['a cluster node not a node', { broadcast: { sharded: true, redis: { cluster: [7000, true] } } }, 'broadcast.redis.cluster', 'got [7000,true]'],
    ['cluster options a string', { broadcast: { sharded: true, redis: { cluster: [7000], options: 'x' } } }, 'broadcast.redis.options', 'got "x"'],
  ];

  it.each(cases)('%s', (_name, raw, option, got) => {
    const error = errorOf(raw);
    expect(error).toBeInstanceOf(ReliableWsOptionsError);
    expect(error.name).toBe('ReliableWsOptionsError');
    expect(error.message).toContain(`invalid option "${option}"`);
    expect(error.message).toContain(got);
  });

  it('describes a value JSON cannot hold without throwing itself', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(errorOf({ maxPayloadBytes: circular }).message).toContain('"maxPayloadBytes"');
    expect(errorOf({ maxPayloadBytes: Symbol('s') }).message).toContain('Symbol(s)');
    expect(errorOf({ allowedOrigins: ['https://a.com', /x/, 'nope'] }).message).toContain('allowedOrigins[2]');
  });

  it('shows no password of a cluster config it rejects', () => {
    const unknownKey = errorOf({ broadcast: { sharded: true, redis: { cluster: [7000], password: 's3cret' } } });
    expect(unknownKey.message).toContain('invalid option "broadcast.redis.password"');
    const badNodes = errorOf({
      broadcast: { sharded: true, redis: { cluster: ['redis://:s3cret@a:7000', { host: 'b', port: 7001, password: 's3cret' }, null] } },
    });
    expect(badNodes.message).toContain('invalid option "broadcast.redis.cluster"');
    for (const error of [unknownKey, badNodes]) expect(error.message).not.toContain('s3cret');
  });
});

describe('resolveOptions: a Redis Cluster', () => {
  it('accepts `{ cluster, options }` and an ioredis Cluster, with sharded: true, as given', () => {
    const config = { cluster: [{ host: '127.0.0.1', port: 7000 }, '127.0.0.1:7001', 7002], options: { redisOptions: { password: 'p' } } };
    expect(resolveOptions({ broadcast: { redis: config, sharded: true } }).broadcast.redis).toBe(config);
    const cluster = new Cluster([7000], { lazyConnect: true });
    expect(resolveOptions({ broadcast: { redis: cluster, sharded: true } }).broadcast.redis).toBe(cluster);
    expect(errorOf({ broadcast: { redis: cluster } }).message).toContain('invalid option "broadcast.sharded"');
  });

  it('takes an ioredis Redis (which has a `cluster` method) for a single Redis, sharded or not', () => {
    const redis = new Redis({ lazyConnect: true });
    expect(resolveOptions({ broadcast: { redis } }).broadcast.redis).toBe(redis);
    expect(resolveOptions({ broadcast: { redis, sharded: true } }).broadcast.redis).toBe(redis);
  });
});
