/** WebSocket close codes used by the server and understood by the client. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  UNAUTHORIZED: 4001,
  FORBIDDEN: 4003,
  AUTH_TIMEOUT: 4008,
  SLOW_CONSUMER: 4009,
  RATE_LIMITED: 4029,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The reason text sent with each close code. */
export const CloseReason: Readonly<Record<CloseCode, string>> = {
  [CloseCode.NORMAL]: 'normal closure',
  [CloseCode.GOING_AWAY]: 'going away',
  [CloseCode.POLICY_VIOLATION]: 'policy violation',
  [CloseCode.MESSAGE_TOO_BIG]: 'message too big',
  [CloseCode.INTERNAL_ERROR]: 'internal error',
  [CloseCode.SERVICE_RESTART]: 'service restart',
  [CloseCode.UNAUTHORIZED]: 'unauthorized',
  [CloseCode.FORBIDDEN]: 'forbidden',
  [CloseCode.AUTH_TIMEOUT]: 'auth timeout',
  [CloseCode.SLOW_CONSUMER]: 'slow consumer',
  [CloseCode.RATE_LIMITED]: 'rate limited',
};
