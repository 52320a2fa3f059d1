import type { OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { globalMeter, type Attributes, type Histogram, type Meter, type MeterProvider, type Observable, type ObservableResult } from './opentelemetry.js';
import { RWS_METER_NAME, RWS_METRICS } from './telemetry.constants.js';

/** What a client frame was: an application message without id, one with an id, a `$` event, or not a valid frame. */
export type ReceivedKind = 'message' | 'request' | 'system' | 'invalid';

/** What the server wrote: a push (live or replayed), an answer to a message, a `$error`, or another `$` event. */
export type SentKind = 'push' | 'reply' | 'error' | 'system';

/** Where a broadcast was delivered from: published on this instance, or received from another one. */
export type BroadcastOrigin = 'local' | 'remote';

/** Values read at collection time, from the state that holds them. */
export interface MetricSources {
  connections(): number;
  detachedSessions(): number;
}

/** Distinct values an attribute (an error code, a close code) may take before the rest counts as `other`. */
const MAX_ATTRIBUTE_VALUES = 64;

const OTHER = 'other';

/** Close codes from here up are for applications and libraries (RFC 6455 §7.4.2). */
const FIRST_APPLICATION_CLOSE_CODE = 3000;
const APPLICATION_CLOSE = 'application';

/** Counts by an attribute value from an open set (error codes, close codes), bounded in size. */
class CountsBy {
  readonly counts = new Map<string, number>();

  add(value: string | number, count = 1): void {
    let key = String(value);
    if (!this.counts.has(key) && this.counts.size >= MAX_ATTRIBUTE_VALUES) key = OTHER;
    this.counts.set(key, (this.counts.get(key) ?? 0) + count);
  }

  absorb(other: CountsBy): void {
    for (const [key, count] of other.counts) this.add(key, count);
  }
}

/**
 * The metrics of one app. The hot path only increments integers here; OpenTelemetry reads them at
 * collection time (observable instruments), so without an SDK they cost nothing more.
 */
export class ReliableWsMetrics implements OnModuleInit, OnApplicationShutdown {
  readonly received: Record<ReceivedKind, number> = { message: 0, request: 0, system: 0, invalid: 0 };
  readonly sent: Record<SentKind, number> = { push: 0, reply: 0, error: 0, system: 0 };
  readonly resumes = { resumed: 0, missed: 0 };
  /** Pushes written again to a resumed connection. */
  replayed = 0;
  /** How late the Redis canary is, in ms; set by the Redis transport while it runs. */
  canaryLag: (() => number) | undefined;
  readonly errors = new CountsBy();
  /** By close code; see `countClose`. */
  readonly closes = new CountsBy();
  readonly handshakeRefused = new CountsBy();

  constructor(readonly sources?: MetricSources) {}

  /**
   * Counts a closed connection by its code: the server's by number; a client's by number below
   * 3000 (the protocol's), and as `application` above, so that clients cannot fill the label set
   * and hide the codes that matter.
   */
  countClose(code: number, byServer: boolean): void {
    this.closes.add(byServer || code < FIRST_APPLICATION_CLOSE_CODE ? code : APPLICATION_CLOSE);
  }

  /** True when an SDK records durations: timing a broadcast is skipped otherwise. */
  get timing(): boolean {
    return hub.histogram !== undefined;
  }

  recordBroadcast(durationMs: number, origin: BroadcastOrigin): void {
    hub.histogram?.record(Math.max(0, durationMs), ORIGIN_ATTRIBUTES[origin]);
  }

  onModuleInit(): void {
    hub.attach(this);
  }

  onApplicationShutdown(): void {
    hub.detach(this);
  }

  /** Adds the counts of a closed app, so that counters never go down. */
  absorb(other: ReliableWsMetrics): void {
    for (const kind of RECEIVED_KINDS) this.received[kind] += other.received[kind];
    for (const kind of SENT_KINDS) this.sent[kind] += other.sent[kind];
    this.resumes.resumed += other.resumes.resumed;
    this.resumes.missed += other.resumes.missed;
    this.replayed += other.replayed;
    this.errors.absorb(other.errors);
    this.closes.absorb(other.closes);
    this.handshakeRefused.absorb(other.handshakeRefused);
  }
}

const RECEIVED_KINDS: readonly ReceivedKind[] = ['message', 'request', 'system', 'invalid'];
const SENT_KINDS: readonly SentKind[] = ['push', 'reply', 'error', 'system'];
const ORIGIN_ATTRIBUTES: Readonly<Record<BroadcastOrigin, Attributes>> = { local: { origin: 'local' }, remote: { origin: 'remote' } };

/** Broadcast durations in ms: local delivery takes well under a millisecond, Redis a few. */
const DURATION_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

interface Instruments {
  connections: Observable;
  sessionsDetached: Observable;
  messagesReceived: Observable;
  messagesSent: Observable;
  errors: Observable;
  closes: Observable;
  resumes: Observable;
  replayed: Observable;
  handshakeRefused: Observable;
  redisCanaryLag: Observable;
}

function createInstruments(meter: Meter): Instruments {
  return {
    connections: meter.createObservableUpDownCounter(RWS_METRICS.connections, { description: 'Open WebSocket connections' }),
    sessionsDetached: meter.createObservableUpDownCounter(RWS_METRICS.sessionsDetached, {
      description: 'Sessions without connection, kept for a resume',
    }),
    messagesReceived: meter.createObservableCounter(RWS_METRICS.messagesReceived, { description: 'Frames received from clients, by kind' }),
    messagesSent: meter.createObservableCounter(RWS_METRICS.messagesSent, { description: 'Frames sent to clients, by kind' }),
    errors: meter.createObservableCounter(RWS_METRICS.errors, { description: '$error answers sent, by code' }),
    closes: meter.createObservableCounter(RWS_METRICS.closes, { description: 'Closed connections, by close code' }),
    resumes: meter.createObservableCounter(RWS_METRICS.resumes, { description: 'Resume requests, by outcome' }),
    replayed: meter.createObservableCounter(RWS_METRICS.replayed, { description: 'Pushes replayed to resumed connections' }),
    handshakeRefused: meter.createObservableCounter(RWS_METRICS.handshakeRefused, {
      description: 'Upgrade requests refused, by HTTP status',
    }),
    redisCanaryLag: meter.createObservableGauge(RWS_METRICS.redisCanaryLag, {
      description: 'How late the Redis canary arrived (grows while it does not arrive)',
      unit: 'ms',
    }),
  };
}

/**
 * One registration of the instruments per process, whatever the number of apps: it sums the
 * counts of the live apps and of the closed ones.
 */
class MetricsHub {
  histogram: Histogram | undefined;
  private readonly live = new Set<ReliableWsMetrics>();
  private readonly retired = new ReliableWsMetrics();
  private binding: { provider: MeterProvider; meter: Meter; instruments: Instruments; observables: Observable[] } | undefined;

  attach(metrics: ReliableWsMetrics): void {
    this.live.add(metrics);
    this.bind();
  }

  detach(metrics: ReliableWsMetrics): void {
    if (this.live.delete(metrics)) this.retired.absorb(metrics);
  }

  /** Registers the instruments with the global MeterProvider, again if it was replaced. */
  private bind(): void {
    const found = globalMeter(RWS_METER_NAME);
    if (!found || found.provider === this.binding?.provider) return;
    if (this.binding) this.binding.meter.removeBatchObservableCallback(this.observe, this.binding.observables);
    const { provider, meter } = found;
    const instruments = createInstruments(meter);
    const observables = Object.values(instruments);
    meter.addBatchObservableCallback(this.observe, observables);
    this.binding = { provider, meter, instruments, observables };
    this.histogram = meter.createHistogram(RWS_METRICS.broadcastDuration, {
      description: 'From a broadcast call (or its publish on another instance) to its delivery to the local sessions',
      unit: 'ms',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_MS },
    });
  }

  private readonly observe = (result: ObservableResult): void => {
    const instruments = this.binding?.instruments;
    if (!instruments) return;
    const total = new ReliableWsMetrics();
    total.absorb(this.retired);
    let connections = 0;
    let detached = 0;
    let canaryLagMs: number | undefined;
    for (const metrics of this.live) {
      total.absorb(metrics);
      connections += metrics.sources?.connections() ?? 0;
      detached += metrics.sources?.detachedSessions() ?? 0;
      if (metrics.canaryLag) canaryLagMs = Math.max(canaryLagMs ?? 0, metrics.canaryLag());
    }
    result.observe(instruments.connections, connections);
    result.observe(instruments.sessionsDetached, detached);
    for (const kind of RECEIVED_KINDS) result.observe(instruments.messagesReceived, total.received[kind], { kind });
    for (const kind of SENT_KINDS) result.observe(instruments.messagesSent, total.sent[kind], { kind });
    result.observe(instruments.resumes, total.resumes.resumed, { outcome: 'resumed' });
    result.observe(instruments.resumes, total.resumes.missed, { outcome: 'missed' });
    result.observe(instruments.replayed, total.replayed);
    for (const [code, count] of total.errors.counts) result.observe(instruments.errors, count, { code });
    for (const [code, count] of total.closes.counts) result.observe(instruments.closes, count, { code });
    for (const [status, count] of total.handshakeRefused.counts) result.observe(instruments.handshakeRefused, count, { status });
    if (canaryLagMs !== undefined) result.observe(instruments.redisCanaryLag, canaryLagMs);
  };
}

const hub = new MetricsHub();
