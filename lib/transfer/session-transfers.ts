import { randomBytes } from 'node:crypto';
import { ReliableWsException } from '../errors/index.js';
import {
  appEventNameError,
  chunkHeaderJson,
  chunkPayloadBytes,
  encodeBinaryHead,
  encodeFrame,
  ErrorCode,
  isAppEventName,
  MAX_TRANSFERS_PER_DIRECTION,
  serializeData,
  SystemEvent,
  transferKey,
  type MessageId,
  type TransferId,
  type OutgoingFrame,
  type StreamData,
  type UploadData,
} from '../protocol/index.js';
import { IncomingUpload } from './incoming-upload.js';
import { OutgoingStream } from './outgoing-stream.js';
import {
  DEFAULT_TRANSFER_LIMITS,
  isFreeProgress,
  TRANSFER_OVERHEAD_BYTES,
  type SharedByteBudget,
  type TransferLimits,
} from './transfer.options.js';

/** The session's live connection, as transfers use it. */
export interface TransferLink {
  readonly isOpen: boolean;
  write(frame: OutgoingFrame): void;
  /** Whether `bytes` more fit in the connection's send buffer, well below its bound. */
  hasRoomFor(bytes: number): boolean;
  /** The most `hasRoomFor` takes into an empty buffer: no frame may be larger, or it would wait forever. */
  readonly maxTransferWriteBytes: number;
  /** Calls back once the connection's send buffer has drained. */
  whenDrained(listener: () => void): void;
}

/** A stream that ended before the client had all of it: the session ended, or the client refused it. */
export class TransferAbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransferAbortedError';
  }
}

/**
 * Stream ids are unique across sessions and instances, not just within a session: a client keeps
 * the ids of its streams across a resume, and a session that moved to another instance (which
 * does not take its streams) must not start again at an id the client already holds.
 */
const STREAM_ID_PREFIX = `s${randomBytes(4).toString('hex')}.`;
let streamsStarted = 0;

export type UploadStart = { ok: true; upload: IncomingUpload } | { ok: false; code: ErrorCode; message: string };

/**
 * The chunked transfers of one session, both directions, under one byte budget (`maxTransferBytes`)
 * that also counts toward the instance's total (`resume.maxTotalBytes`). They live in the session,
 * not the connection, so that they continue after a resume.
 */
export class SessionTransfers {
  private readonly uploads = new Map<string, IncomingUpload>();
  private readonly streams = new Map<string, OutgoingStream>();
  /** Complete uploads whose handlers have not answered yet: their bytes still count. */
  private readonly answering = new Set<{ size: number }>();
  private held = 0;
  private link: TransferLink | undefined;
  private waitingForDrain = false;
  private disposed = false;

  constructor(
    readonly limits: TransferLimits = DEFAULT_TRANSFER_LIMITS,
    private readonly budget?: SharedByteBudget,
  ) {}

  /** Bytes reserved by the transfers in progress. */
  get heldBytes(): number {
    return this.held;
  }

  // ---- uploads (client → server)

  upload(transfer: MessageId): IncomingUpload | undefined {
    return this.uploads.get(transferKey(transfer));
  }

  /** Reserves the budget for an upload and starts it, or says why it cannot start. */
  startUpload(data: UploadData, id: MessageId): UploadStart {
    const key = transferKey(data.transfer);
    if (this.uploads.has(key)) return { ok: false, code: ErrorCode.BAD_MESSAGE, message: `transfer ${JSON.stringify(data.transfer)} is in progress` };
    if (this.uploads.size >= MAX_TRANSFERS_PER_DIRECTION) {
      return { ok: false, code: ErrorCode.PAYLOAD_TOO_LARGE, message: `at most ${MAX_TRANSFERS_PER_DIRECTION} uploads at once` };
    }
    if (!this.reserve(data.size)) {
      return { ok: false, code: ErrorCode.PAYLOAD_TOO_LARGE, message: this.tooLarge(data.size) };
    }
    const { maxFrameBytes, window } = this.limits;
    const upload = new IncomingUpload(data, id, chunkPayloadBytes(data.transfer, data.size, maxFrameBytes, window));
    this.uploads.set(key, upload);
    return { ok: true, upload };
  }

  /**
   * The upload is complete and goes to its handler: no longer in progress, but its bytes count
   * against the budgets until the returned function is called (the handler answered).
   */
  finishUpload(upload: IncomingUpload): () => void {
    this.uploads.delete(transferKey(upload.transfer));
    const held = { size: upload.size };
    this.answering.add(held);
    return () => {
      if (this.answering.delete(held)) this.release(held.size);
    };
  }

  /** The ids of the `$upload`s in progress. */
  uploadIds(): MessageId[] {
    return [...this.uploads.values()].map((upload) => upload.id);
  }

  /** Frees an upload; returns it, if it was in progress. */
  cancelUpload(transfer: MessageId): IncomingUpload | undefined {
    const key = transferKey(transfer);
    const upload = this.uploads.get(key);
    if (!upload) return undefined;
    this.uploads.delete(key);
    this.release(upload.size);
    return upload;
  }

  // ---- streams (server → client)

  /** The ids of the streams in progress. */
  streamIds(): TransferId[] {
    return [...this.streams.values()].map((stream) => stream.transfer);
  }

