import { expect } from '@jest/globals';
import { sleep, within } from './wait.js';

/** Broadcasts numbered pushes every `everyMs` until stopped; records which ones resolved. */
export function broadcastLoop(send: (n: number) => Promise<void>, everyMs: number, max = 5000) {
  const resolved: number[] = [];
  let stop = false;
  const done = (async () => {
    for (let n = 0; n < max && !stop; n++) {
      await send(n).then(
        () => resolved.push(n),
        () => undefined,
      );
      await sleep(everyMs);
    }
  })();
  return {
    resolved,
    stop: async () => {
      stop = true;
      await within(done, 10000, 'the broadcast loop');
    },
  };
}

/** Every resolved broadcast arrived exactly once, in order (unresolved ones at most once, in order). */
export function expectExactlyOnceInOrder(received: number[], resolved: number[]): void {
  expect(received).toEqual([...received].sort((a, b) => a - b));
  expect(new Set(received).size).toBe(received.length);
  const got = new Set(received);
  expect(resolved.filter((n) => !got.has(n))).toEqual([]);
}
