/** Answers kept for duplicate client ids; DESIGN promises at least the last 100. */
export const ANSWER_CACHE_SIZE = 128;

/** Marks an id whose handler still runs: its answer will come, a duplicate gets nothing now. */
export const ANSWER_PENDING = Symbol('answer pending');

/** The answers (frames) to the most recent client message ids of a session. */
export class AnswerCache {
  private readonly answers = new Map<number, string | typeof ANSWER_PENDING>();

  get(id: number): string | typeof ANSWER_PENDING | undefined {
    return this.answers.get(id);
  }

  /** The answers already known, oldest first. */
  settled(): Array<[number, string]> {
    return [...this.answers].filter((entry): entry is [number, string] => entry[1] !== ANSWER_PENDING);
  }

  /** Whether a handler of this session is still running. */
  get hasPending(): boolean {
    for (const answer of this.answers.values()) if (answer === ANSWER_PENDING) return true;
    return false;
  }

  markPending(id: number): void {
    this.set(id, ANSWER_PENDING);
  }

  set(id: number, answer: string | typeof ANSWER_PENDING): void {
    this.answers.set(id, answer);
    if (this.answers.size > ANSWER_CACHE_SIZE) {
      const oldest = this.answers.keys().next().value as number;
      this.answers.delete(oldest);
    }
  }
}
