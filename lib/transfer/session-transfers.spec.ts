import fc from 'fast-check';
import { chunkPayloadBytes, decodeBinaryFrame, type TransferId } from '../protocol/index.js';
import { SessionTransfers } from './session-transfers.js';
import {
  DEFAULT_TRANSFER_LIMITS,
  MIN_FREE_PROGRESS_BYTES,
  TRANSFER_OVERHEAD_BYTES,
  type SharedByteBudget,
  type TransferLimits,
} from './transfer.options.js';

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

describe('SessionTransfers: a stream is written in whole chunks', () => {
  /**
   * Streams `size` bytes to a client that acknowledges each chunk as it arrives, as the client
   * does; returns the chunks written, what each acknowledgement achieved and the most bytes ever
   * unacknowledged.
   */
  function streamedTo(size: number, limits: TransferLimits, maxTransferWriteBytes: number) {
    const transfers = new SessionTransfers(limits);
    const chunks: Array<{ offset: number; length: number }> = [];
    let transfer: TransferId | undefined;
    transfers.attach({
      isOpen: true,
      write: (frame) => {
        if (typeof frame === 'string') {
          const { event, data } = JSON.parse(frame) as { event: string; data: { transfer: TransferId } };
          if (event === '$stream') transfer = data.transfer;
          return;
        }
        const head = decodeBinaryFrame(frame.head);
        if (!head.ok) throw new Error(head.reason);
        chunks.push({ offset: head.header.offset as number, length: frame.payload.byteLength });
      },
      hasRoomFor: () => true,
      maxTransferWriteBytes,
      whenDrained: () => undefined,
    });
    void transfers.stream('file', new Uint8Array(size)).catch(() => undefined);
    const outcomes = new Set<string>();
    let acked = 0;
    let mostUnacknowledged = 0;
    for (let i = 0; i < chunks.length && i < 100_000; i++) {
      const { offset, length } = chunks[i]!;
      const written = chunks.at(-1)!;
      mostUnacknowledged = Math.max(mostUnacknowledged, written.offset + written.length - acked);
      acked = offset + length;
      outcomes.add(transfers.acknowledgeStream(transfer!, acked)); // writes the next chunks
    }
    return { transfer: transfer!, chunks, outcomes, acked, mostUnacknowledged };
  }

  const LEAST: TransferLimits = { ...DEFAULT_TRANSFER_LIMITS, window: 1024, maxFrameBytes: 1024 };

  it.each([
    ['the defaults', 5 * 1024 * 1024 + 123, DEFAULT_TRANSFER_LIMITS, DEFAULT_TRANSFER_LIMITS.window / 2],
    ['the least send buffer and frame (1 KiB): frames of 512 bytes', 200_000, LEAST, LEAST.window / 2],
  ])('%s: every chunk but the last is as large as a frame allows, each acknowledgement is free', (_, size, limits, maxTransferWriteBytes) => {
    const { window, maxFrameBytes } = limits;
    const { transfer, chunks, outcomes, acked, mostUnacknowledged } = streamedTo(size, limits, maxTransferWriteBytes);
    const whole = chunkPayloadBytes(transfer, size, Math.min(maxFrameBytes, maxTransferWriteBytes), window);
    expect(acked).toBe(size);
    expect(new Set(chunks.slice(0, -1).map(({ length }) => length))).toEqual(new Set([whole]));
    expect(chunks.at(-1)!.length).toBe(size - whole * (chunks.length - 1));
    expect(outcomes).toEqual(new Set(['ok']));
    expect(mostUnacknowledged).toBeLessThanOrEqual(window);
    expect(mostUnacknowledged).toBeGreaterThan(window - whole); // the window is used, up to less than one chunk
  });

  it('for any window, frame and send buffer: whole chunks, never more than the window unacknowledged, each acknowledgement free', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 1, max: 64 * 1024 }),
        fc.integer({ min: 1, max: 128 * 1024 }),
        fc.integer({ min: 512, max: 1024 * 1024 }),
        (size, window, maxFrameBytes, maxTransferWriteBytes) => {
          const limits = { ...DEFAULT_TRANSFER_LIMITS, window, maxFrameBytes };
          const { transfer, chunks, outcomes, acked, mostUnacknowledged } = streamedTo(size, limits, maxTransferWriteBytes);
          const whole = chunkPayloadBytes(transfer, size, Math.min(maxFrameBytes, maxTransferWriteBytes), window);
          expect(acked).toBe(size);
          expect(chunks.slice(0, -1).every(({ length }) => length === whole)).toBe(true);
          expect(chunks.length).toBe(Math.ceil(size / whole));
          expect(outcomes).toEqual(new Set(['ok']));
          expect(mostUnacknowledged).toBeLessThanOrEqual(window);
        },
      ),
      { numRuns: 100, seed: 15 },
    );
  });
});
