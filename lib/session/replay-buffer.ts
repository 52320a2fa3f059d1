import type { PreparedPush } from '../protocol/index.js';

export interface ReplayEntry {
  seq: number;
  push: PreparedPush;
}

/** The bytes held by all replay buffers of an instance together, against one bound. */
export class ReplayBudget {
  used = 0;

  /** @param relieve frees bytes elsewhere (detached sessions) once the bound is exceeded */
  constructor(
    readonly maxBytes: number,
    readonly relieve: () => void = () => undefined,
  ) {}

  get exceeded(): boolean {
    return this.used > this.maxBytes;
  }
}

/** Slots of a ring when it first holds something; it doubles as needed. */
const INITIAL_SLOTS = 16;
/** A ring this large or larger is let go once it is empty, rather than kept for the next pushes. */
const RELEASE_SLOTS = 128;
const NO_SLOTS: Array<PreparedPush | undefined> = [];

/**
 * The pushes a session may still have to replay, oldest first, bounded by count, by bytes, and
 * by the instance's budget for all buffers together. Seqs are consecutive, so the buffer is a
 * ring of references to the `PreparedPush`es (shared with every other recipient of the same
 * broadcast) and the seq of the oldest: nothing is allocated per push in the steady state.
 */
export class ReplayBuffer {
  /** A power-of-two number of slots, allocated with the first push. */
  private slots = NO_SLOTS;
  /** The slot of the oldest push. */
  private head = 0;
  private count = 0;
  private firstSeq = 0;
  private bytes = 0;
  private disposed = false;

  constructor(
    private readonly capacity: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly budget?: ReplayBudget,
  ) {}

  get size(): number {
    return this.count;
  }

  /** The bytes of the pushes held (frame sizes, as `PreparedPush.byteLength` estimates them). */
  get byteLength(): number {
    return this.bytes;
  }

  /**
   * Keeps a push numbered one after the newest one held (any number when empty), dropping the
   * oldest ones beyond the bounds. Ignored once disposed.
   */
  append(seq: number, push: PreparedPush): void {
    if (this.disposed) return;
    if (this.count === this.capacity) this.dropOldest();
    if (this.count === 0) this.firstSeq = seq;
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) & (this.slots.length - 1)] = push;
    this.count++;
    this.account(push.byteLength);
    while (this.bytes > this.maxBytes) this.dropOldest();
    if (this.budget?.exceeded) {
      this.budget.relieve();
      while (this.count > 0 && this.budget.exceeded) this.dropOldest();
    }
  }

  *entries(): IterableIterator<ReplayEntry> {
    for (let i = 0; i < this.count; i++) yield { seq: this.firstSeq + i, push: this.slot(i) };
  }

  /** Drops everything the client confirmed (cumulative ack). */
  trimThrough(seq: number): void {
    for (let n = Math.min(this.count, seq - this.firstSeq + 1); n > 0; n--) this.dropOldest();
    if (this.count === 0 && this.slots.length >= RELEASE_SLOTS) this.release();
  }

  /** Whether every push after `lastSeq` up to `currentSeq` is still here. */
  covers(lastSeq: number, currentSeq: number): boolean {
    if (lastSeq === currentSeq) return true;
    return this.count > 0 && this.firstSeq <= lastSeq + 1;
  }

  /** The push numbered `seq`, if it is still here. */
  at(seq: number): PreparedPush | undefined {
    const index = seq - this.firstSeq;
    return index >= 0 && index < this.count ? this.slot(index) : undefined;
  }

  /** Gives every byte back to the budget; the buffer keeps nothing from now on. */
  dispose(): void {
    this.disposed = true;
    this.account(-this.bytes);
    this.release();
  }

  private slot(index: number): PreparedPush {
    return this.slots[(this.head + index) & (this.slots.length - 1)]!;
  }

  private dropOldest(): void {
    const push = this.slots[this.head]!;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) & (this.slots.length - 1);
    this.count--;
    this.firstSeq++;
    this.account(-push.byteLength);
  }

  /** Doubles the ring, the oldest push first. */
  private grow(): void {
    const slots = new Array<PreparedPush | undefined>(Math.max(INITIAL_SLOTS, this.slots.length * 2));
    for (let i = 0; i < this.count; i++) slots[i] = this.slot(i);
    this.slots = slots;
    this.head = 0;
  }

  private release(): void {
    this.slots = NO_SLOTS;
    this.head = 0;
    this.count = 0;
  }

  private account(delta: number): void {
    this.bytes += delta;
    if (this.budget) this.budget.used += delta;
  }
}
