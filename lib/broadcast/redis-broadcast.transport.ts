import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { CANARY_MISSED_INTERVALS, type BroadcastOptions } from './broadcast.options.js';
import type { BroadcastTransport, TransportListener } from './broadcast.transport.js';

/** A URL with its password, if any, replaced, for error messages. */
function describeRedis(redis: BroadcastOptions['redis']): string {
  if (typeof redis === 'string') return redis.replace(/\/\/([^@/]*)@/, '//[redacted]@');
  if (redis instanceof Redis) return 'the given ioredis instance';
  return `${redis?.host ?? '127.0.0.1'}:${redis?.port ?? 6379}`;
}

/**
 * Broadcast over Redis pub/sub (or sharded pub/sub) with two connections: a publisher and a
 * subscriber. ioredis resubscribes after every reconnect; a canary the instance publishes to
 * itself detects a subscriber that is connected but receives nothing.
 */
export class RedisBroadcastTransport implements BroadcastTransport {
  readonly local = false;
  private readonly logger = new Logger(RedisBroadcastTransport.name);
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly ownsPublisher: boolean;
  private readonly canaryChannel: string;
  private canaryTimer: NodeJS.Timeout | undefined;
  private lastCanaryAt = Date.now();
  private canaryLate = false;
  private listener: TransportListener = () => undefined;

  constructor(
    private readonly options: BroadcastOptions,
    instanceId: string,
  ) {
    const { redis } = options;
    this.ownsPublisher = !(redis instanceof Redis);
    if (redis instanceof Redis) {
      this.publisher = redis;
      this.subscriber = redis.duplicate({ lazyConnect: true });
    } else {
      const base: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 1 };
      this.publisher = createRedis(redis, { ...base, enableOfflineQueue: false });
      this.subscriber = createRedis(redis, base);
    }
    this.canaryChannel = `${options.channelPrefix}:canary:${instanceId}`;
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on('error', (error: Error) => this.logger.warn(`Redis: ${error.message}`));
    }
  }

  get healthy(): boolean {
    return !this.canaryLate;
  }

  async start(channels: string[], listener: TransportListener): Promise<void> {
    this.listener = listener;
    const event = this.options.sharded ? 'smessage' : 'message';
    this.subscriber.on(event, (channel: string, payload: string) => this.receive(channel, payload));
    await this.withinConnectTimeout(async () => {
      await Promise.all([connect(this.publisher), connect(this.subscriber)]);
      await this.subscribeAll([...channels, this.canaryChannel]);
    });
    this.startCanary();
  }

  async publish(channel: string, payload: string): Promise<void> {
    if (this.options.sharded) await this.publisher.spublish(channel, payload);
    else await this.publisher.publish(channel, payload);
  }

  subscribe(channel: string): Promise<void> {
    return this.subscribeAll([channel]);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (this.options.sharded) await this.subscriber.sunsubscribe(channel);
    else await this.subscriber.unsubscribe(channel);
  }

  async store(key: string, value: string, ttlMs: number): Promise<void> {
    await this.publisher.set(key, value, 'PX', Math.max(1, ttlMs));
  }

  async take(key: string): Promise<string | undefined> {
    return (await this.publisher.getdel(key)) ?? undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.canaryTimer);
    const owned = this.ownsPublisher ? [this.publisher, this.subscriber] : [this.subscriber];
    await Promise.all(owned.map(closeConnection));
  }

  private async subscribeAll(channels: string[]): Promise<void> {
    if (this.options.sharded) {
      // Sharded channels may live on different shards: one SSUBSCRIBE per channel.
      await Promise.all(channels.map((channel) => this.subscriber.ssubscribe(channel)));
    } else {
      await this.subscriber.subscribe(...channels);
    }
  }

  private receive(channel: string, payload: string): void {
    if (channel === this.canaryChannel) {
      this.lastCanaryAt = Date.now();
      return;
    }
    this.listener(channel, payload);
  }

  private startCanary(): void {
    const { canaryIntervalMs } = this.options;
    this.lastCanaryAt = Date.now();
    this.canaryTimer = setInterval(() => {
      this.checkCanary(Date.now());
      this.publish(this.canaryChannel, String(Date.now())).catch(() => undefined);
    }, canaryIntervalMs);
    this.canaryTimer.unref();
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
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`ReliableWsModule: cannot reach Redis for "broadcast.redis" (${describeRedis(redis)}): ${reason}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function createRedis(redis: string | RedisOptions | undefined, overrides: RedisOptions): Redis {
  return typeof redis === 'string' ? new Redis(redis, overrides) : new Redis({ ...redis, ...overrides });
}

/** Connects a lazily created connection; an instance given by the application may already be connecting or ready. */
async function connect(connection: Redis): Promise<void> {
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

async function closeConnection(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status === 'ready') {
    await connection.quit().catch(() => connection.disconnect());
  } else {
    connection.disconnect();
  }
}
