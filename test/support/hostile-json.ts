/**
 * Raw JSON texts an attacker sends. They are built as text, without recursion, because
 * `JSON.stringify` can neither keep a `__proto__` key of an object literal nor write `-0`, and
 * recursion could not build 5,000 levels.
 */

/** Numbers at and beyond what a double holds exactly, written as a client may write them. */
export const HUGE_NUMBER_TEXTS = [
  '1e308',
  '-1e308',
  '1e400',
  '-0',
  '-0.0',
  '5e-324',
  '123456789012345678901234567890',
  '9007199254740993',
  '0.1e1',
] as const;

/** Property names the prototype bombs try to plant on `Object.prototype`. */
export const PROBE_KEYS = ['polluted', 'isAdmin'] as const;

/**
 * `levels` nested containers around `leaf` (nesting depth `levels` for a scalar leaf); `shape`
 * gives each level's kind in turn: `a` an array, `o` an object with one key.
 */
export function nestedText(levels: number, shape = 'a', leaf = '0'): string {
  const opens: string[] = [];
  const closes: string[] = [];
  for (let level = 0; level < levels; level++) {
    const isObject = shape[level % shape.length] === 'o';
    opens.push(isObject ? '{"k":' : '[');
    closes.push(isObject ? '}' : ']');
  }
  return opens.join('') + leaf + closes.reverse().join('');
}

/**
 * `levels` nested objects, each with `__proto__`, `constructor.prototype` and `prototype` keys
 * that carry `{ <probe>: "yes" }`. Nesting depth: `levels + 2`.
 */
export function prototypeBombText(levels: number, probe: string = PROBE_KEYS[0]): string {
  const poison = `{${JSON.stringify(probe)}:"yes"}`;
  let text = 'null';
  for (let level = 0; level < levels; level++) {
    text = `{"__proto__":${poison},"constructor":{"prototype":${poison}},"prototype":${poison},"next":${text}}`;
  }
  return text;
}

/** An object of huge and odd numbers (depth 2). */
export function hugeNumbersText(): string {
  const members = HUGE_NUMBER_TEXTS.map((number, index) => `"n${index}":${number}`);
  return `{${members.join(',')},"all":[${HUGE_NUMBER_TEXTS.join(',')}]}`;
}

/**
 * Nesting depth of a valid JSON text: the deepest level of `{` / `[` outside strings, every
 * container counted (also one a later duplicate key overrides), the outermost being level 1.
 */
export function textDepth(json: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const char = json[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '[' || char === '{') deepest = Math.max(deepest, ++depth);
    else if (char === ']' || char === '}') depth--;
  }
  return deepest;
}

/** A value nested `levels` arrays deep, built without recursion (JSON.stringify cannot write it). */
export function deeplyNestedValue(levels: number): unknown {
  let value: unknown = [];
  for (let level = 1; level < levels; level++) value = [value];
  return value;
}

/** Own properties of the built-in prototypes, with their values, to compare before and after. */
export function prototypeSnapshot(): Map<string, unknown> {
  const snapshot = new Map<string, unknown>();
  const prototypes = { Object: Object.prototype, Array: Array.prototype, Function: Function.prototype };
  for (const [owner, prototype] of Object.entries(prototypes)) {
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(prototype, name)!;
      snapshot.set(`${owner}.${name}`, descriptor.value ?? descriptor.get);
    }
    snapshot.set(`${owner}.[[Prototype]]`, Object.getPrototypeOf(prototype));
  }
  return snapshot;
}

/** Entries that differ between two snapshots (added, removed or replaced). */
export function prototypeChanges(before: Map<string, unknown>, after: Map<string, unknown>): string[] {
  const changed: string[] = [];
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    if (!before.has(name)) changed.push(`added ${name}`);
    else if (!after.has(name)) changed.push(`removed ${name}`);
    else if (before.get(name) !== after.get(name)) changed.push(`replaced ${name}`);
  }
  return changed;
}

/** Probe keys that fresh objects, arrays or functions now inherit. */
export function inheritedProbes(): string[] {
  const fresh: Array<Record<string, unknown>> = [{}, [] as unknown as Record<string, unknown>, (() => 0) as unknown as Record<string, unknown>];
  return PROBE_KEYS.filter((key) => fresh.some((value) => value[key] !== undefined));
}
