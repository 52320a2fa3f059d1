import { ANSWER_CACHE_SIZE, ANSWER_PENDING, AnswerCache } from './answer-cache.js';
import { ReplayBudget } from './replay-buffer.js';

describe('AnswerCache', () => {
  it('keeps at least the last 100 answers (DESIGN) and evicts the oldest id first', () => {
    expect(ANSWER_CACHE_SIZE).toBeGreaterThanOrEqual(100);
    const cache = new AnswerCache();
    for (let id = 1; id <= ANSWER_CACHE_SIZE + 5; id++) cache.set(id, `answer ${id}`);
    for (let id = 1; id <= 5; id++) expect(cache.get(id)).toBeUndefined();
    for (let id = 6; id <= ANSWER_CACHE_SIZE + 5; id++) expect(cache.get(id)).toBe(`answer ${id}`);
  });

  it('a pending id keeps its place when its answer arrives', () => {
    const cache = new AnswerCache();
    cache.markPending(1);
    cache.markPending(2);
    expect(cache.get(1)).toBe(ANSWER_PENDING);
    cache.set(2, 'two');
    cache.set(1, 'one');
    expect(cache.settled()).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
    // the oldest id (1) is still the first to go
    for (let id = 3; id <= ANSWER_CACHE_SIZE + 1; id++) cache.set(id, `answer ${id}`);
    expect(cache.get(1)).toBeUndefined();
    expect(cache.get(2)).toBe('two');
  });

  it('an id whose handler still runs is never evicted, however many answers come after it', () => {
    const cache = new AnswerCache(30_000);
    cache.markPending(1);
    for (let id = 2; id <= ANSWER_CACHE_SIZE * 3; id++) cache.set(id, 'x'.repeat(id % 2 ? 10 : 500)); // evicting by bytes
    expect(cache.get(1)).toBe(ANSWER_PENDING);
    expect(cache.hasPending).toBe(true);
    cache.set(1, 'one');
    expect(cache.hasPending).toBe(false);
    expect(cache.get(1)).toBeUndefined(); // older than every id kept, in a full cache: it goes first
  });

  it('keeps the answers of the newest ids when they come out of order', () => {
    const cache = new AnswerCache();
    for (let id = 1; id <= ANSWER_CACHE_SIZE + 10; id++) cache.markPending(id);
    for (let id = ANSWER_CACHE_SIZE + 10; id >= 1; id--) cache.set(id, `answer ${id}`);
    const kept = cache.settled().map(([id]) => id);
    expect(kept).toEqual(Array.from({ length: ANSWER_CACHE_SIZE }, (_, i) => i + 11));
  });

  it('settled() leaves out ids whose handler still runs', () => {
    const cache = new AnswerCache();
    cache.set(1, 'one');
    cache.markPending(2);
    cache.set(3, 'three');
    expect(cache.settled()).toEqual([
      [1, 'one'],
      [3, 'three'],
    ]);
  });

  it('keeps answers within maxBytes, dropping the oldest; an answer larger than that is not kept', () => {
    const big = 'x'.repeat(10_000);
    const cache = new AnswerCache(35_000);
    for (let id = 1; id <= 5; id++) cache.set(id, `${id}${big}`);
    expect(cache.settled().map(([id]) => id)).toEqual([3, 4, 5]);
    cache.set(6, 'y'.repeat(50_000));
    expect(cache.get(6)).toBeUndefined();
  });

  it('accounts its bytes in the shared budget, asks for relief when over it, and gives them back on dispose', () => {
    let relieved = 0;
    const budget = new ReplayBudget(25_000, () => relieved++);
    const cache = new AnswerCache(Number.POSITIVE_INFINITY, budget);
    for (let id = 1; id <= 3; id++) cache.set(id, 'x'.repeat(10_000));
    expect(relieved).toBe(1);
    expect(budget.used).toBeLessThanOrEqual(25_000);
    expect(cache.settled().map(([id]) => id)).toEqual([2, 3]);
    cache.dispose();
    expect(budget.used).toBe(0);
    cache.set(4, 'late');
    expect(cache.get(4)).toBeUndefined();
  });
});
