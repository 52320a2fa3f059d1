import { Inject, Injectable, Optional, type CallHandler, type ExecutionContext, type NestInterceptor, type Type } from '@nestjs/common';
import { from, mergeMap, type Observable } from 'rxjs';
import { ReliableWsException, validationFailure } from '../errors/index.js';
import { missingModuleError } from '../missing-module.js';
import { ErrorCode } from '../protocol/index.js';
import { bodyParameters, type BodyParameter } from './body-parameter.js';
import { validatePayload, type ValidationResult } from './payload-validator.js';
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
    const pending = this.validate(context.getArgs(), context.getClass(), context.getHandler());
    return pending ? from(pending).pipe(mergeMap(() => next.handle())) : next.handle();
  }

  /**
   * Validates the body parameters of `handler` of `gateway` in Nest's handler arguments and puts
   * what they validated to (DTO instances) in their place; throws `VALIDATION_FAILED` at once
   * when it can tell synchronously, else returns a promise (class-validator DTOs).
   */
  validate(args: unknown[], gateway: Type<unknown>, handler: Function): Promise<void> | undefined {
    if (this.options === false) return undefined;
    return this.validateFrom(args, bodyParameters(gateway, handler), 0, this.options);
  }

  private validateFrom(args: unknown[], parameters: BodyParameter[], first: number, options: ValidationOptions): Promise<void> | undefined {
    for (let index = first; index < parameters.length; index++) {
      const parameter = parameters[index];
      const payload = args[PAYLOAD_ARG_INDEX];
      const value = parameter.property === undefined ? payload : (payload as Record<string, unknown> | undefined)?.[parameter.property];
      const result = validatePayload(value, parameter.metatype, parameter.property ?? WHOLE_PAYLOAD, options);
      if (result instanceof Promise) {
        return result.then((settled) => {
          applyResult(args, parameter, settled);
          return this.validateFrom(args, parameters, index + 1, options);
        });
      }
      applyResult(args, parameter, result);
    }
    return undefined;
  }
}

/** Puts a validated value in the handler's arguments, or throws `VALIDATION_FAILED`. */
function applyResult(args: unknown[], { property }: BodyParameter, result: ValidationResult): void {
  if (!result.ok) {
    throw new ReliableWsException({ code: ErrorCode.VALIDATION_FAILED, ...validationFailure(result.details) });
  }
  const payload = args[PAYLOAD_ARG_INDEX];
  args[PAYLOAD_ARG_INDEX] = property === undefined ? result.value : { ...(payload as object), [property]: result.value };
}
