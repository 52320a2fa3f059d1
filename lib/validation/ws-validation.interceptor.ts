import { Inject, Injectable, Optional, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { from, mergeMap, type Observable } from 'rxjs';
import { ReliableWsException } from '../errors/index.js';
import { missingModuleError } from '../missing-module.js';
import { ErrorCode } from '../protocol/index.js';
import { bodyParameters } from './body-parameter.js';
import { validatePayload } from './payload-validator.js';
import type { ValidationOptions } from './validation.options.js';

/** Injection token of the validation options (`false` when validation is off). */
export const WS_VALIDATION_OPTIONS = Symbol('nestjs-reliable-ws:validation-options');

const PAYLOAD_ARG_INDEX = 1;
const WHOLE_PAYLOAD = 'data';

/**
 * Validates `@MessageBody()` parameters against their declared types (class-validator DTOs,
 * primitives); the handler receives the DTO instance. A failure is answered
 * `$error VALIDATION_FAILED` with `details`, and the handler does not run.
 */
@Injectable()
export class WsValidationInterceptor implements NestInterceptor {
  constructor(@Optional() @Inject(WS_VALIDATION_OPTIONS) private readonly options: ValidationOptions | false) {
    if (options === undefined) throw missingModuleError(WsValidationInterceptor.name);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (this.options === false) return next.handle();
    const parameters = bodyParameters(context.getClass(), context.getHandler());
    if (parameters.length === 0) return next.handle();
    return from(this.validateArgs(context.getArgs(), parameters)).pipe(mergeMap(() => next.handle()));
  }

  private async validateArgs(args: unknown[], parameters: ReturnType<typeof bodyParameters>): Promise<void> {
    const options = this.options as ValidationOptions;
    for (const { metatype, property } of parameters) {
      const payload = args[PAYLOAD_ARG_INDEX];
      const value = property === undefined ? payload : (payload as Record<string, unknown> | undefined)?.[property];
      const result = await validatePayload(value, metatype, property ?? WHOLE_PAYLOAD, options);
      if (!result.ok) {
        throw new ReliableWsException({
          code: ErrorCode.VALIDATION_FAILED,
          message: 'Validation failed',
          details: result.details,
        });
      }
      args[PAYLOAD_ARG_INDEX] =
        property === undefined ? result.value : { ...(payload as object), [property]: result.value };
    }
  }
}
