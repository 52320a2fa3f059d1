import { Logger } from '@nestjs/common';
import { LogThrottle, quote } from '../telemetry/index.js';
import type { ResolvedAuthOptions } from './auth.options.js';
import type { HandshakeRequest } from './handshake-request.js';
import { redactToken, redactUrl } from './handshake-token.js';
import { errorText } from '../protocol/index.js';

/**
 * Runs the application's `verify` so that a throw or a rejection is a logged failure, never a
 * crash. Logged a few times per kind in a window, so that a flood of bad tokens cannot flood the log.
 */
export class Authenticator {
  private readonly logger = new Logger('WsAuth');
  private readonly throttle = new LogThrottle((level, message) => this.logger[level](message));

  constructor(readonly options: ResolvedAuthOptions) {}

  /**
   * The principal for a token, or undefined when it is not accepted: at once when the
   * application's `verify` answers synchronously, else as a promise (that never rejects).
   * `peer` is the client's address for the log (the one `trustProxy` gives).
   */
  verify(token: string, request: HandshakeRequest, peer = request.socket.remoteAddress ?? ''): unknown {
    let answer: unknown;
    try {
      answer = this.options.verify(token, request);
    } catch (error) {
      return this.failed(error, token, request);
    }
    if (!isThenable(answer)) return this.principalOf(answer, request, peer);
    return Promise.resolve(answer).then(
      (principal) => this.principalOf(principal, request, peer),
      (error: unknown) => this.failed(error, token, request),
    );
  }

  /** Milliseconds until the principal's credentials expire, or undefined when they do not. */
  msUntilExpiry(principal: unknown, now = Date.now()): number | undefined {
    const expiresAt = this.options.expiresAt(principal);
    if (expiresAt === undefined) return undefined;
    return Math.max(0, (expiresAt instanceof Date ? expiresAt.getTime() : expiresAt) - now);
  }

  private principalOf(principal: unknown, request: HandshakeRequest, peer: string): unknown {
    if (principal === null || principal === undefined || principal === false) {
      this.throttle.log('rejected credentials', 'warn', `rejected credentials from ${peer} on ${quote(redactUrl(request.url))}`);
      return undefined;
    }
    return principal;
  }

  private failed(error: unknown, token: string, request: HandshakeRequest): undefined {
    const text = errorText(error, { stack: true });
    this.throttle.log('auth.verify threw', 'error', `auth.verify threw for ${quote(redactUrl(request.url))}: ${redactToken(text, token)}`);
    return undefined;
  }
}

/** A promise, or anything `await` would wait for. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}
