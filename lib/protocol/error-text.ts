/**
 * A thrown value as text for a log line or a message, whatever it is: a value that cannot be
 * turned into text (a null-prototype object, a throwing `toString`, a revoked Proxy) gives a
 * placeholder instead of throwing from inside an error path.
 */
export function errorText(error: unknown, { stack = false } = {}): string {
  try {
    if (error instanceof Error) return String((stack && error.stack) || error.message);
    return String(error);
  } catch {
    return '(a thrown value that cannot be shown as text)';
  }
}

/** `value instanceof type`, false where even that throws (a revoked Proxy). */
export function isInstance<T>(value: unknown, type: abstract new (...args: never[]) => T): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}
