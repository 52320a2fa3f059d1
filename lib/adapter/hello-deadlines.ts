/**
 * Connections that must send `$hello` (or a token) within one fixed time. Every wait is equally
 * long, so they expire in the order they started: one timer, armed for the oldest, serves all.
 */
export class HelloDeadlines<T> {
  /** What waits, with its deadline (ms since the epoch), oldest first. */
  private readonly waiting = new Map<T, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly fire = (): void => this.expireDue();

  constructor(
    private readonly timeoutMs: number,
    private readonly expire: (item: T) => void,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  start(item: T): void {
    this.waiting.delete(item);
    this.waiting.set(item, performance.now() + this.timeoutMs);
    this.timer ??= setTimeout(this.fire, this.timeoutMs).unref();
  }

  stop(item: T): void {
    if (!this.waiting.delete(item) || this.waiting.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expireDue(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [item, deadline] of this.waiting) {
      if (deadline > now) {
        clearTimeout(this.timer); // one an expiry's own start armed
        this.timer = setTimeout(this.fire, deadline - now).unref();
        return;
      }
      this.waiting.delete(item);
      this.expire(item);
    }
  }
}
