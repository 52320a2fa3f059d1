import type { ErrorData, MessageId } from '../protocol/index.js';

/**
 * One application message on its way through Nest's handler pipeline. The adapter passes it as
 * the handler's third argument so that the error filter can record a failure for exactly this
 * message, however many messages of the connection are in flight.
 */
export class InboundMessage {
  failure: Omit<ErrorData, 'ref'> | undefined;

  constructor(
    readonly event: string,
    readonly data: unknown,
    readonly id: MessageId | undefined,
    /** Called once the message is answered (whatever the answer). */
    readonly onAnswered?: () => void,
  ) {}

  fail(error: Omit<ErrorData, 'ref'>): void {
    this.failure ??= error;
  }
}
