import {
  AUTH_MODES,
  containExpiresAt,
  containUserId,
  DEFAULT_AUTH_TIMEOUT_MS,
  defaultExpiresAt,
  defaultUserId,
  type AuthMode,
  type ResolvedAuthOptions,
} from './auth/index.js';
import { Cluster, Redis } from 'ioredis';
import { CloseCode, MAX_TIMER_DELAY_MS } from './protocol/index.js';
import type { ValidationOptions } from './validation/index.js';
import {
  DEFAULT_OPTIONS,
  type ReliableWsOptions,
  type ResolvedReliableWsOptions,
} from './reliable-ws.options.js';

/** Thrown at bootstrap for an option with a wrong value; the message names the option and the value. */
export class ReliableWsOptionsError extends Error {
  constructor(option: string, value: unknown, expected: string) {
    super(`ReliableWsModule: invalid option "${option}": expected ${expected}, got ${describe(value)}`);
    this.name = 'ReliableWsOptionsError';
  }
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (value instanceof RegExp) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return String(value); // JSON would show NaN and ±Infinity as null
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

type Shape = Record<string, unknown>;

function isPlainObject(value: unknown): value is Shape {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof RegExp);
}

function checkKeys(name: string, value: Shape, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const option = name ? `${name}.${key}` : key;
      throw new ReliableWsOptionsError(option, value[key], `one of the known options (${allowed.join(', ')})`);
    }
  }
}

function integer(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ReliableWsOptionsError(name, value, `an integer >= ${min}`);
  }
  return value;
}

/** A delay in ms that the package waits with a timer. */
function delay(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > MAX_TIMER_DELAY_MS) {
    throw new ReliableWsOptionsError(name, value, `an integer from ${min} to ${MAX_TIMER_DELAY_MS} (ms, the longest a timer waits)`);
  }
  return value;
}

function boolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ReliableWsOptionsError(name, value, 'true or false');
  return value;
}

function section<T extends object>(name: string, value: unknown, defaults: T): Shape {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new ReliableWsOptionsError(name, value, 'an object');
  checkKeys(name, value, Object.keys(defaults));
  return value;
}

function origins(value: unknown): ResolvedReliableWsOptions['allowedOrigins'] {
  if (value === undefined) return DEFAULT_OPTIONS.allowedOrigins;
  if (value === '*' || typeof value === 'function') return value as ResolvedReliableWsOptions['allowedOrigins'];
  if (!Array.isArray(value)) {
    throw new ReliableWsOptionsError('allowedOrigins', value, "'*', an array of origins or RegExps, or a function");
  }
  return value.map((entry, index) => {
    if (entry instanceof RegExp) return entry;
    if (typeof entry === 'string' && isOrigin(entry)) return new URL(entry).origin;
    throw new ReliableWsOptionsError(
      `allowedOrigins[${index}]`,
      entry,
      "an origin such as 'https://example.com' or a RegExp",
    );
  });
}

function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return url.origin !== 'null' && url.origin === text.replace(/\/$/, '').toLowerCase();
  } catch {
    return false;
  }
}

function trustProxy(value: unknown): false | number {
  if (value === undefined || value === false) return false;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  throw new ReliableWsOptionsError('trustProxy', value, 'false or a number of proxy hops >= 1');
}

/**
 * The least `maxPayloadBytes` and `backpressure.maxBufferedBytes`: below it a `$hello` with a
 * resume and a token, or a `$ready`, may not fit, and every connection would be closed.
 */
const MIN_FRAME_BYTES = 1024;

const CLOSE_CODES: readonly number[] = Object.values(CloseCode);

const TOP_LEVEL_KEYS: readonly string[] = Object.keys(DEFAULT_OPTIONS);

