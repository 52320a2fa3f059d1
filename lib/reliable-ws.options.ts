import type { IncomingMessage } from 'node:http';
import { DEFAULT_MAX_MESSAGE_DEPTH } from './protocol/index.js';
import type { AuthOptions, ResolvedAuthOptions } from './auth/index.js';
import type { BroadcastOptions } from './broadcast/index.js';
import type { HeartbeatOptions } from './heartbeat/index.js';
import type { ModuleRateLimitOptions } from './rate-limit/index.js';
import { DEFAULT_MAX_VALUES, type ValidationOptions } from './validation/index.js';
import { DEFAULT_SESSION_MAX_BYTES, DEFAULT_TOTAL_MAX_BYTES, type BackpressureOptions } from './session/index.js';
import { DEFAULT_MAX_TRANSFER_BYTES } from './transfer/index.js';
import type { ShutdownOptions } from './shutdown/index.js';
import type { HealthOptions } from './health/index.js';

export type OriginCheck = (origin: string, request: IncomingMessage) => boolean;

export interface ResumeOptions {
  /** Pushes kept per session for replay after a reconnect. */
  bufferSize: number;
  /** Bytes of pushes kept per session for replay (the oldest go first), and of answers kept for duplicate ids. */
  maxBufferedBytes: number;
  /** How long a disconnected session is kept. */
  ttlMs: number;
  /** Bytes of pushes kept for replay by all sessions together. */
  maxTotalBytes: number;
  /** Disconnected sessions kept for a resume, all addresses together. */
  maxDetachedSessions: number;
}

/** Options of `ReliableWsModule.forRoot()`; every one is optional. */
export interface ReliableWsOptions {
  /** Origins allowed to open a connection: `'*'`, exact origins, patterns, or a function. Default: same origin. */
  allowedOrigins?: '*' | Array<string | RegExp> | OriginCheck;
  /** Refuse requests without an Origin header (non-browser clients). Default: false. */
  requireOrigin?: boolean;
  /** Largest accepted frame; larger ones close the connection with 1009. Default: 65536. */
  maxPayloadBytes?: number;
  /** Deepest nesting of objects and arrays in a client frame (the envelope is level 1); deeper: `$error BAD_MESSAGE`. Default: 64. */
  maxMessageDepth?: number;
  /** Bytes of chunked transfers (uploads and streams) in progress per session; beyond: `$error PAYLOAD_TOO_LARGE`. Default: 16 MiB. */
  maxTransferBytes?: number;
  /** Open connections per client IP; beyond it the handshake gets HTTP 429. Default: 1000. */
  maxConnectionsPerIp?: number;
  /** `false` (the socket's address) or the number of proxies in front (read from X-Forwarded-For). */
  trustProxy?: false | number;
  heartbeat?: Partial<HeartbeatOptions>;
  /** Token authentication at the handshake or in `$hello`. Default: none. */
  auth?: AuthOptions;
  /** Token bucket per connection; `false` turns rate limiting off. */
  rateLimit?: Partial<ModuleRateLimitOptions> | false;
  /** class-validator options for `@MessageBody()` DTOs; `false` turns validation off. */
  validation?: ValidationOptions | false;
  backpressure?: Partial<BackpressureOptions>;
  /** Fan-out across instances through Redis when `redis` is set; in-memory otherwise. */
  broadcast?: Partial<BroadcastOptions>;
  /** Session numbering and replay; `false` turns sessions off (pushes carry no `seq`). */
  resume?: Partial<ResumeOptions> | false;
  shutdown?: Partial<ShutdownOptions>;
  /** HTTP health endpoint; `false` turns it off. */
  health?: Partial<HealthOptions> | false;
}

/** The options with every default filled in and every value checked. */
export interface ResolvedReliableWsOptions {
  allowedOrigins: '*' | 'same-origin' | Array<string | RegExp> | OriginCheck;
  requireOrigin: boolean;
  maxPayloadBytes: number;
  maxMessageDepth: number;
  maxTransferBytes: number;
  maxConnectionsPerIp: number;
  trustProxy: false | number;
  heartbeat: HeartbeatOptions;
  auth: ResolvedAuthOptions | false;
  rateLimit: ModuleRateLimitOptions | false;
  validation: ValidationOptions | false;
  backpressure: BackpressureOptions;
  broadcast: BroadcastOptions;
  resume: ResumeOptions | false;
  shutdown: ShutdownOptions;
  health: HealthOptions | false;
}

export const DEFAULT_OPTIONS: ResolvedReliableWsOptions = {
  allowedOrigins: 'same-origin',
  requireOrigin: false,
  maxPayloadBytes: 65536,
  maxMessageDepth: DEFAULT_MAX_MESSAGE_DEPTH,
  maxTransferBytes: DEFAULT_MAX_TRANSFER_BYTES,
  maxConnectionsPerIp: 1000,
  trustProxy: false,
  heartbeat: { intervalMs: 30000, timeoutMs: 10000 },
  auth: false,
  rateLimit: { points: 50, durationMs: 1000, maxViolations: 20 },
  validation: { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true, maxValues: DEFAULT_MAX_VALUES },
  backpressure: { maxBufferedBytes: 1024 * 1024 },
  broadcast: {
    channelPrefix: 'rws',
    canaryIntervalMs: 5000,
    sharded: false,
    connectTimeoutMs: 10000,
    historySize: 1000,
    historyTtlMs: 300000,
    commandTimeoutMs: 2000,
  },
  resume: {
    bufferSize: 1000,
    maxBufferedBytes: DEFAULT_SESSION_MAX_BYTES,
    ttlMs: 120000,
    maxTotalBytes: DEFAULT_TOTAL_MAX_BYTES,
    maxDetachedSessions: 10000,
  },
  shutdown: { closeCode: 1001, spreadMs: 0, timeoutMs: 10000 },
  health: { path: '/health/ws' },
};
