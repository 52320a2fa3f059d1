interface Watched {
  startedAt: number;
  /** What answers it: a Cluster shard, or '' for a single Redis. */
  shard: string;
  reject: (error: Error) => void;
}

/**
 * Fails Redis commands that get no answer, without a timer per command: once no command of a
 * shard has been answered for `timeoutMs`, those of it waiting at least that long reject. Each
 * shard of a Cluster counts on its own (one that stops answering is not hidden by the others).
 * The check runs after the event loop has read what arrived, so a busy process never mistakes its
 * own delay for a silent Redis (and a broadcast that was delivered is never reported as failed
 * for that reason).
 */
export class CommandWatchdog {
  private readonly waiting = new Set<Watched>();
  /** When each shard last answered; a shard never seen counts from the watchdog's start. */
  private readonly lastAnswerAt = new Map<string, number>();
  private readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => setImmediate(() => this.check(performance.now())), Math.max(MIN_CHECK_MS, this.timeoutMs / 4));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  watch<T>(command: Promise<T>, shard = ''): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const watched: Watched = { startedAt: performance.now(), shard, reject };
      this.waiting.add(watched);
      command.then(
        (value) => this.settle(watched, () => resolve(value)),
        (error: unknown) => this.settle(watched, () => reject(error)),
      );
    });
  }

  check(now: number): void {
    for (const watched of this.waiting) {
      if (now - watched.startedAt < this.timeoutMs) continue;
      if (now - (this.lastAnswerAt.get(watched.shard) ?? this.startedAt) < this.timeoutMs) continue;
      this.waiting.delete(watched);
      watched.reject(new Error(`Redis did not answer within ${this.timeoutMs} ms`));
    }
  }

  private settle(watched: Watched, finish: () => void): void {
    this.lastAnswerAt.set(watched.shard, performance.now());
    if (this.waiting.delete(watched)) finish();
  }
}

const MIN_CHECK_MS = 10;
