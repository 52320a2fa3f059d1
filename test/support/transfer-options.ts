import type { ReliableWsOptions } from '../../lib/index.js';

export const MiB = 1024 * 1024;

/** The transfer window of the transfer specs: `backpressure.maxBufferedBytes`. */
export const TRANSFER_WINDOW = 256 * 1024;

/** Small frames (32 KiB chunks), a quick heartbeat and long-lived sessions, for transfers through cuts. */
export const TRANSFER_OPTIONS: ReliableWsOptions = {
  allowedOrigins: '*',
  rateLimit: false,
  heartbeat: { intervalMs: 1000, timeoutMs: 2000 },
  maxPayloadBytes: 32 * 1024,
  backpressure: { maxBufferedBytes: TRANSFER_WINDOW },
  resume: { ttlMs: 30_000 },
};
