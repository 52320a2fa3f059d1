import fc from 'fast-check';
import { RecentIds } from './recent-ids.js';

describe('RecentIds', () => {
  it('tells an id seen among the last `capacity`, and forgets older ones', () => {
    const recent = new RecentIds(3);
    expect(['a', 'b', 'a', 'c', 'd', 'a', 'b'].map((id) => recent.add(id))).toEqual([true, true, false, true, true, true, true]);
  });

  it('agrees with a list of the last `capacity` distinct ids, for any sequence', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'), { maxLength: 200 }), (capacity, ids) => {
        const recent = new RecentIds(capacity);
        const kept: string[] = [];
        for (const id of ids) {
          const fresh = !kept.includes(id);
          expect(recent.add(id)).toBe(fresh);
          if (fresh) {
            kept.push(id);
            if (kept.length > capacity) kept.shift();
          }
        }
      }),
    );
  });
});
