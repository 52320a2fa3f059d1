import { ANSWER_CACHE_SIZE, ANSWER_PENDING, AnswerCache } from './answer-cache.js';

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
});
