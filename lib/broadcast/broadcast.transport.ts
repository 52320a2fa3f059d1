/** What the owner finds when it takes a handed-over snapshot back: its own again, or a claim's (or nothing). */
export type HandoverTakeBack = 'back' | 'claimed' | 'gone';

/** Receives what other instances published on the channels this instance listens to. */
export type TransportListener = (channel: string, payload: string) => void;

/** Where a channel stands on an instance: its epoch and the offset of its last message delivered. */
export interface ChannelPosition {
  epoch: string;
  offset: number;
}

/** Told when messages of a channel are gone for good (history trimmed, Redis lost its data). */
export type LossListener = (channel: string) => void;

/** Carries broadcasts between instances. */
export interface BroadcastTransport {
  /** True when there are no other instances to reach (the in-memory default). */
  readonly local: boolean;
  /** Connects and subscribes to the given channels; resolves once they are live. */
  start(channels: string[], listener: TransportListener, onLoss: LossListener): Promise<void>;
  /** Resolves once the message is handed to the broker; rejects when it cannot be. */
  publish(channel: string, payload: string): Promise<void>;
  /** Resolves once messages on the channel are received. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Keeps the snapshot of a session handed over to another instance for `ttlMs`, held by its owner. */
  store(key: string, snapshot: string, ttlMs: number): Promise<void>;
  /** Takes a stored snapshot for `claim` (again for the same claim); undefined when the owner took it back or another claim has it. */
  claim(key: string, claim: string): Promise<string | undefined>;
  /** The owner takes its stored snapshot back, unless a claim holds it. */
  takeBack(key: string): Promise<HandoverTakeBack>;
  /** Forgets a stored snapshot its claimer has restored. */
  discard(key: string): Promise<void>;
  /** How far a subscribed channel is delivered here (none: not known, or not numbered). */
  position(channel: string): ChannelPosition | undefined;
  /** Resolves once a channel is delivered here up to `position`, or after `timeoutMs` (false). */
  whenDelivered(channel: string, position: ChannelPosition, timeoutMs: number): Promise<boolean>;
  /** False while the transport knows it is not receiving (e.g. its canary is late). */
  readonly healthy: boolean;
  /** Where broadcasts go, for the startup log (no passwords). */
  readonly description?: string;
  close(): Promise<void>;
}

/** The in-memory default: a single instance, so there is nobody to tell. */
export class LocalBroadcastTransport implements BroadcastTransport {
  readonly local = true;
  readonly healthy = true;
  readonly description = 'in memory (this instance only)';

  async start(): Promise<void> {}

  async publish(): Promise<void> {}

  async subscribe(): Promise<void> {}

  async unsubscribe(): Promise<void> {}

  async store(): Promise<void> {
    throw new Error('the in-memory broadcast transport has no other instance to hand sessions to');
  }

  async claim(): Promise<undefined> {
    return undefined;
  }

  async takeBack(): Promise<HandoverTakeBack> {
    return 'gone';
  }

  async discard(): Promise<void> {}

  position(): undefined {
    return undefined;
  }

  async whenDelivered(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}
