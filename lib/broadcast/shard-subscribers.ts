import { Redis, type Cluster } from 'ioredis';
import { quitWithin } from './quit-connection.js';

/** Slots of a Redis Cluster. */
const SLOTS = 16384;

/**
 * How often the slot map is read again while a shard's subscriber is down (its master may have
 * failed over), or once more after a change it may have read too early.
 */
const REFRESH_WHILE_UNSETTLED_MS = 1000;

/** The cluster slot of a key (CRC16/XMODEM of the key, or of its hash tag, modulo 16384), as Redis computes it. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/** What the subscribers of a cluster tell their owner; a shard is named by its master's `host:port`. */
export interface ShardSubscriberEvents {
  message(channel: string, payload: string): void;
  /** A shard's connection dropped: what its channels carry is missed until it is back. */
  lost(shard: string): void;
  /** A shard's connection is ready again; it resubscribes its channels first. */
  back(shard: string, connection: Redis): void;
  /** A shard serves none of the channels any more (their slots moved): it no longer counts. */
  gone(shard: string): void;
  /** A channel is subscribed on the master its slot moved to: what was published meanwhile is to be caught up. */
  moved(channel: string): void;
  error(error: Error): void;
}

/**
 * Sharded pub/sub across a Redis Cluster: one subscriber connection per master serving a
 * subscribed channel, found in the cluster's slot map. Each connection reconnects and
 * resubscribes its channels by itself, like a single Redis subscriber; when the slot map
 * changes (resharding, failover), channels move to their new master.
 */
export class ShardSubscribers {
  private readonly connections = new Map<string, Redis>();
  /** The shard each subscribed channel is subscribed on. */
  private readonly shardOf = new Map<string, string>();
  private readonly down = new Set<string>();
  /** The slot map is to be read once more: a channel could not be moved, or the cluster may be changing. */
  private recheckSlots = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onRefresh = (): void => this.followSlots();

  /** @param quitTimeoutMs how long a shard connection being closed may take to answer QUIT */
  constructor(
    private readonly cluster: Cluster,
    private readonly events: ShardSubscriberEvents,
    private readonly quitTimeoutMs: number,
  ) {
    cluster.on('refresh', this.onRefresh);
  }

  async ssubscribe(channel: string): Promise<void> {
    const shard = this.masterOf(channel);
    this.shardOf.set(channel, shard);
    await this.connection(shard).ssubscribe(channel);
  }

  async sunsubscribe(channel: string): Promise<void> {
    const shard = this.shardOf.get(channel);
    this.shardOf.delete(channel);
    if (shard) await this.connections.get(shard)?.sunsubscribe(channel);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cluster.off('refresh', this.onRefresh);
    clearInterval(this.refreshTimer);
    const connections = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(connections.map((connection) => quitWithin(connection, this.quitTimeoutMs)));
  }

  private masterOf(channel: string): string {
    const shard = this.cluster.slots[keySlot(channel)]?.[0];
    if (!shard) throw new Error(`no master of the Redis Cluster serves the slot of ${channel}`);
    return shard;
  }

  private connection(shard: string): Redis {
    const existing = this.connections.get(shard);
    if (existing) return existing;
    const split = shard.lastIndexOf(':');
    const connection = new Redis({
      ...this.cluster.options.redisOptions,
      host: shard.slice(0, split),
      port: Number(shard.slice(split + 1)),
      maxRetriesPerRequest: 1,
    });
    connection.on('smessage', (channel: string, payload: string) => this.events.message(channel, payload));
    connection.on('error', (error: Error) => this.shardError(error));
    connection.on('close', () => this.shardLost(shard));
    connection.on('ready', () => this.shardBack(shard, connection));
    this.connections.set(shard, connection);
    return connection;
  }

  /**
   * An error on a shard's connection may come from the cluster changing under it (ioredis reports
   * the SUNSUBSCRIBE a master sends when a slot moves away as an error): reads the slot map now,
   * and once more shortly, in case the node it was read from had not heard of the change yet.
   */
  private shardError(error: Error): void {
    this.events.error(error);
    if (this.closed) return;
    this.cluster.refreshSlotsCache();
    this.recheckSlots = true;
    this.keepRefreshing();
  }

  private shardLost(shard: string): void {
    if (this.closed) return;
    this.down.add(shard);
    this.events.lost(shard);
    this.keepRefreshing();
  }

  private shardBack(shard: string, connection: Redis): void {
    this.down.delete(shard);
    this.events.back(shard, connection);
  }

  /** Reads the slot map every so often while a shard is down or a recheck is due. */
  private keepRefreshing(): void {
    this.refreshTimer ??= setInterval(() => {
      if (this.down.size === 0 && !this.recheckSlots) {
        clearInterval(this.refreshTimer);
        this.refreshTimer = undefined;
        return;
      }
      this.recheckSlots = false;
      this.cluster.refreshSlotsCache();
    }, REFRESH_WHILE_UNSETTLED_MS).unref();
  }

  /** Moves every channel whose slot another master serves now, and drops shards left without channels. */
  private followSlots(): void {
    for (const [channel, shard] of this.shardOf) {
      const owner = this.cluster.slots[keySlot(channel)]?.[0];
      if (owner && owner !== shard) this.move(channel, shard, owner);
    }
    const used = new Set(this.shardOf.values());
    for (const [shard, connection] of this.connections) {
      if (used.has(shard)) continue;
      this.connections.delete(shard);
      this.down.delete(shard);
      connection.removeAllListeners('close');
      void quitWithin(connection, this.quitTimeoutMs);
      this.events.gone(shard);
    }
  }

  private move(channel: string, from: string, to: string): void {
    this.shardOf.set(channel, to);
    this.connections.get(from)?.sunsubscribe(channel).catch(() => undefined);
    this.connection(to)
      .ssubscribe(channel)
      .then(
        () => this.events.moved(channel),
        (error: Error) => {
          // Back on the old shard as far as the next slot map read is concerned, which moves it again.
          if (this.shardOf.get(channel) === to) this.shardOf.set(channel, from);
          this.recheckSlots = true;
          this.keepRefreshing();
          this.events.error(error);
        },
      );
  }
}
