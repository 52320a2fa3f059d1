import { Logger } from '@nestjs/common';
import type { ResolvedAuthOptions } from './auth.options.js';
import type { HandshakeRequest } from './handshake-request.js';
import { redactToken, redactUrl } from './handshake-token.js';

/** Runs the application's `verify` so that a throw or a rejection is a logged failure, never a crash. */
export class Authenticator {
  private readonly logger = new Logger('WsAuth');

  constructor(readonly options: ResolvedAuthOptions) {}

  /** The principal for a token, or undefined when it is not accepted. */
  async verify(token: string, request: HandshakeRequest): Promise<unknown> {
    try {
      const principal: unknown = await this.options.verify(token, request);
      if (principal === null || principal === undefined || principal === false) {
        this.logger.warn(`rejected credentials from ${request.socket.remoteAddress} on ${redactUrl(request.url)}`);
        return undefined;
      }
      return principal;
    } catch (error) {
      const text = error instanceof Error ? error.stack ?? error.message : String(error);
      this.logger.error(`auth.verify threw for ${redactUrl(request.url)}: ${redactToken(text, token)}`);
      return undefined;
    }
  }

  /** Milliseconds until the principal's credentials expire, or undefined when they do not. */
  msUntilExpiry(principal: unknown, now = Date.now()): number | undefined {
    const expiresAt = this.options.expiresAt(principal);
    if (expiresAt === undefined) return undefined;
    return Math.max(0, (expiresAt instanceof Date ? expiresAt.getTime() : expiresAt) - now);
  }
}
