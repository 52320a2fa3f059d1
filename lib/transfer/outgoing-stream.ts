import type { TransferId } from '../protocol/index.js';

/** A stream to the client: the caller's bytes (not copied), how far they were sent and acknowledged. */
export class OutgoingStream {
  /** Bytes written to the connection, from the start. */
  sent = 0;
  /** Bytes the client acknowledged. */
  acked = 0;
  /** Whether `$stream` went out on the current connection. */
  announced = false;

  constructor(
    readonly transfer: TransferId,
    readonly event: string,
    readonly data: Uint8Array,
    readonly settle: { resolve(): void; reject(error: Error): void },
  ) {}

  get size(): number {
    return this.data.byteLength;
  }

  /** Takes a cumulative acknowledgement; false when it names bytes beyond the stream. */
  acknowledge(received: number): boolean {
    if (received > this.size) return false;
    if (received > this.acked) this.acked = received;
    if (this.sent < this.acked) this.sent = this.acked;
    return true;
  }
}
