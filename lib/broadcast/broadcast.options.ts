import type { Redis, RedisOptions } from 'ioredis';

export interface BroadcastOptions {
  /** A URL, ioredis options, or an ioredis instance (which the module then does not close). */
  redis?: string | RedisOptions | Redis;
  /** Prefix of every channel; instances sharing it deliver to each other's clients. */
  channelPrefix: string;
  /** How often each instance publishes its canary; it is late after three missed intervals. */
  canaryIntervalMs: number;
  /** Use sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7), for Redis Cluster. */
  sharded: boolean;
  /** How long startup waits for Redis before failing bootstrap. */
  connectTimeoutMs: number;
  /** Messages kept per channel in Redis, so that an instance whose subscriber was cut recovers them. */
  historySize: number;
  /** How long a channel's history (and its record) is kept after its last message. */
  historyTtlMs: number;
  /** How long a publish (or a history read) may take before it rejects. */
  commandTimeoutMs: number;
}

/** Canary intervals that may pass without the canary before the subscriber counts as dead. */
export const CANARY_MISSED_INTERVALS = 3;
