import {
  chunkHeaderOf,
  ErrorCode,
  isAppEventName,
  MAX_TRANSFERS_PER_DIRECTION,
  streamDataOf,
  SystemEvent,
  transferKey,
  type ErrorData,
  type StreamData,
  type TransferId,
  type TransferProgress,
} from '../protocol/index.js';

/** What the receiver needs from its connection. */
export interface StreamReceiverWire {
  /** Sends a `$`-event as a text frame, if the connection is open. */
  sendSystem(event: string, data: unknown): void;
  emit(event: string, payload: unknown): void;
}

interface IncomingStream {
  transfer: TransferId;
  event: string;
  size: number;
  received: number;
  bytes: Uint8Array | undefined;
}

/** Streams just delivered, remembered so that a re-announced one (its last ack was lost) is acknowledged, not taken twice. */
const FINISHED_REMEMBERED = 64;

export const DEFAULT_CLIENT_MAX_TRANSFER_BYTES = 16 * 1024 * 1024;

/**
 * Reassembles streams from the server (`$stream` then binary `$chunk` frames) into one buffer
 * each, acknowledging every chunk, and emits the event once with the whole `Uint8Array`.
 * Partial streams survive a resume (the server continues from the acknowledged offset).
 */
export class StreamReceiver {
  private readonly streams = new Map<string, IncomingStream>();
  private readonly finished = new Map<string, number>();
  private held = 0;

  constructor(
    private readonly wire: StreamReceiverWire,
    private readonly maxTransferBytes = DEFAULT_CLIENT_MAX_TRANSFER_BYTES,
  ) {}

  /** `$stream { transfer, event, size, offset }`: a new stream, or one the server continues after a resume. */
  announce(data: unknown): void {
    const announced = streamDataOf(data);
    if (!announced) return;
    const key = transferKey(announced.transfer);
    const known = this.streams.get(key);
    if (known) return this.ack(known);
    const finishedSize = this.finished.get(key);
    if (finishedSize !== undefined) return this.sendAck(announced.transfer, finishedSize);
    if (announced.offset > 0) return this.refuse(announced.transfer); // its start is gone (a new client): it cannot be completed
    if (!isAppEventName(announced.event)) return this.refuse(announced.transfer); // only an application's name: none may pose as a `$` event
    if (this.streams.size >= MAX_TRANSFERS_PER_DIRECTION) {
      return this.refuseTooLarge(announced, `a stream beyond ${MAX_TRANSFERS_PER_DIRECTION} at once`);
    }
    if (announced.size > this.maxTransferBytes - this.held) {
      return this.refuseTooLarge(
        announced,
        `a stream of ${announced.size} bytes exceeds the client's maxTransferBytes (${this.maxTransferBytes}, ${this.held} in use)`,
      );
    }
    const stream: IncomingStream = { ...announced, received: 0, bytes: undefined };
    this.streams.set(key, stream);
    this.held += stream.size;
    this.ack(stream);
    if (stream.size === 0) this.complete(key, stream);
  }

  /** A binary `$chunk` frame; a part already received (sent again after a resume) is skipped. */
  chunk(header: Record<string, unknown>, payload: Uint8Array): void {
    const chunk = chunkHeaderOf(header);
    const key = chunk && transferKey(chunk.transfer);
    const stream = key === undefined ? undefined : this.streams.get(key);
    if (!chunk || !stream || chunk.offset > stream.received) return;
    const end = chunk.offset + payload.byteLength;
    if (end > stream.size || end <= stream.received) return;
    stream.bytes ??= allocated(stream.size);
    if (!stream.bytes) {
      this.drop(key!, stream);
      return this.refuseTooLarge(stream, `a stream of ${stream.size} bytes is more than this client can allocate`);
    }
    stream.bytes.set(payload.subarray(stream.received - chunk.offset), stream.received);
    stream.received = end;
    const progress: TransferProgress = { event: stream.event, transfer: stream.transfer, received: end, total: stream.size, direction: 'down' };
    this.wire.emit('$progress', progress);
    this.ack(stream);
    if (end === stream.size) this.complete(key!, stream);
  }

  /**
   * A resumed session: the server continues these streams; any other partial one it no longer
   * has (the session moved to another instance) and will never complete.
   */
  keepOnly(continued: readonly TransferId[]): void {
    const keys = new Set(continued.map(transferKey));
    for (const [key, stream] of this.streams) {
      if (!keys.has(key)) this.drop(key, stream);
    }
  }

  /** A new session: the server forgot its streams. */
  reset(): void {
    this.streams.clear();
    this.finished.clear();
    this.held = 0;
  }

  private complete(key: string, stream: IncomingStream): void {
    this.drop(key, stream);
    this.finished.set(key, stream.size);
    if (this.finished.size > FINISHED_REMEMBERED) this.finished.delete(this.finished.keys().next().value as string);
    this.wire.emit(stream.event, stream.bytes ?? new Uint8Array(0));
  }

  private drop(key: string, stream: IncomingStream): void {
    this.streams.delete(key);
    this.held -= stream.size;
  }

  private ack(stream: IncomingStream): void {
    this.sendAck(stream.transfer, stream.received);
  }

  private sendAck(transfer: TransferId, received: number): void {
    this.wire.sendSystem(SystemEvent.CHUNK_ACK, { transfer, received });
  }

  /** Refuses a stream the client has no room for and says so with a `$error` event. */
  private refuseTooLarge(announced: Pick<StreamData, 'transfer' | 'event' | 'size'>, message: string): void {
    this.refuse(announced.transfer);
    const error: ErrorData = {
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message,
      details: { transfer: announced.transfer, event: announced.event, size: announced.size },
    };
    this.wire.emit(SystemEvent.ERROR, error);
  }

  private refuse(transfer: TransferId): void {
    this.wire.sendSystem(SystemEvent.CANCEL, { transfer, direction: 'down' });
  }
}

/** A buffer for a whole stream; undefined when the runtime cannot give one that large. */
function allocated(size: number): Uint8Array | undefined {
  try {
    return new Uint8Array(size);
  } catch {
    return undefined; // a RangeError
  }
}
