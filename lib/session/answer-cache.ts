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
 * large to keep is still sent; its duplicate gets `$ack { duplicate: true }`. The ids whose
 * handler still runs are kept apart and never evicted: there are only as many as handlers running.
 */
export class AnswerCache {
  /** Created on the first answer: a session of a plain client or of an idle one keeps none. */
  private answers: Map<number, OutgoingFrame> | undefined;
  private readonly running = new Set<number>();
  /** The ids in `answers` in ascending order from `oldest` on (a Map's own first key is slow to find after many deletes). */
  private order: number[] = [];
  private oldest = 0;
  private bytes = 0;
  private disposed = false;

  constructor(
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly budget?: ReplayBudget,
  ) {}

  get(id: number): Answer | undefined {
    return this.running.has(id) ? ANSWER_PENDING : this.answers?.get(id);
  }

  /** The answers already known, by id. */
  settled(): Array<[number, OutgoingFrame]> {
    return this.order.slice(this.oldest).map((id) => [id, this.answers!.get(id)!]);
  }

  /** Whether a handler of this session is still running. */
  get hasPending(): boolean {
    return this.running.size > 0;
  }

  markPending(id: number): void {
    if (!this.disposed) this.running.add(id);
  }

  set(id: number, answer: OutgoingFrame): void {
    if (this.disposed) return;
    this.running.delete(id);
    const answers = (this.answers ??= new Map());
    const previous = answers.get(id);
    if (previous === undefined) this.insertInOrder(id);
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
    this.running.clear();
    this.order = [];
    this.oldest = 0;
  }

  /** Ids mostly come answered in order: the search starts from the newest. */
  private insertInOrder(id: number): void {
    let at = this.order.length;
    while (at > this.oldest && this.order[at - 1] > id) at--;
    if (at === this.order.length) this.order.push(id);
    else this.order.splice(at, 0, id);
  }

  private dropOldest(answers: Map<number, OutgoingFrame>): void {
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
function sizeOf(answer: OutgoingFrame | undefined): number {
  return answer === undefined ? 0 : frameSize(answer) + ENTRY_OVERHEAD_BYTES;
}

const ENTRY_OVERHEAD_BYTES = 64;
