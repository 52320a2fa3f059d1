import fc from 'fast-check';
import { preparePush } from '../protocol/index.js';
import { ReplayBudget, ReplayBuffer } from './replay-buffer.js';

const push = (n: number) => preparePush('tick', JSON.stringify({ n }), `i:${n}`);
const frame = (n: number, seq = n) => `{"event":"tick","data":{"n":${n}},"seq":${seq}}`;

function filled(capacity: number, count: number): ReplayBuffer {
  const buffer = new ReplayBuffer(capacity);
  for (let seq = 1; seq <= count; seq++) buffer.append(seq, push(seq));
  return buffer;
}

/** The frames after `lastSeq` up to `currentSeq`, or undefined when the buffer no longer covers them. */
function framesAfter(buffer: ReplayBuffer, lastSeq: number, currentSeq: number): string[] | undefined {
  if (!buffer.covers(lastSeq, currentSeq)) return undefined;
  const frames: string[] = [];
  for (let seq = lastSeq + 1; seq <= currentSeq; seq++) frames.push(buffer.at(seq)!.frame(seq));
  return frames;
}

describe('ReplayBuffer', () => {
  it('keeps at most `capacity` entries, dropping the oldest', () => {
    const buffer = filled(3, 5);
    expect(buffer.size).toBe(3);
    expect([...buffer.entries()].map((e) => e.seq)).toEqual([3, 4, 5]);
  });

  it('framesAfter returns every frame after lastSeq, in order, with its seq', () => {
    const buffer = filled(10, 4);
    expect(framesAfter(buffer, 0, 4)).toEqual([frame(1), frame(2), frame(3), frame(4)]);
    expect(framesAfter(buffer, 2, 4)).toEqual([frame(3), frame(4)]);
    expect(framesAfter(buffer, 4, 4)).toEqual([]);
  });

  it('framesAfter is undefined when the first missed push is gone (never a silent gap)', () => {
    const buffer = filled(3, 5); // holds 3, 4, 5
    expect(framesAfter(buffer, 2, 5)).toEqual([frame(3), frame(4), frame(5)]);
    expect(framesAfter(buffer, 1, 5)).toBeUndefined();
    expect(framesAfter(buffer, 0, 5)).toBeUndefined();
  });

  it('an empty buffer covers only a client that is up to date', () => {
    const buffer = filled(5, 3);
    buffer.trimThrough(3);
    expect(buffer.size).toBe(0);
    expect(framesAfter(buffer, 3, 3)).toEqual([]);
    expect(framesAfter(buffer, 2, 3)).toBeUndefined();
  });

  it('trimThrough drops what the client confirmed, cumulatively, and nothing more', () => {
    const buffer = filled(10, 6);
    buffer.trimThrough(2);
    expect([...buffer.entries()].map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    buffer.trimThrough(1); // an older ack changes nothing
    expect(buffer.size).toBe(4);
    expect(framesAfter(buffer, 2, 6)).toEqual([frame(3), frame(4), frame(5), frame(6)]);
    expect(framesAfter(buffer, 1, 6)).toBeUndefined();
    buffer.trimThrough(6);
    expect(buffer.size).toBe(0);
  });

  it('stays correct as its ring wraps around and grows (many appends and trims)', () => {
    const buffer = new ReplayBuffer(100);
    for (let seq = 1; seq <= 1000; seq++) {
      buffer.append(seq, push(seq));
      if (seq % 7 === 0) buffer.trimThrough(seq - 3);
    }
    const seqs = [...buffer.entries()].map((e) => e.seq);
    // the last trim was at 994 (through 991)
    expect(seqs).toEqual([992, 993, 994, 995, 996, 997, 998, 999, 1000]);
    expect(framesAfter(buffer, 997, 1000)).toEqual([frame(998), frame(999), frame(1000)]);
    expect(framesAfter(buffer, 991, 1000)).toHaveLength(9);
    expect(framesAfter(buffer, 990, 1000)).toBeUndefined();
  });

  it('lets a large ring go once empty, and keeps numbering from the next push', () => {
    const buffer = filled(1000, 300);
    buffer.trimThrough(300);
    expect(buffer.size).toBe(0);
    expect(buffer.covers(300, 300)).toBe(true);
    buffer.append(301, push(301));
    expect([...buffer.entries()].map((e) => e.seq)).toEqual([301]);
    expect(framesAfter(buffer, 300, 301)).toEqual([frame(301)]);
  });

  it('property: framesAfter(last) is exactly the pushes last+1..current, or undefined when one is gone', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.oneof(fc.constant<'push'>('push'), fc.integer({ min: 0, max: 200 })), { maxLength: 200 }),
        fc.integer({ min: 0, max: 200 }),
        (capacity, ops, lastSeqSeed) => {
          const buffer = new ReplayBuffer(capacity);
          let current = 0;
          let acked = 0;
          for (const op of ops) {
            if (op === 'push') buffer.append(++current, push(current));
            else if (op <= current && op > acked) {
              acked = op;
              buffer.trimThrough(op);
            }
          }
          const lastSeq = Math.min(lastSeqSeed, current);
          const frames = framesAfter(buffer, lastSeq, current);
          const oldestKept = Math.max(acked + 1, current - capacity + 1, 1);
          if (lastSeq === current) {
            expect(frames).toEqual([]);
          } else if (lastSeq + 1 >= oldestKept) {
            const expected = [];
            for (let seq = lastSeq + 1; seq <= current; seq++) expected.push(frame(seq));
            expect(frames).toEqual(expected);
          } else {
            expect(frames).toBeUndefined();
          }
        },
      ),
    );
  });
});

