import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Cluster, Redis, ReplyError, type ClusterNode, type RedisOptions } from 'ioredis';
import { CANARY_MISSED_INTERVALS, type BroadcastOptions, type RedisClusterConfig } from './broadcast.options.js';
import type { BroadcastTransport, ChannelPosition, HandoverTakeBack, LossListener, TransportListener } from './broadcast.transport.js';
import { ChannelSequencer, decodeSequenced } from './channel-sequencer.js';
import { CommandWatchdog } from './command-watchdog.js';
import { quitWithin } from './quit-connection.js';
import { claimHandover, publishSequenced, readHead, readHistory, storeHandover, takeHandoverBack } from './redis-scripts.js';
import { keySlot, ShardSubscribers, type ShardSubscriberEvents } from './shard-subscribers.js';
import type { ReliableWsMetrics } from '../telemetry/index.js';
import { errorText } from '../protocol/index.js';
import { LogThrottle, quote } from '../telemetry/index.js';

/** How soon a catch-up that could not read the history is tried again. */
const CATCH_UP_RETRY_MS = 250;

type Connection = Redis | Cluster;

/** A URL with its password, if any, replaced, for error messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//[redacted]@');
}

/** Where `broadcast.redis` points, without passwords, for error messages. */
function describeRedis(redis: BroadcastOptions['redis']): string {
  if (typeof redis === 'string') return redactUrl(redis);
  if (redis instanceof Redis) return 'the given ioredis instance';
  if (redis instanceof Cluster) return 'the given ioredis Cluster';
  if (isClusterConfig(redis)) return `the cluster at ${redis.cluster.map(describeNode).join(', ')}`;
  return `${redis?.host ?? '127.0.0.1'}:${redis?.port ?? 6379}`;
}

function describeNode(node: ClusterNode): string {
  if (typeof node === 'object') return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
  return typeof node === 'string' ? redactUrl(node) : `127.0.0.1:${node}`;
}

function isClusterConfig(redis: BroadcastOptions['redis']): redis is RedisClusterConfig {
  return typeof redis === 'object' && !(redis instanceof Redis) && !(redis instanceof Cluster) && 'cluster' in redis;
}

/**
 * Broadcast over Redis pub/sub (or sharded pub/sub) with two connections: a publisher and a
 * subscriber (with a Redis Cluster: an ioredis Cluster, and a subscriber connection per shard).
 * Every message is numbered in its channel and kept in a bounded history in the same round trip
 * as its publish, so that a subscriber that was cut (and resubscribed by ioredis) recovers what it
 * missed, in order, and reports what it cannot recover. A canary the instance publishes to itself
 * detects a subscriber that is connected but receives nothing.
 */
export class RedisBroadcastTransport implements BroadcastTransport {
  readonly local = false;
  private readonly logger = new Logger(RedisBroadcastTransport.name);
  private readonly droppedLog = new LogThrottle((level, message) => this.logger[level](message));
  private readonly publisher: Connection;
  private readonly subscriber: Redis | ShardSubscribers;
  private readonly ownsPublisher: boolean;
  private readonly canaryChannel: string;
  private canaryTimer: NodeJS.Timeout | undefined;
  private lastCanaryAt = performance.now();
  /** From the publish of the latest canary received to its arrival. */
  private canaryRoundTripMs = 0;
  private canaryLate = false;
  /** Subscriber connections (one per shard of a cluster, named by its master) that dropped and are not back yet. */
  private readonly subscribersDown = new Set<string>();
  /**
   * The shards whose latest publish failed (a Cluster master's `host:port`, or '' for a single
   * Redis), and whether Redis refused it (an error reply: only a later publish there clears
   * it) rather than did not answer (the canary's publish or a PING its master answers clears it).
   */
  private readonly publishFailingOn = new Map<string, boolean>();
  private readonly probing = new Set<string>();
  private started = false;
  private closing = false;
  private catchUpTimer: NodeJS.Timeout | undefined;
  /** Subscribers back but not answering yet, and when they are asked again. */
  private readonly subscriberRetries = new Map<string, NodeJS.Timeout>();
  private listener: TransportListener = () => undefined;
  private onLoss: LossListener = () => undefined;
  private readonly sequencer: ChannelSequencer;
  private readonly subscribed = new Set<string>();
  private readonly watchdog: CommandWatchdog;
  /** Unique per publish: the epoch a channel gets if Redis has no record of it (new, or its data lost). */
  private readonly epochBase = randomBytes(6).toString('hex');
  private epochCounter = 0;