/** Fills in defaults and checks every value; throws `ReliableWsOptionsError` on the first wrong one. */
export function resolveOptions(raw: ReliableWsOptions | undefined): ResolvedReliableWsOptions {
  const options: unknown = raw ?? {};
  if (!isPlainObject(options)) throw new ReliableWsOptionsError('options', raw, 'an object');
  checkKeys('', options, TOP_LEVEL_KEYS);
  const d = DEFAULT_OPTIONS;

  const heartbeat = section('heartbeat', options.heartbeat, d.heartbeat);
  const backpressure = section('backpressure', options.backpressure, d.backpressure);
  const shutdown = section('shutdown', options.shutdown, d.shutdown);

  const closeCode = integer('shutdown.closeCode', shutdown.closeCode, d.shutdown.closeCode, 1000);
  if (!CLOSE_CODES.includes(closeCode) && (closeCode < 4000 || closeCode > 4999)) {
    throw new ReliableWsOptionsError('shutdown.closeCode', closeCode, 'a CloseCode or an application code in 4000-4999');
  }

  return {
    allowedOrigins: origins(options.allowedOrigins),
    requireOrigin: boolean('requireOrigin', options.requireOrigin, d.requireOrigin),
    maxPayloadBytes: integer('maxPayloadBytes', options.maxPayloadBytes, d.maxPayloadBytes, MIN_FRAME_BYTES),
    maxMessageDepth: integer('maxMessageDepth', options.maxMessageDepth, d.maxMessageDepth, 1),
    maxTransferBytes: integer('maxTransferBytes', options.maxTransferBytes, d.maxTransferBytes, 0),
    maxConnectionsPerIp: integer('maxConnectionsPerIp', options.maxConnectionsPerIp, d.maxConnectionsPerIp, 1),
    trustProxy: trustProxy(options.trustProxy),
    heartbeat: {
      intervalMs: delay('heartbeat.intervalMs', heartbeat.intervalMs, d.heartbeat.intervalMs, 1),
      timeoutMs: delay('heartbeat.timeoutMs', heartbeat.timeoutMs, d.heartbeat.timeoutMs, 1),
    },
    auth: auth(options.auth),
    rateLimit: rateLimit(options.rateLimit),
    validation: validation(options.validation),
    backpressure: {
      maxBufferedBytes: integer(
        'backpressure.maxBufferedBytes',
        backpressure.maxBufferedBytes,
        d.backpressure.maxBufferedBytes,
        MIN_FRAME_BYTES,
      ),
    },
    broadcast: broadcast(options.broadcast),
    resume: resume(options.resume),
    shutdown: {
      closeCode,
      spreadMs: delay('shutdown.spreadMs', shutdown.spreadMs, d.shutdown.spreadMs, 0),
      timeoutMs: delay('shutdown.timeoutMs', shutdown.timeoutMs, d.shutdown.timeoutMs, 0),
    },
    health: health(options.health),
  };
}

function resume(value: unknown): ResolvedReliableWsOptions['resume'] {
  if (value === false) return false;
  const defaults = DEFAULT_OPTIONS.resume as Exclude<ResolvedReliableWsOptions['resume'], false>;
  const shape = section('resume', value, defaults);
  return {
    bufferSize: integer('resume.bufferSize', shape.bufferSize, defaults.bufferSize, 1),
    maxBufferedBytes: integer('resume.maxBufferedBytes', shape.maxBufferedBytes, defaults.maxBufferedBytes, 1),
    ttlMs: delay('resume.ttlMs', shape.ttlMs, defaults.ttlMs, 0),
    maxTotalBytes: integer('resume.maxTotalBytes', shape.maxTotalBytes, defaults.maxTotalBytes, 1),
    maxDetachedSessions: integer('resume.maxDetachedSessions', shape.maxDetachedSessions, defaults.maxDetachedSessions, 0),
  };
}

