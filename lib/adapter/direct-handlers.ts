import type { INestApplicationContext, Type } from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA, GUARDS_METADATA, INTERCEPTORS_METADATA, PIPES_METADATA } from '@nestjs/common/constants.js';
import { MetadataScanner, ModuleRef, ModulesContainer } from '@nestjs/core';
import { GATEWAY_METADATA, MESSAGE_MAPPING_METADATA, MESSAGE_METADATA, PARAM_ARGS_METADATA } from '@nestjs/websockets/constants.js';
import { WsParamtype } from '@nestjs/websockets/enums/ws-paramtype.enum.js';
import { WsAuthGuard } from '../auth/index.js';
import type { ErrorBody } from '../errors/index.js';
import { WsErrorFilter } from './ws-error.filter.js';
import { RELIABLE_GATEWAY_ENHANCERS } from './gateway-enhancers.js';
import { WsRateLimitInterceptor } from '../rate-limit/index.js';
import type { InboundMessage, ReliableSocket } from '../session/index.js';
import { WsValidationInterceptor } from '../validation/index.js';

/**
 * Runs one message through a handler: its result (a value, a promise or an observable), or it
 * throws what the handler or a check threw.
 */
export type DirectHandler = (socket: ReliableSocket, data: unknown, message: InboundMessage) => unknown;

interface ParamMetadata {
  index: number;
  data?: unknown;
  pipes?: unknown[];
}

/** Nest's arguments of a message handler: the socket, the payload, the inbound message, the pattern. */
type HandlerArgs = [ReliableSocket, unknown, InboundMessage, string];

/** Reads one parameter of a handler from its arguments; undefined for a parameter Nest would have to resolve. */
type ParamReader = (args: HandlerArgs) => unknown;

/** What Nest passes to a handler that declares no parameter decorators. */
const DEFAULT_PARAMS: Record<string, ParamMetadata> = {
  [`${WsParamtype.SOCKET}:0`]: { index: 0 },
  [`${WsParamtype.PAYLOAD}:1`]: { index: 1 },
};

interface ModuleEnhancers {
  guard: WsAuthGuard;
  rateLimit: WsRateLimitInterceptor;
  validation: WsValidationInterceptor;
}

/**
 * The handlers of gateways that nothing enhances but `@ReliableGateway`'s own guard,
 * interceptors and filter (no global enhancers, none on the class or method besides those, no
 * pipes, only `@MessageBody()` and `@ConnectedSocket()` parameters) run without Nest's
 * per-message pipeline: the same checks in the same order (auth, rate limit, validation), then
 * the method. Every other handler goes through Nest as it is.
 */
export class DirectHandlers {
  private byPatterns: Map<string, Map<string, DirectHandler>> | undefined;
  private readonly filter = new WsErrorFilter();

  constructor(private readonly app: INestApplicationContext) {}

  /**
   * The direct handlers, by event, of the gateway whose message patterns are `patterns` (Nest binds
   * one gateway's handlers at a time); none when two gateways have the same patterns.
   */
  of(patterns: string[]): Map<string, DirectHandler> | undefined {
    this.byPatterns ??= this.index();
    return this.byPatterns.get(patternKey(patterns));
  }

  /** The `$error` body of what a direct handler threw (server faults are logged). */
  errorBody(exception: unknown): ErrorBody {
    return this.filter.errorBody(exception);
  }

  private index(): Map<string, Map<string, DirectHandler>> {
    const direct = new Map<string, Map<string, DirectHandler>>();
    const gatewaysByKey = new Map<string, number>();
    const enhancers = hasGlobalEnhancers(this.app) ? undefined : moduleEnhancers(this.app);
    const scanner = new MetadataScanner();
    for (const instance of gatewayInstances(this.app)) {
      const methods = messageHandlers(instance, scanner);
      const key = patternKey(methods.map(({ pattern }) => pattern));
      gatewaysByKey.set(key, (gatewaysByKey.get(key) ?? 0) + 1);
      const handlers = enhancers && directHandlersOf(instance, methods, enhancers);
      if (handlers && handlers.size > 0) direct.set(key, handlers);
    }
    for (const [key, gateways] of gatewaysByKey) if (gateways > 1) direct.delete(key);
    return direct;
  }
}

function patternKey(patterns: string[]): string {
  return [...patterns].sort().join('\n');
}

function moduleEnhancers(app: INestApplicationContext): ModuleEnhancers | undefined {
  try {
    const moduleRef = app.get(ModuleRef);
    return {
      guard: moduleRef.get(WsAuthGuard, { strict: false }),
      rateLimit: moduleRef.get(WsRateLimitInterceptor, { strict: false }),
      validation: moduleRef.get(WsValidationInterceptor, { strict: false }),
    };
  } catch {
    return undefined;
  }
}

/** Global guards, interceptors, pipes or filters (`useGlobal…`, `APP_…`); true when that cannot be told. */
function hasGlobalEnhancers(app: INestApplicationContext): boolean {
  const config = (app as unknown as { config?: Record<string, unknown> }).config;
  const lists = [
    'getGlobalGuards',
    'getGlobalInterceptors',
    'getGlobalPipes',
    'getGlobalFilters',
    'getGlobalRequestGuards',
    'getGlobalRequestInterceptors',
    'getGlobalRequestPipes',
    'getGlobalRequestFilters',
  ];
  return lists.some((list) => {
    const read = config?.[list];
    if (typeof read !== 'function') return true;
    const enhancers: unknown = read.call(config);
    return !Array.isArray(enhancers) || enhancers.length > 0;
  });
}

