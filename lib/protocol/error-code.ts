/** Machine-readable codes carried by `$error` frames. */
export const ErrorCode = {
  BAD_MESSAGE: 'BAD_MESSAGE',
  UNKNOWN_EVENT: 'UNKNOWN_EVENT',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  RATE_LIMITED: 'RATE_LIMITED',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  INTERNAL: 'INTERNAL',
  /** An upload (or a stream) larger than what the transfer budget has left. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The message of every `INTERNAL` error: internals never reach the client. */
export const INTERNAL_ERROR_MESSAGE = 'Internal error';
