import { CloseCode } from '../protocol/index.js';

/** RFC 6455 §7.4.1 codes `ws` closes with on its own, which the package never sends itself. */
const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;

const CLOSE_CODE_BY_WS_ERROR: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: INVALID_PAYLOAD,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.POLICY_VIOLATION,
};

/**
 * The code `ws` closed a connection with over a frame it could not take (from its error's `code`),
 * or undefined for an error that closes nothing (a socket error).
 */
export function wsErrorCloseCode(error: Error): number | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  return CLOSE_CODE_BY_WS_ERROR[code] ?? PROTOCOL_ERROR;
}