function health(value: unknown): ResolvedReliableWsOptions['health'] {
  if (value === false) return false;
  const defaults = DEFAULT_OPTIONS.health as Exclude<ResolvedReliableWsOptions['health'], false>;
  const shape = section('health', value, defaults);
  const path = shape.path ?? defaults.path;
  if (typeof path !== 'string' || !HEALTH_PATH.test(path)) {
    throw new ReliableWsOptionsError('health.path', path, "a plain path such as '/health/ws' (segments of letters, digits and - _ . ~; no query, parameter or wildcard)");
  }
  return { path };
}

/** A literal route: the HTTP router would read `:`, `*`, `(`, `?` and the like as patterns, or fail on them. */
const HEALTH_PATH = /^(\/[A-Za-z0-9._~-]+)+$/;

const AUTH_KEYS = ['verify', 'mode', 'timeoutMs', 'cookieName', 'userId', 'expiresAt'] as const;

function auth(value: unknown): ResolvedAuthOptions | false {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) throw new ReliableWsOptionsError('auth', value, 'an object with a verify function');
  checkKeys('auth', value, AUTH_KEYS);
  if (typeof value.verify !== 'function') {
    throw new ReliableWsOptionsError('auth.verify', value.verify, 'a function (token, request) => principal or null');
  }
  const mode = value.mode ?? 'any';
  if (!AUTH_MODES.includes(mode as AuthMode)) {
    throw new ReliableWsOptionsError('auth.mode', mode, `one of ${AUTH_MODES.map((m) => `'${m}'`).join(', ')}`);
  }
  const { cookieName } = value;
  if (cookieName !== undefined && (typeof cookieName !== 'string' || cookieName === '')) {
    throw new ReliableWsOptionsError('auth.cookieName', cookieName, 'a non-empty string');
  }
  return {
    verify: value.verify as ResolvedAuthOptions['verify'],
    mode: mode as AuthMode,
    timeoutMs: delay('auth.timeoutMs', value.timeoutMs, DEFAULT_AUTH_TIMEOUT_MS, 1),
    cookieName: cookieName as string | undefined,
    userId: containUserId(optionalFunction('auth.userId', value.userId) ?? defaultUserId),
    expiresAt: containExpiresAt(optionalFunction('auth.expiresAt', value.expiresAt) ?? defaultExpiresAt),
  };
}

function optionalFunction<T>(name: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new ReliableWsOptionsError(name, value, 'a function');
  return value as T;
}

function rateLimit(value: unknown): ResolvedReliableWsOptions['rateLimit'] {
  if (value === false) return false;
  const defaults = DEFAULT_OPTIONS.rateLimit as Exclude<ResolvedReliableWsOptions['rateLimit'], false>;
  const shape = section('rateLimit', value, defaults);
  return {
    points: integer('rateLimit.points', shape.points, defaults.points, 1),
    durationMs: integer('rateLimit.durationMs', shape.durationMs, defaults.durationMs, 1),
    maxViolations: integer('rateLimit.maxViolations', shape.maxViolations, defaults.maxViolations, 1),
  };
}

function validation(value: unknown): ResolvedReliableWsOptions['validation'] {
  if (value === false) return false;
  if (value === undefined) return DEFAULT_OPTIONS.validation;
  if (!isPlainObject(value)) throw new ReliableWsOptionsError('validation', value, "class-validator's options or false");
  const defaults = DEFAULT_OPTIONS.validation as ValidationOptions;
  return { ...defaults, ...value, maxValues: integer('validation.maxValues', value.maxValues, defaults.maxValues!, 1) };
}

const BROADCAST_KEYS = [
  'redis',
  'channelPrefix',
  'canaryIntervalMs',
  'sharded',
  'connectTimeoutMs',
  'historySize',
  'historyTtlMs',
  'commandTimeoutMs',
] as const;

