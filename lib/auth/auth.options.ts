import { Logger } from '@nestjs/common';
import type { HandshakeRequest } from './handshake-request.js';
import { errorText } from '../protocol/index.js';

/** Where a connection may present its token. */
export type AuthMode = 'handshake' | 'first-message' | 'any';

export interface AuthOptions<Principal = any> {
  /**
   * Returns the principal for a valid token, or null; may be async. A throw counts as a failure.
   * `request` is the upgrade request (an `IncomingMessage` at the handshake).
   */
  verify: (token: string, request: HandshakeRequest) => Principal | null | undefined | Promise<Principal | null | undefined>;
  /** `'handshake'`: token in the upgrade request; `'first-message'`: in `$hello`; `'any'`: either. */
  mode?: AuthMode;
  /** How long a connection that must open with `$hello` has to send it (close 4008 after). */
  timeoutMs?: number;
  /** Cookie read for the handshake token. */
  cookieName?: string;
  /** The user id of a principal, for `BroadcastService.toUser`; default `principal.id ?? principal.sub`. */
  userId?: (principal: Principal) => string | number | undefined;
  /** When the principal's credentials expire (ms since the epoch or a Date); default `principal.exp` (seconds). */
  expiresAt?: (principal: Principal) => number | Date | undefined;
}

export type ResolvedAuthOptions = Required<Omit<AuthOptions, 'cookieName'>> & Pick<AuthOptions, 'cookieName'>;

export const AUTH_MODES: readonly AuthMode[] = ['handshake', 'first-message', 'any'];

/** How long a client that must open with `$hello` has to send it, with or without auth. */
export const DEFAULT_AUTH_TIMEOUT_MS = 5000;

export function defaultUserId(principal: unknown): string | number | undefined {
  if (typeof principal !== 'object' || principal === null) return undefined;
  const { id, sub } = principal as { id?: unknown; sub?: unknown };
  const value = id ?? sub;
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

/** A JWT-style `exp` claim, in seconds since the epoch. */
export function defaultExpiresAt(principal: unknown): number | undefined {
  if (typeof principal !== 'object' || principal === null) return undefined;
  const { exp } = principal as { exp?: unknown };
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}

const logger = new Logger('WsAuth');

/**
 * `auth.userId` as the module calls it: a throw or a value that is not a string or a number
 * counts as "no user id" (logged), never as a failure of the connection or the broadcast.
 */
export function containUserId(userId: (principal: unknown) => unknown): (principal: unknown) => string | number | undefined {
  return (principal) => {
    const value = contained('auth.userId', () => userId(principal));
    return typeof value === 'string' || typeof value === 'number' ? value : undefined;
  };
}

/** `auth.expiresAt` as the module calls it: a throw or a value that is not a time means no expiry (logged). */
export function containExpiresAt(expiresAt: (principal: unknown) => unknown): (principal: unknown) => number | Date | undefined {
  return (principal) => {
    const value = contained('auth.expiresAt', () => expiresAt(principal));
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
    return typeof value === 'number' && !Number.isNaN(value) ? value : undefined;
  };
}

function contained(name: string, call: () => unknown): unknown {
  try {
    return call();
  } catch (error) {
    logger.error(`${name} threw: ${errorText(error)}`);
    return undefined;
  }
}
