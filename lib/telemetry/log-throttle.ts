export type ThrottledLevel = 'error' | 'warn' | 'debug';

export interface LogThrottleOptions {
  /** Lines written per key in each window; the rest are counted and summed up in one line. */
  linesPerWindow: number;
  windowMs: number;
}

export const DEFAULT_LOG_THROTTLE: LogThrottleOptions = { linesPerWindow: 5, windowMs: 10_000 };

interface Window {
  startedAt: number;
  written: number;
  suppressed: number;
  level: ThrottledLevel;
}

/**
 * Writes at most `linesPerWindow` lines per key (a kind of event, e.g. "upgrade refused 403") in
 * each window; what it holds back is reported as one "suppressed" line per key when the window
 * ends. One timer for all keys, running only while something is held back.
 */
export class LogThrottle {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (level: ThrottledLevel, message: string) => void,
    private readonly options: LogThrottleOptions = DEFAULT_LOG_THROTTLE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  log(key: string, level: ThrottledLevel, message: string): void {
    const now = this.now();
    let window = this.windows.get(key);
    if (window && now - window.startedAt >= this.options.windowMs) {
      this.close(key, window);
      window = undefined;
    }
    if (!window) {
      window = { startedAt: now, written: 0, suppressed: 0, level };
      this.windows.set(key, window);
    }
    if (window.written < this.options.linesPerWindow) {
      window.written++;
      this.write(level, message);
      return;
    }
    window.suppressed++;
    this.timer ??= setInterval(() => this.flush(), this.options.windowMs).unref();
  }

  /** Ends the windows that are over, reporting what they held back. */
  flush(now = this.now()): void {
    for (const [key, window] of this.windows) {
      if (now - window.startedAt >= this.options.windowMs) this.close(key, window);
    }
    if (![...this.windows.values()].some((window) => window.suppressed > 0)) this.stopTimer();
  }

  dispose(): void {
    this.flush(Number.POSITIVE_INFINITY);
    this.stopTimer();
  }

  private close(key: string, window: Window): void {
    this.windows.delete(key);
    if (window.suppressed > 0) {
      this.write(window.level, `${key}: ${window.suppressed} more suppressed in the last ${Math.round(this.options.windowMs / 1000)} s`);
    }
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
