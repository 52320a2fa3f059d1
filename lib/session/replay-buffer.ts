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

/**
 * The pushes a session may still have to replay, oldest first, bounded by count, by bytes, and
 * by the instance's budget for all buffers together. Entries share their `PreparedPush` with
 * every other recipient of the same broadcast.
 */
export class ReplayBuffer {
  private items: ReplayEntry[] = [];
  private head = 0;
  private bytes = 0;
  private disposed = false;

  constructor(
    private readonly capacity: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly budget?: ReplayBudget,
  ) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** The bytes of the pushes held (frame sizes, as `PreparedPush.byteLength` estimates them). */
  get byteLength(): number {
    return this.bytes;
  }

  /** Keeps a push, dropping the oldest ones beyond the bounds. Ignored once disposed. */
  append(seq: number, push: PreparedPush): void {
    if (this.disposed) return;
    this.items.push({ seq, push });
    this.account(push.byteLength);
    while (this.size > this.capacity || this.bytes > this.maxBytes) this.dropOldest();
    if (this.budget?.exceeded) {
      this.budget.relieve();
      while (this.size > 0 && this.budget.exceeded) this.dropOldest();
    }
    this.compact();
  }

  *entries(): IterableIterator<ReplayEntry> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i];
  }

  /** Drops everything the client confirmed (cumulative ack). */
  trimThrough(seq: number): void {
    while (this.size > 0 && this.items[this.head].seq <= seq) this.dropOldest();
    this.compact();
  }

  /** Whether every push after `lastSeq` up to `currentSeq` is still here. */
  covers(lastSeq: number, currentSeq: number): boolean {
    if (lastSeq === currentSeq) return true;
    const first = this.items[this.head];
    return first !== undefined && first.seq <= lastSeq + 1;
  }

  /** The push numbered `seq`, if it is still here (seqs are consecutive). */
  at(seq: number): PreparedPush | undefined {
    const first = this.items[this.head];
    if (!first) return undefined;
    return this.items[this.head + (seq - first.seq)]?.push;
  }

  /** Gives every byte back to the budget; the buffer keeps nothing from now on. */
  dispose(): void {
    this.disposed = true;
    this.account(-this.bytes);
    this.items = [];
    this.head = 0;
  }

  private dropOldest(): void {
    this.account(-this.items[this.head].push.byteLength);
    this.head++;
  }

  private account(delta: number): void {
    this.bytes += delta;
    if (this.budget) this.budget.used += delta;
  }

  private compact(): void {
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