function broadcast(value: unknown): ResolvedReliableWsOptions['broadcast'] {
  const defaults = DEFAULT_OPTIONS.broadcast;
  if (value === undefined) return defaults;
  if (!isPlainObject(value)) throw new ReliableWsOptionsError('broadcast', value, 'an object');
  checkKeys('broadcast', value, BROADCAST_KEYS);
  const prefix = value.channelPrefix ?? defaults.channelPrefix;
  if (typeof prefix !== 'string' || !/^[^\s*?[\]{}]+$/.test(prefix)) {
    throw new ReliableWsOptionsError('broadcast.channelPrefix', prefix, 'a non-empty string without spaces, braces or glob characters');
  }
  const sharded = boolean('broadcast.sharded', value.sharded, defaults.sharded);
  return {
    redis: redisOption(value.redis, sharded),
    channelPrefix: prefix,
    canaryIntervalMs: delay('broadcast.canaryIntervalMs', value.canaryIntervalMs, defaults.canaryIntervalMs, 1),
    sharded,
    connectTimeoutMs: delay('broadcast.connectTimeoutMs', value.connectTimeoutMs, defaults.connectTimeoutMs, 1),
    historySize: integer('broadcast.historySize', value.historySize, defaults.historySize, 1),
    historyTtlMs: integer('broadcast.historyTtlMs', value.historyTtlMs, defaults.historyTtlMs, 1000),
    commandTimeoutMs: delay('broadcast.commandTimeoutMs', value.commandTimeoutMs, defaults.commandTimeoutMs, 1),
  };
}

type RedisOption = ResolvedReliableWsOptions['broadcast']['redis'];

function redisOption(value: unknown, sharded: boolean): RedisOption {
  if (value instanceof Redis) return value;
  if (value instanceof Cluster || (isPlainObject(value) && 'cluster' in value)) {
    if (!sharded) {
      throw new ReliableWsOptionsError(
        'broadcast.sharded',
        sharded,
        'true with a Redis Cluster in "broadcast.redis" (only sharded pub/sub is supported across a cluster)',
      );
    }
    return value instanceof Cluster ? value : clusterConfig(value);
  }
  if (value === undefined || isPlainObject(value)) return value as RedisOption;
  if (typeof value === 'string' && /^rediss?:\/\//.test(value)) return value;
  throw new ReliableWsOptionsError(
    'broadcast.redis',
    typeof value === 'string' ? redactUrl(value) : value,
    'a redis:// or rediss:// URL, ioredis options, an ioredis instance, { cluster: [{ host, port }, …], options? } or an ioredis Cluster',
  );
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//[redacted]@');
}

/** `{ cluster: [nodes…], options?: ClusterOptions }`; values that may hold passwords are not shown in errors. */
function clusterConfig(value: Shape): RedisOption {
  const unknown = Object.keys(value).find((key) => key !== 'cluster' && key !== 'options');
  if (unknown !== undefined) {
    throw new ReliableWsOptionsError(`broadcast.redis.${unknown}`, '[redacted]', 'one of the known options (cluster, options)');
  }
  const { cluster, options } = value;
  if (!Array.isArray(cluster) || cluster.length === 0 || !cluster.every(isClusterNode)) {
    throw new ReliableWsOptionsError(
      'broadcast.redis.cluster',
      Array.isArray(cluster) ? cluster.map(shownNode) : cluster,
      'a non-empty array of cluster nodes ({ host, port }, "host:port" or a port)',
    );
  }
  if (options !== undefined && !isPlainObject(options)) {
    throw new ReliableWsOptionsError('broadcast.redis.options', options, "ioredis' ClusterOptions (an object)");
  }
  return value as RedisOption;
}

function isClusterNode(node: unknown): boolean {
  if (typeof node === 'string') return node.length > 0;
  if (typeof node === 'number') return Number.isInteger(node) && node > 0 && node < 65536;
  if (!isPlainObject(node)) return false;
  return (node.host === undefined || typeof node.host === 'string') && (node.port === undefined || typeof node.port === 'number');
}

/** A cluster node as an error message may show it: its URL's password and other fields left out. */
function shownNode(node: unknown): unknown {
  if (typeof node === 'string') return redactUrl(node);
  return isPlainObject(node) ? { host: node.host, port: node.port } : node;
}
