import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';

/**
 * A Redis Cluster to connect to, e.g. `{ cluster: [{ host: '10.0.0.1', port: 6379 }], options: {
 * redisOptions: { password } } }`: the startup nodes (`{ host, port }`, `'host:port'` or a port) and
 * ioredis' `ClusterOptions`. Needs `sharded: true`.
 */
export interface RedisClusterConfig {
  cluster: ClusterNode[];
  options?: ClusterOptions;
}

export interface BroadcastOptions {
  /**
   * A URL, ioredis options, an ioredis `Redis`, a Redis Cluster ({@link RedisClusterConfig}) or an
   * ioredis `Cluster`; a given `Redis` or `Cluster` instance is not closed by the module. A cluster
   * needs `sharded: true`.
   */
  redis?: string | RedisOptions | Redis | RedisClusterConfig | Cluster;
  /** Prefix of every channel; instances sharing it deliver to each other's clients. */
  channelPrefix: string;
  /** How often each instance publishes its canary; it is late after three missed intervals. */
  canaryIntervalMs: number;
  /**
   * Use sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7), required for a Redis Cluster: each
   * channel and its keys share one slot, so a broadcast stays on its channel's shard.
   */
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
