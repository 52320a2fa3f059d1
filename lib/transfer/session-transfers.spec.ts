import { SessionTransfers } from './session-transfers.js';
import { TRANSFER_OVERHEAD_BYTES, type SharedByteBudget } from './transfer.options.js';

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
