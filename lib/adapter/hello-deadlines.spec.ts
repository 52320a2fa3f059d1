import { jest } from '@jest/globals';
import { HelloDeadlines } from './hello-deadlines.js';

describe('HelloDeadlines', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('expires each item once, timeoutMs after it started, in the order they started', () => {
    const expired: string[] = [];
    const deadlines = new HelloDeadlines<string>(1000, (item) => expired.push(item));
    deadlines.start('a');
    jest.advanceTimersByTime(400);
    deadlines.start('b');
    jest.advanceTimersByTime(599);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(expired).toEqual(['a']);
    jest.advanceTimersByTime(399);
    expect(expired).toEqual(['a']);
    jest.advanceTimersByTime(1);
    expect(expired).toEqual(['a', 'b']);
    jest.advanceTimersByTime(5000);
    expect(expired).toEqual(['a', 'b']);
    expect(deadlines.size).toBe(0);
  });

  it('never expires a stopped item, and holds no timer once nothing waits', () => {
    const expired: string[] = [];
    const deadlines = new HelloDeadlines<string>(1000, (item) => expired.push(item));
    deadlines.start('a');
    deadlines.start('b');
    deadlines.stop('a');
    jest.advanceTimersByTime(1000);
    expect(expired).toEqual(['b']);
    deadlines.start('c');
    deadlines.stop('c');
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(2000);
    expect(expired).toEqual(['b']);
  });

  it('lets an expiry stop or start other items', () => {
    const expired: string[] = [];
    const deadlines = new HelloDeadlines<string>(100, (item) => {
      expired.push(item);
      if (item === 'a') deadlines.stop('b');
      if (item === 'c') deadlines.start('d');
    });
    for (const item of ['a', 'b', 'c']) deadlines.start(item);
    jest.advanceTimersByTime(100);
    expect(expired).toEqual(['a', 'c']);
    jest.advanceTimersByTime(100);
    expect(expired).toEqual(['a', 'c', 'd']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('keeps one timer, for the oldest deadline, when an expiry starts a new wait', () => {
    const expired: string[] = [];
    const deadlines = new HelloDeadlines<string>(100, (item) => {
      expired.push(item);
      if (item === 'a') deadlines.start('d');
    });
    deadlines.start('a');
    jest.advanceTimersByTime(50);
    deadlines.start('x');
    jest.advanceTimersByTime(50);
    expect(expired).toEqual(['a']);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(50);
    expect(expired).toEqual(['a', 'x']);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(50);
    expect(expired).toEqual(['a', 'x', 'd']);
    expect(jest.getTimerCount()).toBe(0);
  });
});
