import { Injectable, Optional, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { ReliableWsException } from '../errors/index.js';
import { missingModuleError } from '../missing-module.js';
import { ErrorCode } from '../protocol/index.js';
import { ReliableSocket } from '../session/index.js';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA } from './rate-limit.decorator.js';
import type { RateLimitOptions } from './rate-limit.options.js';
import { RateLimiter } from './rate-limiter.js';

/**
 * Charges each message against its connection's token bucket; a message over the limit is not
 * handled and answered `$error RATE_LIMITED` with `retryAfterMs`.
 */
@Injectable()
export class WsRateLimitInterceptor implements NestInterceptor {
  constructor(
    @Optional() private readonly limiter: RateLimiter,
    private readonly reflector: Reflector,
  ) {
    if (limiter === undefined) throw missingModuleError(WsRateLimitInterceptor.name);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const socket = context.switchToWs().getClient<unknown>();
    if (!(socket instanceof ReliableSocket)) return next.handle();
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT_METADATA, targets)) return next.handle();
    const limit = this.reflector.getAllAndOverride<RateLimitOptions | undefined>(RATE_LIMIT_METADATA, targets);
    const decision = this.limiter.consume(socket, limit);
    if (decision.allowed) return next.handle();
    throw new ReliableWsException({
      code: ErrorCode.RATE_LIMITED,
      message: 'rate limit exceeded',
      retryAfterMs: decision.retryAfterMs,
    });
  }
}