describe('ReplayBuffer: byte bounds', () => {
  const sized = (n: number, bytes: number) => preparePush('blob', JSON.stringify('x'.repeat(bytes)), `b:${n}`);

  it('drops the oldest pushes beyond maxBytes, so a resume that needs them is not covered', () => {
    const one = sized(0, 1000).byteLength;
    const buffer = new ReplayBuffer(1000, one * 3);
    for (let seq = 1; seq <= 5; seq++) buffer.append(seq, sized(seq, 1000));
    expect([...buffer.entries()].map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(buffer.byteLength).toBe(one * 3);
    expect(buffer.covers(2, 5)).toBe(true);
    expect(buffer.covers(1, 5)).toBe(false);
  });

  it('keeps no push larger than maxBytes on its own', () => {
    const buffer = new ReplayBuffer(10, 100);
    buffer.append(1, sized(1, 500));
    expect(buffer.size).toBe(0);
    expect(buffer.byteLength).toBe(0);
  });

  it('accounts every byte in the shared budget and gives it back on trim and dispose', () => {
    const budget = new ReplayBudget(Number.POSITIVE_INFINITY);
    const a = new ReplayBuffer(10, Number.POSITIVE_INFINITY, budget);
    const b = new ReplayBuffer(10, Number.POSITIVE_INFINITY, budget);
    for (let seq = 1; seq <= 4; seq++) a.append(seq, sized(seq, 100));
    b.append(1, sized(9, 2000));
    expect(budget.used).toBe(a.byteLength + b.byteLength);
    a.trimThrough(2);
    expect(budget.used).toBe(a.byteLength + b.byteLength);
    b.dispose();
    b.append(2, sized(10, 100)); // a disposed buffer keeps nothing more
    expect(b.size).toBe(0);
    expect(budget.used).toBe(a.byteLength);
  });

  it('over the budget, asks for relief first, then drops its own oldest pushes', () => {
    const one = sized(0, 1000).byteLength;
    const relieved: number[] = [];
    const budget = new ReplayBudget(one * 4, () => relieved.push(budget.used));
    const other = new ReplayBuffer(10, Number.POSITIVE_INFINITY, budget);
    other.append(1, sized(1, 1000));
    const buffer = new ReplayBuffer(10, Number.POSITIVE_INFINITY, budget);
    for (let seq = 1; seq <= 4; seq++) buffer.append(seq, sized(seq, 1000));
    expect(relieved).toEqual([one * 5]);
    expect(budget.used).toBeLessThanOrEqual(one * 4);
    expect([...buffer.entries()].map((e) => e.seq)).toEqual([2, 3, 4]);
  });

  it('never lets the budget exceed its bound, whatever is appended, trimmed or disposed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(2), fc.constantFrom('append', 'trim', 'dispose'), fc.nat(3000)), { maxLength: 200 }),
        (steps) => {
          const budget = new ReplayBudget(8000);
          const buffers = [0, 1, 2].map(() => new ReplayBuffer(50, 4000, budget));
          const seqs = [0, 0, 0];
          for (const [index, action, size] of steps) {
            if (action === 'append') buffers[index].append(++seqs[index], sized(seqs[index], size));
            else if (action === 'trim') buffers[index].trimThrough(seqs[index] - 2);
            else buffers[index].dispose();
            expect(budget.used).toBeLessThanOrEqual(8000);
            expect(budget.used).toBe(buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0));
            for (const buffer of buffers) expect(buffer.byteLength).toBeLessThanOrEqual(4000);
          }
        },
      ),
    );
  });
});
