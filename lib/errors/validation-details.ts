import type { ValidationError } from 'class-validator';

/** One entry of a `VALIDATION_FAILED` error's `details`. */
export interface ValidationDetail {
  /** Dotted path of the failing property, e.g. `author.name` or `tags.1`. */
  property: string;
  constraints: Record<string, string>;
}

/** The body of a `VALIDATION_FAILED` error. */
export interface ValidationFailure {
  message: string;
  details: ValidationDetail[];
}

/** Entries of `details` at most: a payload failing in thousands of places gets a small answer. */
export const MAX_VALIDATION_DETAILS = 20;

/** Longest property path or constraint message in `details` (both may repeat what the client sent). */
const MAX_DETAIL_TEXT_LENGTH = 200;

/**
 * The message and the first MAX_VALIDATION_DETAILS details (texts cut short); the message gives
 * the full count when there are more.
 */
export function validationFailure(details: Iterable<ValidationDetail>): ValidationFailure {
  const kept: ValidationDetail[] = [];
  let count = 0;
  for (const detail of details) {
    if (++count <= MAX_VALIDATION_DETAILS) kept.push(shortened(detail));
  }
  const message = count > MAX_VALIDATION_DETAILS ? `Validation failed (${count} problems, the first ${MAX_VALIDATION_DETAILS} in details)` : 'Validation failed';
  return { message, details: kept };
}

function shortened({ property, constraints }: ValidationDetail): ValidationDetail {
  const short: Record<string, string> = {};
  for (const [rule, text] of Object.entries(constraints)) short[rule] = cut(text);
  return { property: cut(property), constraints: short };
}

function cut(text: string): string {
  return text.length > MAX_DETAIL_TEXT_LENGTH ? `${text.slice(0, MAX_DETAIL_TEXT_LENGTH)}…` : text;
}

/** Flattens class-validator's nested errors into one entry per failing property, depth first. */
export function* flattenValidationErrors(errors: ValidationError[], parentPath = ''): Generator<ValidationDetail> {
  for (const error of errors) {
    const property = parentPath ? `${parentPath}.${error.property}` : error.property;
    if (error.constraints) yield { property, constraints: error.constraints };
    yield* flattenValidationErrors(error.children ?? [], property);
  }
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
