import { jest } from '@jest/globals';
import { LogThrottle, type ThrottledLevel } from './log-throttle.js';

describe('LogThrottle', () => {
  const WINDOW_MS = 10_000;
  let now: number;
  let written: Array<[ThrottledLevel, string]>;
  let throttle: LogThrottle;

  beforeEach(() => {
    now = 1_000_000;
    written = [];
    throttle = new LogThrottle((level, message) => written.push([level, message]), { linesPerWindow: 3, windowMs: WINDOW_MS }, () => now);
  });

  afterEach(() => throttle.dispose());

  it('writes the first lines of a window per key, then counts the rest and reports them when the window ends', () => {
    for (let i = 0; i < 10; i++) throttle.log('refused 403', 'warn', `403 #${i}`);
    throttle.log('refused 404', 'warn', '404 #0');
    expect(written).toEqual([
      ['warn', '403 #0'],
      ['warn', '403 #1'],
      ['warn', '403 #2'],
      ['warn', '404 #0'],
    ]);
    now += WINDOW_MS;
    throttle.log('refused 403', 'warn', '403 #10');
    expect(written.slice(4)).toEqual([
      ['warn', 'refused 403: 7 more suppressed in the last 10 s'],
      ['warn', '403 #10'],
    ]);
  });

  it('reports what it held back from its one timer when no later line comes', () => {
    jest.useFakeTimers();
    try {
      const timed = new LogThrottle((level, message) => written.push([level, message]), { linesPerWindow: 1, windowMs: WINDOW_MS });
      timed.log('closed 4009', 'warn', 'a');
      timed.log('closed 4009', 'warn', 'b');
      timed.log('closed 4009 (routine)', 'debug', 'c');
      timed.log('closed 4009 (routine)', 'debug', 'd');
      expect(jest.getTimerCount()).toBe(1);
      jest.advanceTimersByTime(WINDOW_MS);
      expect(written).toEqual([
        ['warn', 'a'],
        ['debug', 'c'],
        ['warn', 'closed 4009: 1 more suppressed in the last 10 s'],
        ['debug', 'closed 4009 (routine): 1 more suppressed in the last 10 s'],
      ]);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('dispose reports what is held back and stops the timer', () => {
    for (let i = 0; i < 5; i++) throttle.log('k', 'debug', 'x');
    throttle.dispose();
    expect(written.at(-1)).toEqual(['debug', 'k: 2 more suppressed in the last 10 s']);
  });
});
