import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ReliableWsException } from '../errors/index.js';
import { ErrorCode } from '../protocol/index.js';
import { Authenticator } from './authenticator.js';

/**
 * Lets a message through only from an authenticated connection when `auth` is configured.
 * `@ReliableGateway` applies it; put it on a plain `@WebSocketGateway` with `@UseGuards`.
 */
@Injectable()
export class WsAuthGuard implements CanActivate {
  constructor(@Inject(Authenticator) private readonly authenticator: Authenticator | null) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.authenticator) return true;
    const { principal } = context.switchToWs().getClient<{ principal?: unknown }>();
    if (principal === undefined || principal === null) {
      throw new ReliableWsException({ code: ErrorCode.UNAUTHENTICATED, message: 'authentication required' });
    }
    return true;
  }
}
