import { HttpException, HttpStatus } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { ErrorCode, INTERNAL_ERROR_MESSAGE, isInstance, UnserializableDataError } from '../protocol/index.js';
import { ReliableWsException, type ErrorBody } from './reliable-ws.exception.js';
import {
  detailsFromValidationMessages,
  flattenValidationErrors,
  isValidationErrorList,
  validationFailure,
} from './validation-details.js';

const INTERNAL_ERROR: ErrorBody = { code: ErrorCode.INTERNAL, message: INTERNAL_ERROR_MESSAGE };

/** What Nest's guards throw when `canActivate` returns false. */
const GUARD_REFUSAL_MESSAGE = 'Forbidden resource';

export interface MappedError {
  body: ErrorBody;
  /** Whether the failure is a server fault worth logging (internals never reach the client). */
  log: boolean;
}

/** Turns anything a handler, guard, pipe or interceptor threw into the `$error` the client gets. */
export function mapException(exception: unknown): MappedError {
  // `isInstance`: a thrown revoked Proxy makes `instanceof` itself throw.
  if (isInstance(exception, ReliableWsException)) return { body: exception.body, log: false };
  if (isInstance(exception, WsException)) return { body: fromWsException(exception), log: false };
  if (isInstance(exception, HttpException)) return fromHttpException(exception);
  // Logged once per event by the caller, without the value.
  if (isInstance(exception, UnserializableDataError)) return { body: INTERNAL_ERROR, log: false };
  return { body: INTERNAL_ERROR, log: true };
}

function fromWsException(exception: WsException): ErrorBody {
  const error = exception.getError();
  if (typeof error === 'string') {
    const code = error === GUARD_REFUSAL_MESSAGE ? ErrorCode.FORBIDDEN : ErrorCode.INTERNAL;
    return { code, message: error };
  }
  const { code, message, details } = error as Record<string, unknown>;
  return {
    code: typeof code === 'string' ? code : ErrorCode.INTERNAL,
    message: typeof message === 'string' ? message : exception.message,
    ...(details === undefined ? {} : { details }),
  };
}

const codeByStatus: Partial<Record<number, ErrorCode>> = {
  [HttpStatus.UNAUTHORIZED]: ErrorCode.UNAUTHENTICATED,
  [HttpStatus.FORBIDDEN]: ErrorCode.FORBIDDEN,
  [HttpStatus.TOO_MANY_REQUESTS]: ErrorCode.RATE_LIMITED,
};

function fromHttpException(exception: HttpException): MappedError {
  const status = exception.getStatus();
  if (status >= 500) {
    return { body: INTERNAL_ERROR, log: true };
  }
  const response = exception.getResponse();
  const message = typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
  if (status === HttpStatus.BAD_REQUEST && Array.isArray(message)) {
    const details = isValidationErrorList(message)
      ? flattenValidationErrors(message)
      : detailsFromValidationMessages(message.map(String));
    return { body: { code: ErrorCode.VALIDATION_FAILED, ...validationFailure(details) }, log: false };
  }
  const code = codeByStatus[status] ?? (status === HttpStatus.BAD_REQUEST ? ErrorCode.BAD_MESSAGE : ErrorCode.INTERNAL);
  const text = typeof message === 'string' ? message : exception.message;
  return { body: { code, message: text }, log: false };
}
