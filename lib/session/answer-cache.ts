import { frameSize, type OutgoingFrame } from '../protocol/index.js';
import type { ReplayBudget } from './replay-buffer.js';

/** Answers kept for duplicate client ids; DESIGN promises at least the last 100. */
export const ANSWER_CACHE_SIZE = 128;

/** Marks an id whose handler still runs: its answer will come, a duplicate gets nothing now. */
export const ANSWER_PENDING = Symbol('answer pending');

type Answer = OutgoingFrame | typeof ANSWER_PENDING;

/**
 * The answers (frames) to the most recent client message ids of a session, bounded by count, by
 * bytes, and by the budget the session's replay buffer shares with all others. An answer too
 * large to keep is still sent; its duplicate gets `$ack { duplicate: true }`.
 */
export class AnswerCache {
  /** Created on the first answer: a session of a plain client or of an idle one keeps none. */
  private answers: Map<number, Answer> | undefined;
  /** The ids in `answers`, oldest first from `oldest` on (a Map's own first key is slow to find after many deletes). */
  private order: number[] = [];
  private oldest = 0;
  private bytes = 0;
  private disposed = false;

  constructor(
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly budget?: ReplayBudget,
  ) {}

  get(id: number): Answer | undefined {
    return this.answers?.get(id);
  }

  /** The answers already known, oldest first. */
  settled(): Array<[number, OutgoingFrame]> {
    return [...(this.answers ?? [])].filter((entry): entry is [number, OutgoingFrame] => entry[1] !== ANSWER_PENDING);
  }

  /** Whether a handler of this session is still running. */
  get hasPending(): boolean {
    for (const answer of this.answers?.values() ?? []) if (answer === ANSWER_PENDING) return true;
    return false;
  }

  markPending(id: number): void {
    this.set(id, ANSWER_PENDING);
  }

  set(id: number, answer: Answer): void {
    if (this.disposed) return;
    const answers = (this.answers ??= new Map());
    const previous = answers.get(id);
    if (previous === undefined) this.order.push(id);
    this.account(sizeOf(answer) - sizeOf(previous));
    answers.set(id, answer);
    while (answers.size > ANSWER_CACHE_SIZE || this.bytes > this.maxBytes) this.dropOldest(answers);
    if (this.budget?.exceeded) {
      this.budget.relieve();
      while (answers.size > 0 && this.budget.exceeded) this.dropOldest(answers);
    }
  }

  /** Gives every byte back to the budget; nothing is kept from now on. */
  dispose(): void {
    this.disposed = true;
    this.account(-this.bytes);
    this.answers?.clear(); // also for a `set` whose budget relief ended this session
    this.answers = undefined;
    this.order = [];
    this.oldest = 0;
  }

  private dropOldest(answers: Map<number, Answer>): void {
    const id = this.order[this.oldest++];
    this.account(-sizeOf(answers.get(id)));
    answers.delete(id);
    if (this.oldest >= ANSWER_CACHE_SIZE) {
      this.order.splice(0, this.oldest);
      this.oldest = 0;
    }
  }

  private account(delta: number): void {
    this.bytes += delta;
    if (this.budget) this.budget.used += delta;
  }
}

/** What an answer costs: its frame (a string's length stands for its size; a binary one's bytes) plus the entry. */
function sizeOf(answer: Answer | undefined): number {
  if (answer === undefined) return 0;
  return (answer === ANSWER_PENDING ? 0 : frameSize(answer)) + ENTRY_OVERHEAD_BYTES;
}

const ENTRY_OVERHEAD_BYTES = 64;