  constructor(
    private readonly options: BroadcastOptions,
    instanceId: string,
    private readonly metrics?: ReliableWsMetrics,
  ) {
    const { redis } = options;
    this.ownsPublisher = !(redis instanceof Redis || redis instanceof Cluster);
    this.publisher = createPublisher(redis);
    if (this.publisher instanceof Cluster && !options.sharded) {
      throw new Error('ReliableWsModule: a Redis Cluster in "broadcast.redis" needs "broadcast.sharded: true"');
    }
    this.subscriber =
      this.publisher instanceof Cluster ? new ShardSubscribers(this.publisher, this.shardEvents(), options.commandTimeoutMs) : createSubscriber(redis);
    this.canaryChannel = `${options.channelPrefix}:canary:${instanceId}`;
    this.publisher.on('error', (error: Error) => this.warnRedisError(error));
    if (this.subscriber instanceof Redis) this.subscriber.on('error', (error: Error) => this.warnRedisError(error));
    this.watchdog = new CommandWatchdog(options.commandTimeoutMs);
    this.sequencer = new ChannelSequencer(
      {
        deliver: (channel, payload) => this.listener(channel, payload),
        readHistory: (channel, after) => this.withinCommandTimeout(readHistory(this.publisher, channel, after), this.shardOf(channel)),
        lost: (channel) => this.onLoss(channel),
        dropped: (channel, { epoch, offset, payload }) =>
          this.droppedLog.log(
            'unrecorded',
            'warn',
            `dropped a message on ${channel} that Redis has no record of (epoch ${quote(epoch)}, offset ${offset}: past the channel's head, or another epoch than its head's): ${quote(payload)}`,
          ),
      },
      options.historyTtlMs,
      options.historySize,
    );
  }

  get description(): string {
    return `Redis at ${describeRedis(this.options.redis)}${this.options.sharded ? ' (sharded pub/sub)' : ''}`;
  }

  /**
   * How late the canary is: its last round trip, or, while none arrives, how long past its
   * interval the last one is.
   */
  canaryLagMs(now = performance.now()): number {
    return Math.max(this.canaryRoundTripMs, now - this.lastCanaryAt - this.options.canaryIntervalMs);
  }

  /** Receiving, caught up, and publishing: false from the moment the subscriber connection drops. */
  get healthy(): boolean {
    return this.subscribersDown.size === 0 && !this.canaryLate && this.publishFailingOn.size === 0 && this.sequencer.caughtUp;
  }

  async start(channels: string[], listener: TransportListener, onLoss: LossListener): Promise<void> {
    this.listener = listener;
    this.onLoss = onLoss;
    this.watchdog.start();
    if (this.subscriber instanceof Redis) this.listenTo(this.subscriber);
    await this.withinConnectTimeout(async () => {
      const subscriber = this.subscriber;
      await Promise.all([connect(this.publisher), subscriber instanceof Redis && connect(subscriber)]);
      await this.subscribeAll([this.canaryChannel]);
      await Promise.all(channels.map((channel) => this.subscribe(channel)));
    });
    this.started = true;
    this.startCanary();
    if (this.metrics) this.metrics.canaryLag = () => this.canaryLagMs();
  }

  /** Resolves once the message is numbered, kept in the channel's history and published. */
  async publish(channel: string, payload: string): Promise<void> {
    const epoch = `${this.epochBase}${(++this.epochCounter).toString(36)}`;
    const shard = this.shardOf(channel);
    try {
      await this.withinCommandTimeout(publishSequenced(this.publisher, channel, payload, epoch, this.options, this.options.sharded), shard);
      this.publishFailingOn.delete(shard);
    } catch (error) {
      this.publishFailingOn.set(shard, error instanceof ReplyError);
      throw error;
    }
  }

