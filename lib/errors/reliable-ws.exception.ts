import { WsException } from '@nestjs/websockets';
import type { ErrorData } from '../protocol/index.js';

export type ErrorBody = Omit<ErrorData, 'ref'>;

/** A `WsException` that carries its own `$error` code, e.g. `RATE_LIMITED` with `retryAfterMs`. */
export class ReliableWsException extends WsException {
  constructor(readonly body: ErrorBody) {
    super(body);
  }
}
