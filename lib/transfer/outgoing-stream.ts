import type { TransferId } from '../protocol/index.js';
import { MIN_FREE_PROGRESS_BYTES } from './transfer.options.js';

/** A stream to the client: the caller's bytes (not copied), how far they were sent and acknowledged. */
export class OutgoingStream {
  /** Bytes written to the connection, from the start. */
  sent = 0;
  /** The furthest byte written to any connection: no client can have more. */
  written = 0;
  /** Bytes the client acknowledged. */
  acked = 0;
  /** Whether `$stream` went out on the current connection. */
  announced = false;
  /** The payload of its chunks but the last (`chunkPayloadBytes`), set when it is announced on a connection. */
  chunkBytes = MIN_FREE_PROGRESS_BYTES;

  constructor(
    readonly transfer: TransferId,
    readonly event: string,
    readonly data: Uint8Array,
    readonly settle: { resolve(): void; reject(error: Error): void },
  ) {}

  get size(): number {
    return this.data.byteLength;
  }

  wrote(length: number): void {
    this.sent += length;
    if (this.sent > this.written) this.written = this.sent;
  }

  /** Takes a cumulative acknowledgement; false when it names bytes never written. */
  acknowledge(received: number): boolean {
    if (received > this.written) return false;
    if (received > this.acked) this.acked = received;
    if (this.sent < this.acked) this.sent = this.acked;
    return true;
  }
}
