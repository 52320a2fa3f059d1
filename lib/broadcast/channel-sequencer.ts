import type { ChannelPosition } from './broadcast.transport.js';

/** A message as published on a channel: the channel's epoch and offset, and the payload. */
export interface SequencedMessage {
  epoch: string;
  offset: number;
  payload: string;
}


/** What the channel's history in Redis holds after a position, read in one step with its head. */
export interface ChannelHistory {
  /** The channel's epoch and latest offset, or undefined when Redis has no record of the channel. */
  head: { epoch: string; offset: number } | undefined;
  /**
   * The messages after the asked position, oldest first (as many as the history still holds); all
   * of them when the head is in another epoch.
   */
  messages: SequencedMessage[];
}

export interface SequencerIo {
  /** Hands a payload on, in channel order, exactly once. */
  deliver(channel: string, payload: string): void;
  readHistory(channel: string, after: ChannelPosition): Promise<ChannelHistory>;
  /** Messages of the channel are gone for good (history trimmed, Redis lost its data). */
  lost(channel: string): void;
  /** A message Redis has no record of (past the channel's head, or of an epoch it does not show) was dropped. */
  dropped(channel: string, message: SequencedMessage): void;
}

interface ChannelState {
  epoch: string;
  offset: number;
  lastSeenAt: number;
  /** Messages received while a recovery runs, delivered after it. */
  held: SequencedMessage[];
  /** The payload bytes of `held`. */
  heldBytes: number;
  /**
   * The subscriber's disconnections counted when the oldest message waiting for a recovery arrived
   * (held, or not kept past the bounds); undefined while none waits.
   */
  waitingSince: number | undefined;
  /**
   * The subscriber's disconnections counted when the channel, which Redis had no record of, took
   * the epoch of its first message without a history read; undefined once a read showed its epoch.
   */
  unconfirmedSince: number | undefined;
  recovering: boolean;
  /** A catch-up was asked for while a recovery ran: run another once it ends. */
  again: boolean;
  /** The last recovery could not read the history: a catch-up is still due. */
  behind: boolean;
}

/**
 * Payload bytes held across all channels while their gaps wait for a history read: held messages
 * are as large as Redis lets a message be, so `maxHeld` alone bounds their count but not their size.
 */
export const MAX_HELD_BYTES = 32 * 1024 * 1024;

/** The epoch of a channel that had no record in Redis when it was subscribed to. */
const NO_RECORD = '';

/** Separates the epoch and offset from the payload in a published message. */
const SEPARATOR = ' ';

export function encodeSequenced(epoch: string, offset: number, payload: string): string {
  return `${epoch}${SEPARATOR}${offset}${SEPARATOR}${payload}`;
}

export function decodeSequenced(message: string): SequencedMessage | undefined {
  const first = message.indexOf(SEPARATOR);
  const second = first === -1 ? -1 : message.indexOf(SEPARATOR, first + 1);
  if (second === -1) return undefined;
  const offset = Number(message.slice(first + 1, second));
  if (!Number.isSafeInteger(offset) || offset < 1 || first === 0) return undefined;
  return { epoch: message.slice(0, first), offset, payload: message.slice(second + 1) };
}

/**
 * Puts the messages of each subscribed channel in offset order, exactly once, and fills gaps
 * from the channel's history: a gap seen in the offsets, or one left by a subscriber that was
 * disconnected (`catchUp`). What the history no longer holds, or a new epoch (Redis lost its
 * data), is reported as lost, never skipped silently.
 */
export class ChannelSequencer {
  private readonly channels = new Map<string, ChannelState>();
  private readonly deliveryWaiters = new Set<() => void>();
  /** How often the subscriber lost its connection (Redis may have restarted meanwhile). */
  private disconnections = 0;
  private totalHeldBytes = 0;

