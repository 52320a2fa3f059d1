import { Inject, Injectable, Optional, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ReliableWsException } from '../errors/index.js';
import { missingModuleError } from '../missing-module.js';
import { ErrorCode } from '../protocol/index.js';
import { Authenticator } from './authenticator.js';

/**
 * Lets a message through only from an authenticated connection when `auth` is configured.
 * `@ReliableGateway` applies it; put it on a plain `@WebSocketGateway` with `@UseGuards`.
 */
@Injectable()
export class WsAuthGuard implements CanActivate {
  /** @param authenticator `null` when `auth` is not configured; absent without `ReliableWsModule`. */
  constructor(@Optional() @Inject(Authenticator) private readonly authenticator?: Authenticator | null) {
    if (authenticator === undefined) throw missingModuleError(WsAuthGuard.name);
  }

  canActivate(context: ExecutionContext): boolean {
    this.assertAuthenticated(context.switchToWs().getClient<{ principal?: unknown }>());
    return true;
  }

  /** Throws `UNAUTHENTICATED` when `auth` is configured and the client has no principal. */
  assertAuthenticated({ principal }: { principal?: unknown }): void {
    if (this.authenticator && (principal === undefined || principal === null)) {
      throw new ReliableWsException({ code: ErrorCode.UNAUTHENTICATED, message: 'authentication required' });
    }
  }
}
