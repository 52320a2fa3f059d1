import type { ChannelPosition } from './broadcast.transport.js';

/** A message as published on a channel: the channel's epoch and offset, and the payload. */
export interface SequencedMessage {
  epoch: string;
  offset: number;
  payload: string;
}


/** What the channel's history in Redis holds after an offset, read in one step with its head. */
export interface ChannelHistory {
  /** The channel's epoch and latest offset, or undefined when Redis has no record of the channel. */
  head: { epoch: string; offset: number } | undefined;
  /** The messages after the asked offset, oldest first (as many as the history still holds). */
  messages: SequencedMessage[];
}

export interface SequencerIo {
  /** Hands a payload on, in channel order, exactly once. */
  deliver(channel: string, payload: string): void;
  readHistory(channel: string, afterOffset: number): Promise<ChannelHistory>;
  /** Messages of the channel are gone for good (history trimmed, Redis lost its data). */
  lost(channel: string): void;
}

interface ChannelState {
  epoch: string;
  offset: number;
  lastSeenAt: number;
  /** Messages received while a recovery runs, delivered after it. */
  held: SequencedMessage[];
  recovering: boolean;
  /** A catch-up was asked for while a recovery ran: run another once it ends. */
  again: boolean;
  /** The last recovery could not read the history: a catch-up is still due. */
  behind: boolean;
}

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

  /**
   * @param idleResetMs a channel silent for this long may restart its epoch without loss (its
   *   record in Redis expired along with its history)
   * @param maxHeld messages held per channel while a gap waits to be filled: the history keeps no
   *   more (`historySize`), so past this many the gap is lost
   */
  constructor(
    private readonly io: SequencerIo,
    private readonly idleResetMs: number,
    private readonly maxHeld: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

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
      this.channels.set(channel, { ...position(message), lastSeenAt: this.now(), held: [], recovering: false, again: false, behind: false });
      this.io.deliver(channel, message.payload);
      return;
    }
    if (!state.recovering && this.apply(channel, state, message)) return;
    state.held.push(message);
    if (state.held.length > this.maxHeld) {
      // The history could not be read while more came than it keeps: the gap is gone; start over from what comes next.
      this.io.lost(channel);
      this.forget(channel);
    } else if (!state.recovering) {
      void this.recover(channel, state);
    }
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
    this.channels.set(channel, { epoch, offset, lastSeenAt: this.now(), held: [], recovering: false, again: false, behind: false });
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
    this.channels.delete(channel);
    this.notifyWaiters();
  }

  /**
   * Delivers a message that follows the channel's position; true when it was taken care of
   * (delivered, a duplicate, or a reported loss), false when it leaves a gap to fill first.
   */
  private apply(channel: string, state: ChannelState, message: SequencedMessage): boolean {
    if (state.epoch === NO_RECORD) state.epoch = message.epoch;
    if (message.epoch !== state.epoch) {
      const expiredWhileIdle = message.offset === 1 && this.now() - state.lastSeenAt >= this.idleResetMs;
      if (!expiredWhileIdle) this.io.lost(channel);
      this.moveTo(state, message);
      this.io.deliver(channel, message.payload);
      return true;
    }
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
        const history = await this.io.readHistory(channel, state.offset);
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
    if (!head) {
      if (state.epoch === NO_RECORD) return;
      // No record: it expired with a long-idle channel, or Redis lost its data.
      if (this.now() - state.lastSeenAt < this.idleResetMs) this.io.lost(channel);
      this.channels.delete(channel);
      this.drainAsNew(channel, state.held.splice(0));
      return;
    }
    if (state.epoch === NO_RECORD) state.epoch = head.epoch;
    if (head.epoch !== state.epoch || (head.offset > state.offset && messages[0]?.offset !== state.offset + 1)) {
      this.io.lost(channel);
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
   * Delivers what came during the recovery. A message that still leaves a gap came before the last
   * history read and is past its head: Redis never recorded it (it was not published through this
   * package), so nothing is missing before it and it is dropped.
   */
  private drainHeld(channel: string, state: ChannelState): void {
    for (const message of state.held.splice(0).sort(byOffset)) this.apply(channel, state, message);
  }

  /** Whether the held messages, in order, leave a gap after the channel's position. */
  private heldLeavesGap(state: ChannelState): boolean {
    let offset = state.offset;
    for (const message of [...state.held].sort(byOffset)) {
      if (message.epoch !== state.epoch || message.offset <= offset) continue;
      if (message.offset > offset + 1) return true;
      offset = message.offset;
    }
    return false;
  }

  private drainAsNew(channel: string, held: SequencedMessage[]): void {
    for (const message of held.sort(byOffset)) this.receive(channel, message);
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

function position({ epoch, offset }: SequencedMessage): { epoch: string; offset: number } {
  return { epoch, offset };
}

function byOffset(a: SequencedMessage, b: SequencedMessage): number {
  return a.offset - b.offset;
}
