/** What bounds the chunked transfers of a session. */
export interface TransferLimits {
  /** Bytes of transfers in progress per session, uploads and streams together. */
  maxTransferBytes: number;
  /** Bytes a sender may have in flight beyond the receiver's last acknowledgement (`backpressure.maxBufferedBytes`). */
  window: number;
  /** Largest frame, header included (`maxPayloadBytes`). */
  maxFrameBytes: number;
}

export const DEFAULT_MAX_TRANSFER_BYTES = 16 * 1024 * 1024;

export const DEFAULT_TRANSFER_LIMITS: TransferLimits = {
  maxTransferBytes: DEFAULT_MAX_TRANSFER_BYTES,
  window: 1024 * 1024,
  maxFrameBytes: 65536,
};

/**
 * What a `$chunk` or `$chunk-ack` must move its transfer on by to be free of the rate limit,
 * unless it completes the transfer: whole chunks do, a flood of 1-byte steps does not.
 */
export const MIN_FREE_PROGRESS_BYTES = 1024;

/**
 * Whether a chunk or acknowledgement that moves its transfer on by `step` bytes is free: by
 * `MIN_FREE_PROGRESS_BYTES`, or by a whole chunk where the transfer's chunks (`chunkBytes`) are smaller.
 */
export function isFreeProgress(step: number, chunkBytes: number): boolean {
  return step >= Math.min(MIN_FREE_PROGRESS_BYTES, chunkBytes);
}

/** What the bookkeeping of one transfer costs beside its bytes. */
export const TRANSFER_OVERHEAD_BYTES = 256;

/** The bytes all sessions of an instance hold (`resume.maxTotalBytes`), shared with the replay buffers. */
export interface SharedByteBudget {
  used: number;
  readonly exceeded: boolean;
  /** Frees bytes elsewhere (evicts detached sessions). */
  relieve(): void;
}