  position(channel: string): ChannelPosition | undefined {
    return this.sequencer.position(channel);
  }

  whenDelivered(channel: string, position: ChannelPosition, timeoutMs: number): Promise<boolean> {
    return this.sequencer.whenDelivered(channel, position, timeoutMs);
  }

  /** Subscribes and takes the channel's position, so that nothing published from here on is missed. */
  async subscribe(channel: string): Promise<void> {
    // A position kept from an earlier subscription would make the messages of the time between count as missed.
    this.sequencer.forget(channel);
    this.subscribed.add(channel);
    await this.subscribeAll([channel]);
    this.sequencer.start(channel, await this.withinCommandTimeout(readHead(this.publisher, channel), this.shardOf(channel)));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.subscribed.delete(channel);
    this.sequencer.forget(channel);
    const subscriber = this.subscriber;
    if (subscriber instanceof Redis && !this.options.sharded) await subscriber.unsubscribe(channel);
    else await subscriber.sunsubscribe(channel);
  }

  async store(key: string, snapshot: string, ttlMs: number): Promise<void> {
    await this.withinCommandTimeout(storeHandover(this.publisher, key, snapshot, ttlMs), this.shardOf(key));
  }

  claim(key: string, claim: string): Promise<string | undefined> {
    return this.withinCommandTimeout(claimHandover(this.publisher, key, claim), this.shardOf(key));
  }

  takeBack(key: string): Promise<HandoverTakeBack> {
    return this.withinCommandTimeout(takeHandoverBack(this.publisher, key), this.shardOf(key));
  }

