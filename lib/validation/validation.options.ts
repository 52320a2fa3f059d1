import type { ClassTransformOptions } from 'class-transformer';
import type { ValidatorOptions } from 'class-validator';

/**
 * The most JSON values a DTO body may hold (body-parser's `parameterLimit` is the same default):
 * class-transformer and class-validator walk every one of them, at some microseconds each.
 */
export const DEFAULT_MAX_VALUES = 1000;

/** class-validator's options plus how payloads are turned into DTO instances. */
export interface ValidationOptions extends ValidatorOptions {
  transformOptions?: ClassTransformOptions;
  /**
   * The most values (the body itself and every object, array, string, number, boolean and null
   * in it) a DTO body may hold; a larger one is refused before class-transformer sees it.
   * Default `DEFAULT_MAX_VALUES`.
   */
  maxValues?: number;
}