  /**
   * @param idleResetMs a channel silent for this long may restart its epoch without loss (its
   *   record in Redis expired along with its history)
   * @param maxHeld messages held per channel while a gap waits to be filled: the history keeps no
   *   more (`historySize`), so later ones are left to the history (a loss if it no longer has them)
   * @param maxHeldBytes payload bytes (UTF-8) held, all channels together: past them, as past `maxHeld`
   */
  constructor(
    private readonly io: SequencerIo,
    private readonly idleResetMs: number,
    private readonly maxHeld: number,
    private readonly maxHeldBytes = MAX_HELD_BYTES,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Payload bytes held while gaps wait to be filled, all channels together. */
  get heldBytes(): number {
    return this.totalHeldBytes;
  }

  /** Whether any channel is still recovering what it missed. */
  get recovering(): boolean {
    for (const state of this.channels.values()) if (state.recovering) return true;
    return false;
  }

  /** No channel is recovering, and none is left behind by a history read that failed. */
  get caughtUp(): boolean {
    for (const state of this.channels.values()) if (state.recovering || state.behind) return false;
    return true;
  }

  receive(channel: string, message: SequencedMessage): void {
    const state = this.channels.get(channel);
    if (!state) {
      this.channels.set(channel, channelAt(message.epoch, message.offset, this.now()));
      this.io.deliver(channel, message.payload);
      return;
    }
    if (!state.recovering) {
      this.takeFirstEpoch(state, message);
      if (this.apply(channel, state, message)) return;
    }
    state.waitingSince ??= this.disconnections;
    // Past the bounds the message is not kept: if Redis numbered it, the next history read brings it.
    if (!this.hold(state, message)) state.again = state.recovering;
    if (!state.recovering) void this.recover(channel, state);
  }

  /** The subscriber lost its connection: what was held until now may be gone from Redis by the next read. */
  disconnected(): void {
    this.disconnections++;
  }

  /** Checks the channel against its history (after a reconnect) and delivers what was missed. */
  catchUp(channel: string): Promise<void> {
    const state = this.channels.get(channel);
    if (!state) return Promise.resolve();
    if (state.recovering) {
      state.again = true;
      return Promise.resolve();
    }
    return this.recover(channel, state);
  }

  /**
   * Sets the position of a channel just subscribed to, from its head in Redis (none: nothing was
   * published yet), unless messages already arrived. From here on, nothing is missed silently.
   */
  start(channel: string, head: ChannelHistory['head']): void {
    if (this.channels.has(channel)) return;
    const { epoch, offset } = head ?? { epoch: NO_RECORD, offset: 0 };
    this.channels.set(channel, channelAt(epoch, offset, this.now()));
  }

  /** How far the channel is delivered here: its epoch and the offset of its last message. */
  position(channel: string): ChannelPosition | undefined {
    const state = this.channels.get(channel);
    return state && state.epoch !== NO_RECORD ? { epoch: state.epoch, offset: state.offset } : undefined;
  }

  /**
   * Resolves once the channel is delivered here at least up to `position` (or has moved to
   * another epoch, or is not subscribed), or after `timeoutMs`; true when it got there.
   */
  whenDelivered(channel: string, position: ChannelPosition, timeoutMs: number): Promise<boolean> {
    const reached = (): boolean => {
      const state = this.channels.get(channel);
      return !state || (state.epoch !== NO_RECORD && (state.epoch !== position.epoch || state.offset >= position.offset));
    };
    if (reached()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!reached()) return;
        finish(true);
      };
      const finish = (value: boolean): void => {
        clearTimeout(timer);
        this.deliveryWaiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.deliveryWaiters.add(check);
    });
  }

  /** Every channel with a known position, for a catch-up after a reconnect. */
  tracked(): string[] {
    return [...this.channels.keys()];
  }

  forget(channel: string): void {
    const state = this.channels.get(channel);
    if (state) this.takeHeld(state);
    this.channels.delete(channel);
    this.notifyWaiters();
  }

  /**
   * A channel Redis had no record of takes the epoch of its first message at once, unchecked: held
   * for a history read, that message would be overtaken by later messages of other channels.
   */
  private takeFirstEpoch(state: ChannelState, message: SequencedMessage): void {
    if (state.epoch !== NO_RECORD || message.offset !== 1) return;
    state.epoch = message.epoch;
    state.unconfirmedSince = this.disconnections;
  }

  /** Keeps a message until its channel's gap is filled; false past `maxHeld` or `maxHeldBytes`. */
  private hold(state: ChannelState, message: SequencedMessage): boolean {
    const bytes = Buffer.byteLength(message.payload);
    if (state.held.length >= this.maxHeld || this.totalHeldBytes + bytes > this.maxHeldBytes) return false;
    state.held.push(message);
    state.heldBytes += bytes;
    this.totalHeldBytes += bytes;
    return true;
  }

  /** The messages held for a channel, in offset order, no longer held. */
  private takeHeld(state: ChannelState): SequencedMessage[] {
    this.totalHeldBytes -= state.heldBytes;
    state.heldBytes = 0;
    state.waitingSince = undefined;
    return state.held.splice(0).sort(byOffset);
  }

  /**
   * Delivers a message that follows the channel's position; true when it was taken care of
   * (delivered, a duplicate, or a reported loss), false when it leaves a gap to fill first.
   */
  private apply(channel: string, state: ChannelState, message: SequencedMessage): boolean {
    // Another epoch is believed only once the channel's head in Redis shows it (a history read):
    // anyone may publish on the channel, and a new epoch means its earlier messages are lost.
    if (message.epoch !== state.epoch) return false;
    if (message.offset <= state.offset) return true;
    if (message.offset > state.offset + 1) return false;
    this.moveTo(state, message);
    this.io.deliver(channel, message.payload);
    return true;
  }

  private async recover(channel: string, state: ChannelState): Promise<void> {
    state.recovering = true;
    try {
      do {
        state.again = false;
        const heldBefore = state.held.length;
        const history = await this.io.readHistory(channel, { epoch: state.epoch, offset: state.offset });
        if (this.channels.get(channel) !== state) return;
        this.applyHistory(channel, state, history);
        this.notifyWaiters();
        // A message that came during the read may be past the head it saw: read again to fill the gap before it.
        if (state.held.length > heldBefore && this.heldLeavesGap(state)) state.again = true;
      } while (state.again);
      state.behind = false;
      this.drainHeld(channel, state);
    } catch {
      // Redis is unreachable: the next catch-up tries again; keep what was held.
      state.again = false;
      state.behind = true;
    } finally {
      state.recovering = false;
    }
  }

  private applyHistory(channel: string, state: ChannelState, { head, messages }: ChannelHistory): void {
    // An epoch taken from a first message that Redis does not show, with no reconnect since: that
    // message was not published through Redis, and nothing before it was missed.
    const forgedFirst = state.unconfirmedSince === this.disconnections && head?.epoch !== state.epoch;
    state.unconfirmedSince = undefined;
    if (forgedFirst) {
      state.epoch = NO_RECORD;
      state.offset = 0;
    }
    if (!head) {
      if (state.epoch === NO_RECORD) {
        // Messages Redis has no record of: not published through it, unless it lost its data since they came.
        if (state.waitingSince !== undefined && state.waitingSince !== this.disconnections) this.io.lost(channel);
        return;
      }
      // No record: it expired with a long-idle channel, or Redis lost its data.
      if (!this.idle(state)) this.io.lost(channel);
      state.epoch = NO_RECORD;
      state.offset = 0;
      return;
    }
    if (state.epoch === NO_RECORD) state.epoch = head.epoch;
    const restarted = head.epoch !== state.epoch;
    if (restarted || (head.offset > state.offset && messages[0]?.offset !== state.offset + 1)) {
      if (!(restarted && messages[0]?.offset === 1 && this.idle(state))) this.io.lost(channel);
      state.epoch = head.epoch;
      state.offset = Math.max(0, (messages[0]?.offset ?? head.offset + 1) - 1);
    }
    for (const message of messages) if (message.epoch === state.epoch) this.apply(channel, state, message);
    if (head.offset > state.offset) {
      // The history ended before the head: trimmed while being read.
      this.io.lost(channel);
      state.offset = head.offset;
    }
  }

  /**
   * Delivers what came during the recovery. A message that still leaves a gap, or is of another
   * epoch, came before the last history read and is past its head or not in its epoch: Redis never
   * recorded it (it was not published through this package), so nothing is missing before it and
   * it is dropped.
   */
  private drainHeld(channel: string, state: ChannelState): void {
    for (const message of this.takeHeld(state)) {
      if (!this.apply(channel, state, message)) this.io.dropped(channel, message);
    }
  }

  /** A channel silent this long may have restarted its epoch without loss: its record expired with its history. */
  private idle(state: ChannelState): boolean {
    return this.now() - state.lastSeenAt >= this.idleResetMs;
  }

  /** Whether the held messages, in order, leave a gap after the channel's position (another epoch: one the read may not have seen yet). */
  private heldLeavesGap(state: ChannelState): boolean {
    let offset = state.offset;
    for (const message of [...state.held].sort(byOffset)) {
      if (message.epoch !== state.epoch) return true;
      if (message.offset <= offset) continue;
      if (message.offset > offset + 1) return true;
      offset = message.offset;
    }
    return false;
  }

  private moveTo(state: ChannelState, message: SequencedMessage): void {
    state.epoch = message.epoch;
    state.offset = message.offset;
    state.lastSeenAt = this.now();
    this.notifyWaiters();
  }

  private notifyWaiters(): void {
    for (const check of this.deliveryWaiters) check();
  }
}

/** A channel at a position, holding nothing, not recovering. */
function channelAt(epoch: string, offset: number, lastSeenAt: number): ChannelState {
  return {
    epoch,
    offset,
    lastSeenAt,
    held: [],
    heldBytes: 0,
    waitingSince: undefined,
    unconfirmedSince: undefined,
    recovering: false,
    again: false,
    behind: false,
  };
}

function byOffset(a: SequencedMessage, b: SequencedMessage): number {
  return a.offset - b.offset;
}
