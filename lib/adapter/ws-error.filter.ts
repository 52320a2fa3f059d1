import { Catch, Logger, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import { encodeFrame, errorText, isInstance, serializeData, SystemEvent, UnserializableDataError } from '../protocol/index.js';
import { InboundMessage, ReliableSocket, reportUnserializable } from '../session/index.js';
import { mapException, type ErrorBody } from '../errors/index.js';

/**
 * Turns any exception thrown while handling a message into a `$error` frame with a code from
 * `ErrorCode`. Unexpected errors are logged and reported as `INTERNAL` without their details.
 */
@Catch()
export class WsErrorFilter implements WsExceptionFilter {
  private readonly logger = new Logger(WsErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const body = this.errorBody(exception);
    const message = host.getArgByIndex(2);
    if (message instanceof InboundMessage) {
      message.fail(body);
      return;
    }
    const client = host.switchToWs().getClient<ReliableSocket | { send?: (frame: string) => void }>();
    if (client instanceof ReliableSocket) client.sendError(body);
    else client.send?.(encodeFrame(SystemEvent.ERROR, serializeData(body)));
  }

  /** The `$error` body of an exception; a server fault is logged. */
  errorBody(exception: unknown): ErrorBody {
    const { body, log } = mapException(exception);
    if (isInstance(exception, UnserializableDataError)) reportUnserializable(exception);
    else if (log) this.logger.error(errorText(exception, { stack: true }));
    return body;
  }
}
