import type { ClassTransformOptions } from 'class-transformer';
import type { ValidatorOptions } from 'class-validator';

/** class-validator's options plus how payloads are turned into DTO instances. */
export interface ValidationOptions extends ValidatorOptions {
  transformOptions?: ClassTransformOptions;
}
