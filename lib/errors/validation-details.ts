import type { ValidationError } from 'class-validator';

/** One entry of a `VALIDATION_FAILED` error's `details`. */
export interface ValidationDetail {
  /** Dotted path of the failing property, e.g. `author.name` or `tags.1`. */
  property: string;
  constraints: Record<string, string>;
}

/** Flattens class-validator's nested errors into one entry per failing property. */
export function flattenValidationErrors(errors: ValidationError[], parentPath = ''): ValidationDetail[] {
  return errors.flatMap((error) => {
    const property = parentPath ? `${parentPath}.${error.property}` : error.property;
    const own = error.constraints ? [{ property, constraints: error.constraints }] : [];
    return [...own, ...flattenValidationErrors(error.children ?? [], property)];
  });
}

export function isValidationErrorList(value: unknown): value is ValidationError[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((item) => typeof item === 'object' && item !== null && 'property' in item)
  );
}

/** class-validator's message for a property that `forbidNonWhitelisted` refuses. */
const NOT_WHITELISTED = /^property (\S+) should not exist$/;

/**
 * Details for the 400 of Nest's `ValidationPipe`, whose messages read `<property path> <rule>`,
 * e.g. `text must be a string`, or `property <path> should not exist`. The messages do not name
 * their constraint, hence `invalid` (or `whitelistValidation`, which they do imply).
 */
export function detailsFromValidationMessages(messages: string[]): ValidationDetail[] {
  return messages.map((message): ValidationDetail => {
    const notWhitelisted = NOT_WHITELISTED.exec(message);
    if (notWhitelisted) return { property: notWhitelisted[1], constraints: { whitelistValidation: message } };
    return { property: message.split(' ', 1)[0], constraints: { invalid: message } };
  });
}
