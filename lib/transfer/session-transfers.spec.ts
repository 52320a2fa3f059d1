import type { TransferId } from '../protocol/index.js';
import { SessionTransfers } from './session-transfers.js';
import { MIN_FREE_PROGRESS_BYTES, TRANSFER_OVERHEAD_BYTES, type SharedByteBudget } from './transfer.options.js';

/** An instance budget whose relief evicts `evicted` (a detached session's transfers), as the session registry does. */
function budgetEvicting(maxBytes: number, evicted: () => SessionTransfers | undefined): SharedByteBudget {
  return {
    used: 0,
    get exceeded() {
      return this.used > maxBytes;
    },
    relieve() {
      evicted()?.dispose();
    },
  };
}

describe('SessionTransfers: the instance budget', () => {
  it('gives back what a stream reserved when the relief it caused ended this very session', async () => {
    let transfers: SessionTransfers | undefined;
    const budget = budgetEvicting(1000, () => transfers);
    transfers = new SessionTransfers(undefined, budget);
    budget.used = 900; // another session holds most of the budget
    await expect(transfers.stream('file', new Uint8Array(500))).rejects.toThrow('the session has ended');
    expect(budget.used).toBe(900);
    expect(transfers.heldBytes).toBe(0);
  });

  it('gives back what an upload reserved when the relief ended this session', () => {
    let transfers: SessionTransfers | undefined;
    const budget = budgetEvicting(1000, () => transfers);
    transfers = new SessionTransfers(undefined, budget);
    budget.used = 900;
    expect(transfers.startUpload({ transfer: 'u1', event: 'file', size: 500 }, 1)).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
    expect(budget.used).toBe(900);
  });

  it('keeps a reservation that fits, and releases it on dispose', () => {
    const budget = budgetEvicting(10_000, () => undefined);
    const transfers = new SessionTransfers(undefined, budget);
    expect(transfers.startUpload({ transfer: 'u1', event: 'file', size: 500 }, 1)).toMatchObject({ ok: true });
    expect(budget.used).toBe(500 + TRANSFER_OVERHEAD_BYTES);
    transfers.dispose();
    expect(budget.used).toBe(0);
  });
});

describe('SessionTransfers: a complete upload until its handler answers', () => {
  function completed(budget: SharedByteBudget) {
    const transfers = new SessionTransfers(undefined, budget);
    const start = transfers.startUpload({ transfer: 'u1', event: 'file', size: 500 }, 1);
    if (!start.ok) throw new Error(start.message);
    return { transfers, release: transfers.finishUpload(start.upload) };
  }

  it('is no longer in progress, but holds its bytes until released, once', () => {
    const budget = budgetEvicting(10_000, () => undefined);
    const { transfers, release } = completed(budget);
    expect(transfers.uploadIds()).toEqual([]);
    expect(transfers.heldBytes).toBe(500);
    expect(budget.used).toBe(500 + TRANSFER_OVERHEAD_BYTES);
    release();
    release();
    expect(transfers.heldBytes).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('gives its bytes back when the session ends first; a release after that changes nothing', () => {
    const budget = budgetEvicting(10_000, () => undefined);
    const { transfers, release } = completed(budget);
    transfers.dispose();
    expect(budget.used).toBe(0);
    release();
    expect(budget.used).toBe(0);
    expect(transfers.heldBytes).toBe(0);
  });
});

describe('SessionTransfers: what a stream acknowledgement achieves', () => {
  /** A stream on a connection that takes everything; its transfer id as the `$stream` announcement gives it. */
  function streaming(size: number): { transfers: SessionTransfers; transfer: TransferId } {
    const transfers = new SessionTransfers();
    const texts: string[] = [];
    transfers.attach({ isOpen: true, write: (frame) => typeof frame === 'string' && texts.push(frame), hasRoomFor: () => true, maxTransferWriteBytes: Number.POSITIVE_INFINITY, whenDrained: () => undefined });
    void transfers.stream('file', new Uint8Array(size)).catch(() => undefined);
    const announced = texts.map((text) => JSON.parse(text) as { event: string; data: { transfer: TransferId } }).find((frame) => frame.event === '$stream');
    return { transfers, transfer: announced!.data.transfer };
  }

  it('a step of at least MIN_FREE_PROGRESS_BYTES is ok, a smaller one or none is small', () => {
    const { transfers, transfer } = streaming(10 * MIN_FREE_PROGRESS_BYTES);
    expect(transfers.acknowledgeStream(transfer, MIN_FREE_PROGRESS_BYTES)).toBe('ok');
    expect(transfers.acknowledgeStream(transfer, MIN_FREE_PROGRESS_BYTES)).toBe('small'); // again: nothing new
    expect(transfers.acknowledgeStream(transfer, MIN_FREE_PROGRESS_BYTES + 1)).toBe('small');
    expect(transfers.acknowledgeStream(transfer, 0)).toBe('small');
    expect(transfers.acknowledgeStream(transfer, 10 * MIN_FREE_PROGRESS_BYTES + 1)).toBe('beyond');
  });

  it('a small step that completes the stream is ok; after it the stream is unknown', () => {
    const { transfers, transfer } = streaming(MIN_FREE_PROGRESS_BYTES + 10);
    expect(transfers.acknowledgeStream(transfer, MIN_FREE_PROGRESS_BYTES)).toBe('ok');
    expect(transfers.acknowledgeStream(transfer, MIN_FREE_PROGRESS_BYTES + 10)).toBe('ok');
    expect(transfers.acknowledgeStream(transfer, MIN_FREE_PROGRESS_BYTES + 10)).toBe('unknown');
  });
});