  async discard(key: string): Promise<void> {
    await this.withinCommandTimeout(this.publisher.del(key), this.shardOf(key));
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.metrics) this.metrics.canaryLag = undefined;
    this.watchdog.stop();
    clearInterval(this.canaryTimer);
    clearTimeout(this.catchUpTimer);
    for (const timer of this.subscriberRetries.values()) clearTimeout(timer);
    const subscriber = this.subscriber;
    const timeoutMs = this.options.commandTimeoutMs;
    await Promise.all([
      subscriber instanceof ShardSubscribers ? subscriber.close() : quitWithin(subscriber, timeoutMs),
      this.ownsPublisher && quitWithin(this.publisher, timeoutMs),
    ]);
  }

  private async subscribeAll(channels: string[]): Promise<void> {
    const subscriber = this.subscriber;
    if (subscriber instanceof Redis && !this.options.sharded) {
      await subscriber.subscribe(...channels);
    } else {
      // Sharded channels may live on different shards: one SSUBSCRIBE per channel.
      await Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)));
    }
  }

  private receive(channel: string, payload: string): void {
    if (channel === this.canaryChannel) {
      this.lastCanaryAt = performance.now();
      const publishedAt = Number(payload);
      if (Number.isFinite(publishedAt)) this.canaryRoundTripMs = Math.max(0, this.lastCanaryAt - publishedAt);
      return;
    }
    if (!this.subscribed.has(channel)) return; // still in flight when it was unsubscribed
    const message = decodeSequenced(payload);
    if (message) this.sequencer.receive(channel, message);
    else this.droppedLog.log('unsequenced', 'warn', `dropped a message on ${channel} that the publish script did not number: ${quote(payload)}`);
  }

  private listenTo(subscriber: Redis): void {
    const event = this.options.sharded ? 'smessage' : 'message';
    const name = describeRedis(this.options.redis);
    subscriber.on(event, (channel: string, payload: string) => this.receive(channel, payload));
    subscriber.on('close', () => this.subscriberLost(name));
    subscriber.on('ready', () => void this.subscriberBack(name, subscriber));
  }

  private shardEvents(): ShardSubscriberEvents {
    return {
      message: (channel, payload) => this.receive(channel, payload),
      lost: (shard) => this.subscriberLost(shard),
      back: (shard, connection) => void this.subscriberBack(shard, connection),
      gone: (shard) => this.subscribersDown.delete(shard),
      moved: (channel) => void this.catchUpMoved(channel),
      error: (error) => this.warnRedisError(error),
    };
  }

  private warnRedisError(error: Error): void {
    this.logger.warn(`Redis: ${error.message}`);
  }

  private subscriberLost(subscriber: string): void {
    if (!this.started || this.closing) return;
    this.sequencer.disconnected();
    if (this.subscribersDown.has(subscriber)) return;
    this.subscribersDown.add(subscriber);
    if (this.subscribersDown.size === 1) {
      this.logger.warn(`Redis subscriber connection lost (${subscriber}): health is degraded until it is back and caught up`);
    }
  }

  /**
   * After ioredis reconnected and resubscribed: recovers what every channel missed meanwhile. A
   * subscriber that does not answer yet is asked again while its connection stays up (a new
   * connection brings a 'ready' of its own).
   */
  private async subscriberBack(subscriber: string, connection: Redis, attempt = 1): Promise<void> {
    clearTimeout(this.subscriberRetries.get(subscriber));
    this.subscriberRetries.delete(subscriber);
    if (!this.started || this.closing) return;
    try {
      // ioredis queues the resubscriptions right after 'ready': a PING behind them answers once they hold.
      await new Promise((resolve) => setImmediate(resolve));
      await this.withinCommandTimeout(connection.ping(), this.publisher instanceof Cluster ? subscriber : '');
    } catch (error) {
      if (attempt === 1) this.logger.warn(`Redis subscriber back but not answering (${errorText(error)}); asking again`);
      this.askSubscriberAgain(subscriber, connection, attempt + 1);
      return;
    }
    if (this.subscribersDown.delete(subscriber) && this.subscribersDown.size === 0) {
      this.logger.log('Redis subscriber back; catching up');
    }
    await this.catchUpAll().catch((error: unknown) => this.logger.warn(`Redis subscriber back, catching up failed: ${errorText(error)}`));
  }

  private askSubscriberAgain(subscriber: string, connection: Redis, attempt: number): void {
    if (this.closing || connection.status !== 'ready' || this.subscriberRetries.has(subscriber)) return;
    const timer = setTimeout(() => void this.subscriberBack(subscriber, connection, attempt), CATCH_UP_RETRY_MS);
    timer.unref();
    this.subscriberRetries.set(subscriber, timer);
  }

  /** Catches every channel up, and tries again shortly while one is left behind (Redis still coming back). */
  private async catchUpAll(): Promise<void> {
    clearTimeout(this.catchUpTimer);
    await Promise.all(this.sequencer.tracked().map((channel) => this.sequencer.catchUp(channel)));
    this.retryWhileBehind();
  }

  /** A channel now subscribed on the master its slot moved to: recovers what was published there meanwhile. */
  private async catchUpMoved(channel: string): Promise<void> {
    await this.sequencer.catchUp(channel);
    this.retryWhileBehind();
  }

  private retryWhileBehind(): void {
    if (this.sequencer.caughtUp || this.subscribersDown.size > 0 || this.closing) return;
    clearTimeout(this.catchUpTimer);
    this.catchUpTimer = setTimeout(() => void this.catchUpAll(), CATCH_UP_RETRY_MS);
    this.catchUpTimer.unref();
  }

  private startCanary(): void {
    const { canaryIntervalMs } = this.options;
    this.lastCanaryAt = performance.now();
    this.canaryTimer = setInterval(() => {
      this.checkCanary(performance.now());
      this.publishCanary().catch(() => undefined);
      this.probeFailingShards();
    }, canaryIntervalMs);
    this.canaryTimer.unref();
  }

  private async publishCanary(): Promise<void> {
    const payload = String(performance.now());
    const published = this.options.sharded
      ? this.publisher.spublish(this.canaryChannel, payload)
      : this.publisher.publish(this.canaryChannel, payload);
    const shard = this.shardOf(this.canaryChannel);
    await this.withinCommandTimeout(published, shard);
    this.reachable(shard);
  }

  /** A shard answered: publishes that failed there for want of an answer may go through again. */
  private reachable(shard: string): void {
    if (this.publishFailingOn.get(shard) === false) this.publishFailingOn.delete(shard);
  }

  /** The shard that serves a channel or key: its Cluster master's `host:port`, or '' for a single Redis. */
  private shardOf(key: string): string {
    return this.publisher instanceof Cluster ? (this.publisher.slots[keySlot(key)]?.[0] ?? '') : '';
  }

  /** Pings the master of each Cluster shard whose publishes failed (one PING at a time per shard). */
  private probeFailingShards(): void {
    const cluster = this.publisher;
    if (!(cluster instanceof Cluster)) return;
    const masters = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
    for (const [shard, refused] of this.publishFailingOn) {
      const master = masters.get(shard);
      if (!master) {
        this.publishFailingOn.delete(shard); // no longer a master: its slots are served elsewhere
      } else if (!refused && !this.probing.has(shard)) {
        this.probing.add(shard);
        void this.withinCommandTimeout(master.ping(), shard)
          .then(() => this.reachable(shard), () => undefined)
          .finally(() => this.probing.delete(shard));
      }
    }
  }

  /** Rejects a Redis command to `shard` (see `shardOf`) that gets no answer within `commandTimeoutMs` (it may still run). */
  private withinCommandTimeout<T>(command: Promise<T>, shard: string): Promise<T> {
    return this.watchdog.watch(command, shard);
  }

  private checkCanary(now: number): void {
    const late = now - this.lastCanaryAt > CANARY_MISSED_INTERVALS * this.options.canaryIntervalMs;
    if (late === this.canaryLate) return;
    this.canaryLate = late;
    if (late) this.logger.error(`Redis subscriber receives nothing: canary late by ${now - this.lastCanaryAt} ms`);
    else this.logger.log('Redis subscriber receives again: canary back');
  }

  private async withinConnectTimeout(work: () => Promise<void>): Promise<void> {
    const { connectTimeoutMs, redis } = this.options;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    });
    try {
      await Promise.race([work(), timeout]);
    } catch (error) {
      await this.close();
      const reason = errorText(error);
      throw new Error(`ReliableWsModule: cannot reach Redis for "broadcast.redis" (${describeRedis(redis)}): ${reason}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A given `Redis` or `Cluster` publishes; otherwise a connection (or a Cluster) made for it. */
function createPublisher(redis: BroadcastOptions['redis']): Connection {
  if (redis instanceof Redis || redis instanceof Cluster) return redis;
  if (isClusterConfig(redis)) {
    const redisOptions = { ...redis.options?.redisOptions, maxRetriesPerRequest: 1 };
    return new Cluster(redis.cluster, { ...redis.options, redisOptions, lazyConnect: true, enableOfflineQueue: false });
  }
  return createRedis(redis, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
}

/** The subscriber of a single Redis: a duplicate of a given instance, or a connection made for it. */
function createSubscriber(redis: BroadcastOptions['redis']): Redis {
  if (redis instanceof Redis) return redis.duplicate({ lazyConnect: true });
  return createRedis(redis as string | RedisOptions | undefined, { lazyConnect: true, maxRetriesPerRequest: 1 });
}

function createRedis(redis: string | RedisOptions | undefined, overrides: RedisOptions): Redis {
  return typeof redis === 'string' ? new Redis(redis, overrides) : new Redis({ ...redis, ...overrides });
}

/** Connects a lazily created connection; an instance given by the application may already be connecting or ready. */
async function connect(connection: Connection): Promise<void> {
  if (connection.status === 'ready') return;
  if (connection.status === 'wait') {
    await connection.connect();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    connection.once('ready', resolve);
    connection.once('end', () => reject(new Error('connection ended')));
  });
}

