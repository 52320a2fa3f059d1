/** `send()` or `request()` would overflow the offline queue (count or bytes). */
export class QueueFullError extends Error {
  constructor(readonly limit: 'maxMessages' | 'maxBytes', readonly value: number) {
    super(`ReliableWsClient: the send queue is full (queue.${limit} = ${value})`);
    this.name = 'QueueFullError';
  }
}

/** Client-side reasons a request fails, next to the server's `ErrorCode`s. */
export const ClientErrorCode = {
  TIMEOUT: 'TIMEOUT',
  SESSION_LOST: 'SESSION_LOST',
  /**
   * The server handled the request before (a retry after a reconnect) but no longer keeps its
   * answer (`$ack { duplicate: true }`): it was older than the answers kept, or its handler was
   * still running when the session moved to another instance.
   */
  ANSWER_LOST: 'ANSWER_LOST',
  CLOSED: 'CLOSED',
  /** An upload cancelled through its `signal` (or by its `timeoutMs`, which rejects with `TIMEOUT`). */
  ABORTED: 'ABORTED',
} as const;

/** A `request()` that failed: the server's `$error` code, or a `ClientErrorCode`. */
export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** What a request that got no answer in time rejects with. */
export function requestTimeoutError(event: string, timeoutMs: number): RequestError {
  return new RequestError(ClientErrorCode.TIMEOUT, `no answer to "${event}" within ${timeoutMs} ms`);
}
