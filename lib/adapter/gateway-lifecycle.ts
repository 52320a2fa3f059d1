import { Logger, type INestApplicationContext } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { GATEWAY_METADATA } from '@nestjs/websockets/constants.js';
import { CloseCode, errorText } from '../protocol/index.js';
import type { ReliableSocket } from '../session/index.js';

const logger = new Logger('ReliableWsAdapter');

type LifecycleHook = 'handleConnection' | 'handleDisconnect';

/**
 * Makes the lifecycle hooks of every gateway of the app unable to take it down: a
 * `handleConnection` that throws or rejects is logged and its connection closed with 1011; a
 * failing `handleDisconnect` is logged. (Nest calls them inside an rxjs subscription, where a
 * throw would surface as an uncaught exception.) Runs before Nest binds the hooks, on `listen()`.
 */
export function containGatewayLifecycles(app: INestApplicationContext): void {
  for (const module of app.get(ModulesContainer).values()) {
    for (const { instance, metatype } of module.providers.values()) {
      if (!instance || typeof metatype !== 'function' || !Reflect.getMetadata(GATEWAY_METADATA, metatype)) continue;
      const gateway = instance as Record<LifecycleHook, unknown>;
      contain(gateway, metatype.name, 'handleConnection', (socket) => socket?.close?.(CloseCode.INTERNAL_ERROR));
      contain(gateway, metatype.name, 'handleDisconnect', () => undefined);
    }
  }
}

function contain(
  gateway: Record<LifecycleHook, unknown>,
  name: string,
  hook: LifecycleHook,
  onFailure: (socket: ReliableSocket | undefined) => void,
): void {
  const original = gateway[hook];
  if (typeof original !== 'function' || CONTAINED.has(original)) return;
  const fail = (socket: ReliableSocket | undefined, error: unknown): void => {
    logger.error(`${name}.${hook} failed`, errorText(error, { stack: true }));
    onFailure(socket);
  };
  const contained = function (this: unknown, socket: ReliableSocket, ...rest: unknown[]): void {
    try {
      const result: unknown = original.call(this, socket, ...rest);
      if (result instanceof Promise) result.catch((error: unknown) => fail(socket, error));
    } catch (error) {
      fail(socket, error);
    }
  };
  CONTAINED.add(contained);
  gateway[hook] = contained;
}

/** Hooks already wrapped, so that a second adapter on the same app does not wrap them again. */
const CONTAINED = new WeakSet<Function>();
