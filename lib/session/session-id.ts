import { randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_BYTES = 16;

/** A fresh unguessable identifier (128 random bits, base64url). */
export function randomSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/** Compares two secrets without leaking where they differ through timing. */
export function secretsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
