import { encodeBinaryHead } from './binary-frame.js';
import { isAppEventName, isCount, isRecord, isValidMessageId, type MessageId } from './message-fields.js';

/**
 * Chunked transfer of payloads larger than one frame, both ways. A transfer id is chosen by the
 * side that sends the bytes (the client for uploads, the server for streams), unique per session
 * and direction; it has the shape of a message id.
 *
 * Upload (client → server): `$upload { transfer, event, size }` with an `id`; the server accepts
 * with `$chunk-ack { transfer, received, window, maxFrameBytes }` (received: what it already
 * has, for a resume) or answers the id with `$error`. The client then sends binary `$chunk`
 * frames from `received` on, never more than `window` bytes beyond the last `$chunk-ack`; once
 * every byte is in, the handler gets one message `{ event, data }` and its answer goes to the
 * `$upload`'s id. `$cancel { transfer }` gives up.
 *
 * Stream (server → client): `$stream { transfer, event, size, offset }`, then binary `$chunk`
 * frames from `offset`; the client acknowledges with `$chunk-ack { transfer, received }` and may
 * refuse with `$cancel { transfer, direction: 'down' }`. After a resume the server announces
 * the stream again from the last acknowledged offset.
 *
 * Both senders write whole chunks (`chunkPayloadBytes`, the last one shorter), each once the
 * window has room for all of it, and both receivers acknowledge every chunk: an acknowledgement
 * frees a whole chunk, and a transfer never breaks into small chunks.
 */
export type TransferId = MessageId;

/** Transfers a session may have in progress at once, per direction: the server takes no more uploads, the client no more streams. */
export const MAX_TRANSFERS_PER_DIRECTION = 16;

export interface UploadData {
  transfer: TransferId;
  event: string;
  size: number;
}

export interface StreamData {
  transfer: TransferId;
  event: string;
  size: number;
  /** Where the chunks that follow start: 0, or the client's last acknowledgement after a resume. */
  offset: number;
}

export interface ChunkAckData {
  transfer: TransferId;
  /** Bytes received so far, from the start (cumulative). */
  received: number;
  /** With the acceptance of an upload: bytes the client may send beyond `received` before the next ack. */
  window?: number;
  /** With the acceptance of an upload: the largest frame the server takes (header included). */
  maxFrameBytes?: number;
}

export interface CancelData {
  transfer: TransferId;
  /** `'up'` (default): the client's upload; `'down'`: a stream from the server the client refuses. */
  direction?: TransferDirection;
}

export type TransferDirection = 'up' | 'down';

/** The client's local `$progress` event. */
export interface TransferProgress {
  event: string;
  transfer: TransferId;
  received: number;
  total: number;
  direction: TransferDirection;
}

/** The header of a `$chunk` frame. */
export interface ChunkHeader {
  transfer: TransferId;
  offset: number;
}

export const isValidTransferId = isValidMessageId;

/** `$upload` data with the right shape (an application event name, a size in bytes), else undefined. */
export function uploadDataOf(data: unknown): UploadData | undefined {
  if (!isRecord(data)) return undefined;
  const { transfer, event, size } = data;
  if (!isValidTransferId(transfer) || !isAppEventName(event) || !isCount(size)) return undefined;
  return { transfer, event, size };
}

export function streamDataOf(data: unknown): StreamData | undefined {
  if (!isRecord(data)) return undefined;
  const { transfer, event, size, offset } = data;
  if (!isValidTransferId(transfer) || typeof event !== 'string' || !isCount(size) || !isCount(offset) || offset > size) {
    return undefined;
  }
  return { transfer, event, size, offset };
}

export function chunkAckDataOf(data: unknown): ChunkAckData | undefined {
  if (!isRecord(data)) return undefined;
  const { transfer, received, window, maxFrameBytes } = data;
  if (!isValidTransferId(transfer) || !isCount(received)) return undefined;
  const ack: ChunkAckData = { transfer, received };
  if (isCount(window)) ack.window = window;
  if (isCount(maxFrameBytes)) ack.maxFrameBytes = maxFrameBytes;
  return ack;
}

export function cancelDataOf(data: unknown): CancelData | undefined {
  if (!isRecord(data)) return undefined;
  const { transfer, direction } = data;
  if (!isValidTransferId(transfer) || (direction !== undefined && direction !== 'up' && direction !== 'down')) return undefined;
  return { transfer, direction: direction ?? 'up' };
}

export function chunkHeaderOf(header: Record<string, unknown>): ChunkHeader | undefined {
  const { transfer, offset } = header;
  return isValidTransferId(transfer) && isCount(offset) ? { transfer, offset } : undefined;
}

/** The JSON header of a `$chunk` frame. */
export function chunkHeaderJson(transfer: TransferId, offset: number): string {
  return `{"event":"$chunk","transfer":${JSON.stringify(transfer)},"offset":${offset}}`;
}

/**
 * The payload of every chunk of a transfer but its last: as much as fits in a frame of
 * `maxFrameBytes` beside the longest header of the transfer's chunks (its offsets grow), and no
 * more than `window`; at least 1 byte, whatever frame size a peer asks for.
 */
export function chunkPayloadBytes(transfer: TransferId, size: number, maxFrameBytes: number, window: number): number {
  const longestHead = encodeBinaryHead(chunkHeaderJson(transfer, size)).byteLength;
  return Math.max(1, Math.min(maxFrameBytes - longestHead, window));
}

/** A key for maps of transfers: `1` and `"1"` are different transfer ids. */
export function transferKey(transfer: TransferId): string {
  return typeof transfer === 'number' ? `n${transfer}` : `s${transfer}`;
}
