import type { PreparedPush } from '../protocol/index.js';

export interface ReplayEntry {
  seq: number;
  push: PreparedPush;
}

/**
 * The pushes a session may still have to replay, oldest first, bounded by count. Entries share
 * their `PreparedPush` with every other recipient of the same broadcast.
 */
export class ReplayBuffer {
  private items: ReplayEntry[] = [];
  private head = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  append(seq: number, push: PreparedPush): void {
    this.items.push({ seq, push });
    if (this.size > this.capacity) this.head++;
    this.compact();
  }

  *entries(): IterableIterator<ReplayEntry> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i];
  }

  /** Drops everything the client confirmed (cumulative ack). */
  trimThrough(seq: number): void {
    while (this.head < this.items.length && this.items[this.head].seq <= seq) this.head++;
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

  private compact(): void {
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
