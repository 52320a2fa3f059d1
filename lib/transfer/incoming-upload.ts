import type { MessageId, TransferId, UploadData } from '../protocol/index.js';

/**
 * An upload being received: its bytes go into one buffer of the announced size, allocated at the
 * first chunk and filled chunk by chunk (one copy of each chunk, no concatenation at the end).
 */
export class IncomingUpload {
  readonly transfer: TransferId;
  readonly event: string;
  readonly size: number;
  received = 0;
  private buffer: Buffer | undefined;

  /**
   * @param id the `$upload`'s id: the handler's answer goes to it
   * @param chunkBytes the payload of the client's chunks but the last, at this server's frame size and window (`chunkPayloadBytes`)
   */
  constructor(
    data: UploadData,
    readonly id: MessageId,
    readonly chunkBytes: number,
  ) {
    this.transfer = data.transfer;
    this.event = data.event;
    this.size = data.size;
  }

  get complete(): boolean {
    return this.received === this.size;
  }

  /**
   * Takes the buffer of the whole upload (once, at its first chunk); false when the process cannot
   * give it: more than one Buffer holds (`buffer.constants.MAX_LENGTH`), or out of memory.
   */
  allocate(): boolean {
    try {
      this.buffer ??= Buffer.allocUnsafe(this.size);
      return true;
    } catch {
      return false; // a RangeError, of Node's realm (not always the caller's)
    }
  }

  /** Copies a chunk in, once `allocate` succeeded; returns why it was refused, or undefined. */
  write(offset: number, bytes: Uint8Array): string | undefined {
    if (bytes.byteLength === 0) return 'a $chunk must carry at least one byte';
    if (offset !== this.received) return `expected the chunk at offset ${this.received}, got ${offset}`;
    if (offset + bytes.byteLength > this.size) return `the chunk ends past the transfer's size (${this.size} bytes)`;
    this.buffer!.set(bytes, offset);
    this.received += bytes.byteLength;
    return undefined;
  }

  /** The whole payload, once complete. */
  bytes(): Buffer {
    return this.buffer ?? Buffer.alloc(0);
  }
}
