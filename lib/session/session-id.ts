import { createHash, createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';

const SECRET_BYTES = 16;

/** Secrets drawn per call into the operating system's random source: one call per connect is costly. */
const POOLED_SECRETS = 256;

const pool = Buffer.alloc(SECRET_BYTES * POOLED_SECRETS);
let poolOffset = pool.length;

/** A fresh unguessable identifier (128 random bits, base64url); no random bytes are ever used twice. */
export function randomSecret(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const secret = pool.toString('base64url', poolOffset, poolOffset + SECRET_BYTES);
  poolOffset += SECRET_BYTES;
  return secret;
}

/** Compares two secrets without leaking where they differ through timing. */
export function secretsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** What travels between instances instead of a resume token: its SHA-256 (the token is 128 random bits). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/**
 * Proof that a claim for a session comes from someone who holds its resume token, bound to one
 * request so that it cannot be replayed: an HMAC of the request, keyed by the token's hash.
 */
export function claimProof(resumeTokenHash: string, request: string): string {
  return createHmac('sha256', resumeTokenHash).update(request).digest('base64url');
}
