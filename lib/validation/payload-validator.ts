import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { flattenValidationErrors, type ValidationDetail } from '../errors/index.js';
import { DEFAULT_MAX_VALUES, type ValidationOptions } from './validation.options.js';

export type ValidationResult = { ok: true; value: unknown } | { ok: false; details: Iterable<ValidationDetail> };

const PRIMITIVES = new Map<unknown, 'string' | 'number' | 'boolean'>([
  [String, 'string'],
  [Number, 'number'],
  [Boolean, 'boolean'],
]);

/** Bodies declared as bytes: they take a binary message's payload as it is, without class-validator. */
const BINARY_TYPES = new Set<unknown>([Buffer, Uint8Array]);

/** Types that say nothing about the payload's shape (`any`, `unknown`, `object`, arrays, interfaces). */
const UNCHECKED = new Set<unknown>([undefined, Object, Array, Function, Promise]);

/** Whether a declared type says anything to check (a primitive or a class). */
export function isCheckedType(metatype: unknown): boolean {
  return PRIMITIVES.has(metatype) || (typeof metatype === 'function' && !UNCHECKED.has(metatype));
}

/**
 * Checks a payload against the declared type of a `@MessageBody()` parameter: primitives by
 * `typeof` (at once), classes with class-validator (after class-transformer made an instance of
 * them; a promise, as class-validator's constraints may be asynchronous).
 */
export function validatePayload(
  value: unknown,
  metatype: unknown,
  property: string,
  options: ValidationOptions,
): ValidationResult | Promise<ValidationResult> {
  const primitive = PRIMITIVES.get(metatype);
  if (primitive) {
    return typeof value === primitive && !(primitive === 'number' && Number.isNaN(value))
      ? { ok: true, value }
      : { ok: false, details: [{ property, constraints: { [`is${capitalize(primitive)}`]: `${property} must be a ${primitive}` } }] };
  }
  if (UNCHECKED.has(metatype) || typeof metatype !== 'function') return { ok: true, value };
  if (BINARY_TYPES.has(metatype)) {
    return value instanceof Uint8Array
      ? { ok: true, value }
      : { ok: false, details: [{ property, constraints: { isBinary: `${property} must be binary (a binary message or an upload)` } }] };
  }
  if (value instanceof Uint8Array) {
    return { ok: false, details: [{ property, constraints: { isObject: `${property} must be an object, not binary` } }] };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, details: [{ property, constraints: { isObject: `${property} must be an object` } }] };
  }
  return validateInstance(value, metatype as new () => object, property, options);
}

async function validateInstance(
  value: object,
  metatype: new () => object,
  property: string,
  options: ValidationOptions,
): Promise<ValidationResult> {
  const { transformOptions, maxValues = DEFAULT_MAX_VALUES, ...validatorOptions } = options;
  if (holdsMoreValuesThan(value, maxValues)) {
    return { ok: false, details: [{ property, constraints: { maxValues: `${property} must hold at most ${maxValues} values` } }] };
  }
  try {
    const instance: object = plainToInstance(metatype, value, transformOptions);
    const errors = await validate(instance, validatorOptions);
    return errors.length === 0 ? { ok: true, value: instance } : { ok: false, details: flattenValidationErrors(errors) };
  } catch {
    // class-transformer and class-validator recurse: a payload they cannot walk is invalid, not a server fault.
    return { ok: false, details: [{ property, constraints: { isValid: `${property} could not be validated` } }] };
  }
}

/** Whether `value` holds more than `max` values, itself included; stops counting past `max`. */
export function holdsMoreValuesThan(value: unknown, max: number): boolean {
  const pending: unknown[] = [value];
  let counted = 1;
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next !== 'object' || next === null) continue;
    for (const key in next) {
      if (!Object.hasOwn(next, key)) continue;
      if (++counted > max) return true;
      pending.push((next as Record<string, unknown>)[key]);
    }
  }
  return counted > max;
}

function capitalize(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}
