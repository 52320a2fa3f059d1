import { pushFrame, type PreparedPush } from '../protocol/index.js';

interface Entry {
  seq: number;
  push: PreparedPush;
}

/**
 * The pushes a session may still have to replay, oldest first, bounded by count. Entries share
 * their `PreparedPush` with every other recipient of the same broadcast.
 */
export class ReplayBuffer {
  private entries: Entry[] = [];
  private head = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  append(seq: number, push: PreparedPush): void {
    this.entries.push({ seq, push });
    if (this.size > this.capacity) this.head++;
    this.compact();
  }

  /** Drops everything the client confirmed (cumulative ack). */
  trimThrough(seq: number): void {
    while (this.head < this.entries.length && this.entries[this.head].seq <= seq) this.head++;
    this.compact();
  }

  /**
   * The frames after `lastSeq`, in order, or undefined when the buffer no longer holds all of
   * them (the client missed pushes that cannot be replayed).
   */
  framesAfter(lastSeq: number, currentSeq: number): string[] | undefined {
    if (lastSeq === currentSeq) return [];
    const first = this.entries[this.head];
    if (!first || first.seq > lastSeq + 1) return undefined;
    const frames: string[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const { seq, push } = this.entries[i];
      if (seq > lastSeq) frames.push(pushFrame(push, seq));
    }
    return frames;
  }

  private compact(): void {
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
