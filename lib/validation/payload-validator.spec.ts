import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsArray, IsOptional, IsString, Validate, ValidateNested, ValidatorConstraint, type ValidatorConstraintInterface } from 'class-validator';
import fc from 'fast-check';
import { holdsMoreValuesThan, validatePayload } from './payload-validator.js';

/** Every value in `value`, itself included: the count `holdsMoreValuesThan` compares. */
function countValues(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 1;
  return 1 + Object.values(value).reduce<number>((sum, child) => sum + countValues(child), 0);
}

let walked = 0;
@ValidatorConstraint({ name: 'counting' })
class CountingConstraint implements ValidatorConstraintInterface {
  validate(): boolean {
    walked++;
    return true;
  }
}

class ItemDto {
  @IsOptional()
  @IsString()
  @Validate(CountingConstraint)
  label?: string;
}

class ListDto {
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => ItemDto)
  items!: ItemDto[];
}

const options = { whitelist: true, forbidNonWhitelisted: true, maxValues: 10 };

describe('holdsMoreValuesThan', () => {
  it('counts the value itself and every object, array and primitive in it', () => {
    expect(holdsMoreValuesThan(null, 0)).toBe(true);
    expect(holdsMoreValuesThan('x', 1)).toBe(false);
    expect(holdsMoreValuesThan({}, 1)).toBe(false);
    expect(holdsMoreValuesThan({ items: [{}, {}] }, 4)).toBe(false);
    expect(holdsMoreValuesThan({ items: [{}, {}] }, 3)).toBe(true);
    expect(holdsMoreValuesThan([[[[]]]], 3)).toBe(true);
  });

  it('agrees with a full count for any JSON value and bound', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.nat(300), (value, max) => {
        expect(holdsMoreValuesThan(value, max)).toBe(countValues(value) > max);
      }),
      { numRuns: 500 },
    );
  });

  it('stops counting past the bound: a bound of 10 reads a 200,000-item array no further', () => {
    const huge: unknown[] = Array.from({ length: 200_000 }, () => ({}));
    Object.defineProperty(huge, 10, {
      enumerable: true,
      get: () => {
        throw new Error('read past the bound');
      },
    });
    expect(holdsMoreValuesThan(huge, 10)).toBe(true);
  });

  it('does not count inherited properties', () => {
    const value = Object.create({ inherited: 1, other: 2 }) as object;
    expect(holdsMoreValuesThan(value, 1)).toBe(false);
  });
});

describe('validatePayload with maxValues', () => {
  beforeEach(() => {
    walked = 0;
  });

  it('validates a DTO body of maxValues values with class-validator', async () => {
    // the body, the array and four items of one property each: 1 + 1 + 4 × 2 = 10 values
    const value = { items: Array.from({ length: 4 }, () => ({ label: 'a' })) };
    const result = await validatePayload(value, ListDto, 'data', options);
    expect(result).toMatchObject({ ok: true });
    expect(walked).toBe(4);
  });

  it('refuses a larger one with the maxValues constraint before class-transformer or class-validator sees it', async () => {
    const value = { items: Array.from({ length: 20_000 }, () => ({ label: 'a' })) };
    const result = await validatePayload(value, ListDto, 'data', options);
    expect(result).toEqual({ ok: false, details: [{ property: 'data', constraints: { maxValues: 'data must hold at most 10 values' } }] });
    expect(walked).toBe(0);
  });

  it('names a @MessageBody(property) in the answer', async () => {
    const result = await validatePayload({ items: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, ListDto, 'list', options);
    expect(result).toEqual({ ok: false, details: [{ property: 'list', constraints: { maxValues: 'list must hold at most 10 values' } }] });
  });

  it('takes 1,000 values when the options do not say', async () => {
    const items = (n: number) => ({ items: Array.from({ length: n }, () => ({})) });
    const { maxValues: _, ...withoutBound } = options;
    expect(await validatePayload(items(998), ListDto, 'data', withoutBound)).toMatchObject({ ok: true });
    expect(await validatePayload(items(999), ListDto, 'data', withoutBound)).toMatchObject({ ok: false, details: [{ constraints: { maxValues: expect.any(String) } }] });
  });

  it('leaves primitive bodies to typeof: a long string is one value', () => {
    expect(validatePayload('x'.repeat(10_000), String, 'data', options)).toEqual({ ok: true, value: 'x'.repeat(10_000) });
  });
});
