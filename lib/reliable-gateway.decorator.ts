import { applyDecorators, Logger, UseFilters, UseGuards, UseInterceptors } from '@nestjs/common';
import { WebSocketGateway, type GatewayMetadata } from '@nestjs/websockets';
import { WsAuthGuard } from './auth/index.js';
import { WsErrorFilter } from './errors/index.js';
import { CloseCode } from './protocol/index.js';
import { WsRateLimitInterceptor } from './rate-limit/index.js';
import { WsValidationInterceptor } from './validation/index.js';
import type { ReliableSocket } from './session/index.js';

const logger = new Logger('ReliableGateway');

type LifecycleHook = 'handleConnection' | 'handleDisconnect';

/**
 * `@WebSocketGateway(options)` plus the module's error filter, auth guard, rate-limit and
 * validation interceptors, and lifecycle hooks that can no
 * longer take the app down: a `handleConnection` that throws or rejects is logged and its
 * connection closed with 1011; a failing `handleDisconnect` is logged.
 */
export function ReliableGateway(options: GatewayMetadata = {}): ClassDecorator {
  return applyDecorators(
    WebSocketGateway(options),
    UseFilters(WsErrorFilter),
    UseGuards(WsAuthGuard),
    UseInterceptors(WsRateLimitInterceptor, WsValidationInterceptor),
    containLifecycleErrors,
  );
}

function containLifecycleErrors(target: Function): void {
  contain(target, 'handleConnection', (socket) => socket?.close?.(CloseCode.INTERNAL_ERROR));
  contain(target, 'handleDisconnect', () => undefined);
}

function contain(target: Function, hook: LifecycleHook, onFailure: (socket: ReliableSocket | undefined) => void): void {
  const original: unknown = target.prototype[hook];
  if (typeof original !== 'function') return;
  const fail = (socket: ReliableSocket | undefined, error: unknown): void => {
    logger.error(`${target.name}.${hook} failed`, error instanceof Error ? error.stack : String(error));
    onFailure(socket);
  };
  target.prototype[hook] = function (this: unknown, socket: ReliableSocket, ...rest: unknown[]): void {
    try {
      const result: unknown = original.call(this, socket, ...rest);
      if (result instanceof Promise) result.catch((error: unknown) => fail(socket, error));
    } catch (error) {
      fail(socket, error);
    }
  };
}