export function* gatewayInstances(app: INestApplicationContext): Iterable<object> {
  for (const module of app.get(ModulesContainer).values()) {
    for (const { metatype, instance } of module.providers.values()) {
      if (typeof metatype === 'function' && instance && Reflect.getMetadata(GATEWAY_METADATA, metatype)) yield instance as object;
    }
  }
}

export interface MessageHandler {
  pattern: string;
  methodName: string;
}

/** The `@SubscribeMessage` methods of a gateway, found as Nest finds them. */
export function messageHandlers(instance: object, scanner: MetadataScanner): MessageHandler[] {
  const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
  return scanner
    .getAllMethodNames(prototype)
    .filter((methodName) => Reflect.getMetadata(MESSAGE_MAPPING_METADATA, prototype[methodName] as object) !== undefined)
    .map((methodName) => ({ pattern: String(Reflect.getMetadata(MESSAGE_METADATA, prototype[methodName] as object)), methodName }));
}

function directHandlersOf(instance: object, methods: MessageHandler[], enhancers: ModuleEnhancers): Map<string, DirectHandler> | undefined {
  const gateway = instance.constructor as Type<unknown>;
  if (!hasExactly(gateway, RELIABLE_GATEWAY_ENHANCERS)) return undefined;
  const handlers = new Map<string, DirectHandler>();
  for (const { pattern, methodName } of methods) {
    if (handlers.has(pattern)) return undefined;
    const handler = directHandler(instance, gateway, methodName, pattern, enhancers);
    if (handler) handlers.set(pattern, handler);
  }
  return handlers;
}

/** Whether the class's enhancer metadata is exactly `expected` (and it has no pipes). */
function hasExactly(gateway: Type<unknown>, expected: typeof RELIABLE_GATEWAY_ENHANCERS): boolean {
  const same = (key: string, classes: readonly unknown[]): boolean => {
    const actual: unknown = Reflect.getMetadata(key, gateway);
    return Array.isArray(actual) && actual.length === classes.length && actual.every((item, index) => item === classes[index]);
  };
  return (
    same(GUARDS_METADATA, expected.guards) &&
    same(INTERCEPTORS_METADATA, expected.interceptors) &&
    same(EXCEPTION_FILTERS_METADATA, expected.filters) &&
    Reflect.getMetadata(PIPES_METADATA, gateway) === undefined
  );
}

function directHandler(
  instance: object,
  gateway: Type<unknown>,
  methodName: string,
  pattern: string,
  { guard, rateLimit, validation }: ModuleEnhancers,
): DirectHandler | undefined {
  const method = (instance as Record<string, (...args: unknown[]) => unknown>)[methodName];
  const enhanced = [GUARDS_METADATA, INTERCEPTORS_METADATA, EXCEPTION_FILTERS_METADATA, PIPES_METADATA].some(
    (key) => Reflect.getMetadata(key, method) !== undefined,
  );
  const readArgs = enhanced ? undefined : argumentReader(gateway, methodName);
  if (!readArgs) return undefined;
  return (socket, data, message) => {
    guard.assertAuthenticated(socket);
    rateLimit.charge(socket, gateway, method);
    const args: HandlerArgs = [socket, data, message, pattern];
    const validated = validation.validate(args, gateway, method);
    if (validated) return validated.then(() => method.apply(instance, readArgs(args)));
    return method.apply(instance, readArgs(args));
  };
}

/** The arguments of a handler from Nest's; undefined when a parameter needs Nest (pipes, custom decorators). */
function argumentReader(gateway: Type<unknown>, methodName: string): ((args: HandlerArgs) => unknown[]) | undefined {
  const params: Record<string, ParamMetadata> = Reflect.getMetadata(PARAM_ARGS_METADATA, gateway, methodName) ?? DEFAULT_PARAMS;
  const readers: Array<[number, ParamReader]> = [];
  for (const [key, { index, data, pipes }] of Object.entries(params)) {
    if (pipes !== undefined && pipes.length > 0) return undefined;
    const reader = paramReader(key, data);
    if (!reader) return undefined;
    readers.push([index, reader]);
  }
  const length = Math.max(0, ...readers.map(([index]) => index + 1));
  return (args) => {
    const values = new Array<unknown>(length).fill(undefined);
    for (const [index, read] of readers) values[index] = read(args);
    return values;
  };
}

function paramReader(key: string, data: unknown): ParamReader | undefined {
  if (!/^\d+:\d+$/.test(key)) return undefined;
  switch (Number(key.split(':')[0])) {
    case WsParamtype.SOCKET:
      return (args) => args[0];
    case WsParamtype.PAYLOAD:
      return data ? (args) => (args[1] as Record<string, unknown> | null | undefined)?.[data as string] : (args) => args[1];
    case WsParamtype.ACK:
      return () => undefined;
    default:
      return undefined;
  }
}