  /** Sends bytes as a stream of chunks; resolves once the client acknowledged all of them. */
  stream(event: string, data: Uint8Array): Promise<void> {
    if (!isAppEventName(event)) return Promise.reject(appEventNameError(event));
    if (this.disposed) return Promise.reject(new TransferAbortedError('the session has ended'));
    if (this.streams.size >= MAX_TRANSFERS_PER_DIRECTION) {
      return Promise.reject(payloadTooLarge(`at most ${MAX_TRANSFERS_PER_DIRECTION} streams at once per session`));
    }
    if (!this.reserve(data.byteLength)) {
      return Promise.reject(this.disposed ? new TransferAbortedError('the session has ended') : payloadTooLarge(this.tooLarge(data.byteLength)));
    }
    return new Promise((resolve, reject) => {
      const transfer = `${STREAM_ID_PREFIX}${++streamsStarted}`;
      this.streams.set(transferKey(transfer), new OutgoingStream(transfer, event, data, { resolve, reject }));
      this.pump();
    });
  }

  /**
   * A client's `$chunk-ack` of a stream: `'beyond'` when it names bytes never sent,
   * `'unknown'` for no stream in progress (one just completed, say), `'small'` when it moves the
   * stream on by less than `isFreeProgress` asks (1 KiB, or one of its chunks where they are
   * smaller) without completing it (nothing, say).
   */
  acknowledgeStream(transfer: MessageId, received: number): 'ok' | 'small' | 'unknown' | 'beyond' {
    const key = transferKey(transfer);
    const stream = this.streams.get(key);
    if (!stream) return 'unknown';
    const before = stream.acked;
    if (!stream.acknowledge(received)) return 'beyond';
    const complete = stream.acked === stream.size;
    if (complete) {
      this.dropStream(key, stream);
      stream.settle.resolve();
    }
    this.pump();
    return complete || isFreeProgress(stream.acked - before, stream.chunkBytes) ? 'ok' : 'small';
  }

  /** The client refused a stream (`$cancel` with direction `down`). */
  cancelStream(transfer: MessageId): void {
    const key = transferKey(transfer);
    const stream = this.streams.get(key);
    if (!stream) return;
    this.dropStream(key, stream);
    stream.settle.reject(new TransferAbortedError(`the client refused the stream of "${stream.event}"`));
  }

  private dropStream(key: string, stream: OutgoingStream): void {
    this.streams.delete(key);
    this.release(stream.size);
  }

  /** The session's connection, live with its `$ready` sent: streams (re)start from the last acknowledgement. */
  attach(link: TransferLink): void {
    this.link = link;
    this.waitingForDrain = false;
    for (const stream of this.streams.values()) stream.announced = false;
    this.pump();
  }

  /** The connection is gone (or taken over): streams wait for the next one. */
  detach(): void {
    this.link = undefined;
    this.waitingForDrain = false;
  }

  /**
   * Writes what the streams may send: whole chunks (see `chunkPayloadBytes`), per stream at most
   * `window` bytes beyond the client's last acknowledgement, in frames no larger than the
   * connection's buffer takes for transfers, and only while that buffer has room (else after a drain).
   */
  private pump(): void {
    const link = this.link;
    if (!link || this.waitingForDrain || !link.isOpen) return;
    const { window } = this.limits;
    const maxFrameBytes = Math.min(this.limits.maxFrameBytes, link.maxTransferWriteBytes);
    for (const stream of this.streams.values()) {
      if (!stream.announced) {
        stream.announced = true;
        stream.sent = stream.acked;
        stream.chunkBytes = chunkPayloadBytes(stream.transfer, stream.size, maxFrameBytes, window);
        const announcement: StreamData = { transfer: stream.transfer, event: stream.event, size: stream.size, offset: stream.acked };
        link.write(encodeFrame(SystemEvent.STREAM, serializeData(announcement)));
      }
      while (stream.sent < stream.size) {
        const length = Math.min(stream.chunkBytes, stream.size - stream.sent);
        if (stream.sent - stream.acked + length > window) break;
        const head = encodeBinaryHead(chunkHeaderJson(stream.transfer, stream.sent));
        if (!link.hasRoomFor(head.byteLength + length)) {
          this.waitingForDrain = true;
          link.whenDrained(() => {
            if (this.link !== link) return;
            this.waitingForDrain = false;
            this.pump();
          });
          return;
        }
        link.write({ head, payload: stream.data.subarray(stream.sent, stream.sent + length) });
        stream.wrote(length);
      }
    }
  }

  // ---- budget

  /** Ends every transfer: streams reject, every byte goes back to the budgets. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.link = undefined;
    const streams = [...this.streams.values()];
    for (const upload of [...this.uploads.values(), ...this.answering]) this.release(upload.size);
    for (const stream of streams) this.release(stream.size);
    this.streams.clear();
    this.uploads.clear();
    this.answering.clear();
    for (const stream of streams) stream.settle.reject(new TransferAbortedError(`the session ended before the stream of "${stream.event}" was delivered`));
  }

  /** Takes room for a transfer of `size` bytes, in the session's budget and the instance's; false when either is short. */
  private reserve(size: number): boolean {
    if (this.disposed || this.held + size > this.limits.maxTransferBytes) return false;
    this.account(size);
    if (this.budget?.exceeded) {
      this.budget.relieve();
      // The relief may have evicted this very session: its dispose gave back only the transfers it held.
      if (this.disposed || this.budget.exceeded) {
        this.account(-size);
        return false;
      }
    }
    return true;
  }

  private release(size: number): void {
    this.account(-size);
  }

  /** Payload bytes count toward `maxTransferBytes`; the bookkeeping of each transfer toward the instance's total too. */
  private account(size: number): void {
    this.held += size;
    if (this.budget) this.budget.used += size + Math.sign(size) * TRANSFER_OVERHEAD_BYTES;
  }

  private tooLarge(size: number): string {
    return `${size} bytes exceed what the transfer budget has left (${Math.max(0, this.limits.maxTransferBytes - this.held)} of maxTransferBytes ${this.limits.maxTransferBytes})`;
  }
}

function payloadTooLarge(message: string): ReliableWsException {
  return new ReliableWsException({ code: ErrorCode.PAYLOAD_TOO_LARGE, message });
}
