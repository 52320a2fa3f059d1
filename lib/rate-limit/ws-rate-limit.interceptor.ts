import { Injectable, Optional, type CallHandler, type ExecutionContext, type NestInterceptor, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { ReliableWsException } from '../errors/index.js';
import { missingModuleError } from '../missing-module.js';
import { ErrorCode } from '../protocol/index.js';
import { ReliableSocket } from '../session/index.js';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA } from './rate-limit.decorator.js';
import type { RateLimitOptions } from './rate-limit.options.js';
import { RateLimiter } from './rate-limiter.js';

/** What the metadata of one handler of one gateway says: read once, not per message. */
interface HandlerPolicy {
  skip: boolean;
  limit: RateLimitOptions | undefined;
}

/**
 * Charges each message against its connection's token bucket; a message over the limit is not
 * handled and answered `$error RATE_LIMITED` with `retryAfterMs`.
 */
@Injectable()
export class WsRateLimitInterceptor implements NestInterceptor {
  /** By gateway class, then handler: a method inherited by two gateways may have two policies. */
  private readonly policies = new WeakMap<Type<unknown>, WeakMap<Function, HandlerPolicy>>();

  constructor(
    @Optional() private readonly limiter: RateLimiter,
    private readonly reflector: Reflector,
  ) {
    if (limiter === undefined) throw missingModuleError(WsRateLimitInterceptor.name);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const socket = context.switchToWs().getClient<unknown>();
    if (socket instanceof ReliableSocket) this.charge(socket, context.getClass(), context.getHandler());
    return next.handle();
  }

  /** Charges a message to `handler` of `gateway`; throws `RATE_LIMITED` over the limit. */
  charge(socket: ReliableSocket, gateway: Type<unknown>, handler: Function): void {
    const { skip, limit } = this.policyOf(gateway, handler);
    if (skip) return;
    const decision = this.limiter.consume(socket, limit);
    if (decision.allowed) return;
    throw new ReliableWsException({
      code: ErrorCode.RATE_LIMITED,
      message: 'rate limit exceeded',
      retryAfterMs: decision.retryAfterMs,
    });
  }

  private policyOf(gateway: Type<unknown>, handler: Function): HandlerPolicy {
    let byHandler = this.policies.get(gateway);
    if (!byHandler) this.policies.set(gateway, (byHandler = new WeakMap()));
    let policy = byHandler.get(handler);
    if (!policy) {
      // The handler's own decorator wins over its gateway's, whichever it is.
      policy = this.declaredOn(handler) ?? this.declaredOn(gateway) ?? { skip: false, limit: undefined };
      byHandler.set(handler, policy);
    }
    return policy;
  }

  /** What `@SkipRateLimit()` or `@RateLimit()` on a handler or gateway says (skip wins on one target). */
  private declaredOn(target: Function): HandlerPolicy | undefined {
    if (this.reflector.get<boolean>(SKIP_RATE_LIMIT_METADATA, target) === true) return { skip: true, limit: undefined };
    const limit = this.reflector.get<RateLimitOptions | undefined>(RATE_LIMIT_METADATA, target);
    return limit ? { skip: false, limit } : undefined;
  }
}
