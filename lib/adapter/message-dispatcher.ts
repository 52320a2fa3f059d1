import { Logger } from '@nestjs/common';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { defaultIfEmpty, isObservable, take, type Observable } from 'rxjs';
import { ErrorCode, errorText, INTERNAL_ERROR_MESSAGE, isInstance, UnserializableDataError, type ClientMessage } from '../protocol/index.js';
import { InboundMessage, reportUnserializable, type ReliableSocket } from '../session/index.js';
import type { DirectHandler, DirectHandlers } from './direct-handlers.js';

type Transform = (data: unknown) => Observable<unknown>;
type NestCallback = (data: unknown, message: InboundMessage) => unknown;

/** A handler bound to one connection by Nest, or one gateway's direct handler that every connection shares. */
type BoundHandler =
  | { direct: DirectHandler }
  | { direct: undefined; callback: NestCallback; transform: Transform };

/** Routes application messages of each connection to the gateway handlers bound to it. */
export class MessageDispatcher {
  private readonly logger = new Logger('ReliableWsAdapter');
  private readonly handlers = new WeakMap<ReliableSocket, Map<string, BoundHandler>>();
  /** The table of each gateway whose handlers are all direct, shared by its connections. */
  private readonly sharedTables = new WeakMap<Map<string, DirectHandler>, Map<string, BoundHandler>>();

  constructor(private readonly directHandlers: DirectHandlers) {}

  /**
   * Binds one gateway's handlers to a connection. Gateways on the same path share a server, so a
   * connection gets one bind per gateway there (with events of their own: `assertOneHandlerPerEvent`).
   */
  bind(socket: ReliableSocket, handlers: MessageMappingProperties[], transform: Transform): void {
    const direct = this.directHandlers.of(handlers.map(({ message }) => String(message)));
    const table = direct?.size === handlers.length ? this.sharedTableOf(direct) : tableOf(handlers, transform, direct);
    const bound = this.handlers.get(socket);
    this.handlers.set(socket, bound ? new Map([...table, ...bound]) : table);
  }

  /** Whether the connection has a handler for the event. */
  handles(socket: ReliableSocket, event: string): boolean {
    return this.handlers.get(socket)?.has(event) ?? false;
  }

  /** Runs the handler of the message's event, then `onAnswered` once it is answered; false when the connection has none for it. */
  dispatch(socket: ReliableSocket, { event, data, id }: ClientMessage, onAnswered?: () => void): boolean {
    const handler = this.handlers.get(socket)?.get(event);
    if (!handler) return false;
    const inbound = new InboundMessage(event, data, id, onAnswered);
    // A direct handler's failures have met no exception filter yet; Nest's pipeline's have.
    const direct = handler.direct !== undefined;
    let result: unknown;
    try {
      result = handler.direct ? handler.direct(socket, data, inbound) : handler.transform(handler.callback(data, inbound));
    } catch (error) {
      this.failWith(socket, inbound, error, direct);
      return true;
    }
    this.settle(socket, inbound, result, direct);
    return true;
  }

  private sharedTableOf(direct: Map<string, DirectHandler>): Map<string, BoundHandler> {
    let table = this.sharedTables.get(direct);
    if (!table) {
      table = new Map([...direct].map(([event, handler]) => [event, { direct: handler }]));
      this.sharedTables.set(direct, table);
    }
    return table;
  }

  /** Answers with a handler's result: a value, what a promise resolves to, an observable's first value. */
  private settle(socket: ReliableSocket, inbound: InboundMessage, result: unknown, direct: boolean): void {
    try {
      if (isObservable(result)) return this.subscribe(socket, inbound, result, direct);
      if (isThenable(result)) {
        Promise.resolve(result).then(
          (value: unknown) => this.settle(socket, inbound, value, direct),
          (error: unknown) => this.failWith(socket, inbound, error, direct),
        );
        return;
      }
    } catch (error) {
      // Looking at the result threw (a getter of `then` or `lift`, a revoked Proxy): a failed handler.
      return this.failWith(socket, inbound, error, direct);
    }
    this.answer(socket, inbound, result);
  }

  /** Answers an observable's first value; one still waiting when the session ends is unsubscribed. */
  private subscribe(socket: ReliableSocket, inbound: InboundMessage, result: Observable<unknown>, direct: boolean): void {
    const subscription = result.pipe(take(1), defaultIfEmpty(undefined)).subscribe({
      next: (value) => this.answer(socket, inbound, value),
      error: (error: unknown) => this.failWith(socket, inbound, error, direct),
    });
    if (!subscription.closed && socket.hasSession) socket.session.endsWith(subscription);
  }

  private failWith(socket: ReliableSocket, inbound: InboundMessage, error: unknown, direct: boolean): void {
    if (direct) this.reject(socket, inbound, error);
    else this.fail(socket, inbound, error);
  }

  /** What a direct handler threw, answered as `WsErrorFilter` answers it. */
  private reject(socket: ReliableSocket, inbound: InboundMessage, error: unknown): void {
    inbound.fail(this.directHandlers.errorBody(error));
    this.answer(socket, inbound, undefined);
  }

  /** A failure no exception filter turned into an answer: `INTERNAL`, logged. */
  private fail(socket: ReliableSocket, inbound: InboundMessage, error: unknown): void {
    if (isInstance(error, UnserializableDataError)) reportUnserializable(error);
    else this.logger.error(errorText(error, { stack: true }));
    inbound.fail({ code: ErrorCode.INTERNAL, message: INTERNAL_ERROR_MESSAGE });
    this.answer(socket, inbound, undefined);
  }

  /** Answers the message; whatever the result holds (a throwing getter, say), nothing escapes. */
  private answer(socket: ReliableSocket, inbound: InboundMessage, result: unknown): void {
    try {
      this.answerWith(socket, inbound, result);
    } catch (error) {
      this.logger.error(`answering "${inbound.event}" failed: ${errorText(error)}`);
      socket.replyError({ code: ErrorCode.INTERNAL, message: INTERNAL_ERROR_MESSAGE, ref: inbound.id });
    }
    inbound.onAnswered?.();
  }

  private answerWith(socket: ReliableSocket, inbound: InboundMessage, result: unknown): void {
    const ref = inbound.id;
    if (inbound.failure) {
      socket.replyError({ ...inbound.failure, ref });
    } else if (result === undefined) {
      if (ref !== undefined) socket.acknowledge(ref);
    } else if (isEventReply(result)) {
      socket.reply(result.event, result.data, ref);
    } else {
      socket.reply(inbound.event, result, ref);
    }
  }
}

/** One connection's handlers: Nest's callbacks bound to it, or the direct handler where there is one. */
function tableOf(handlers: MessageMappingProperties[], transform: Transform, direct: Map<string, DirectHandler> | undefined): Map<string, BoundHandler> {
  const table = new Map<string, BoundHandler>();
  for (const { message, callback } of handlers) {
    const event = String(message);
    const handler = direct?.get(event);
    table.set(event, handler ? { direct: handler } : { direct: undefined, callback: callback as NestCallback, transform });
  }
  return table;
}

/** A handler result of the form `{ event, data }` picks the reply's event. */
function isEventReply(result: unknown): result is { event: string; data: unknown } {
  return (
    typeof result === 'object' &&
    result !== null &&
    typeof (result as { event?: unknown }).event === 'string' &&
    'data' in result
  );
}

function isThenable(result: unknown): result is PromiseLike<unknown> {
  return typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function';
}
