/** Presence lines (`joined`, `left`, `renamed`) one instance sends per second, on average. */
export const PRESENCE_LINES_PER_SECOND = 5;

/** Presence lines one instance may send at once, after a quiet moment. */
export const PRESENCE_BURST = 20;

/**
 * A token bucket for the presence lines of the whole instance. A presence line goes to every
 * member of a room, connected or waiting for a resume, so without a budget anonymous clients that
 * connect, join a busy room and drop, over and over, make each cycle cost O(room) and fill every
 * member's replay buffer with `joined` lines. Beyond the budget presence lines are left out;
 * chat lines never are.
 */
export class PresenceBudget {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly perSecond = PRESENCE_LINES_PER_SECOND,
    private readonly burst = PRESENCE_BURST,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.refilledAt = now();
  }

  /** Takes one line's worth; false when the budget is spent. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
  }
}
