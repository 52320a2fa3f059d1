import fc from 'fast-check';
import { preparePush } from '../protocol/index.js';
import { ReplayBuffer } from './replay-buffer.js';

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

  it('stays correct across internal compaction (many appends and trims)', () => {
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
