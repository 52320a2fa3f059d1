import fc from 'fast-check';
import {
  ChannelSequencer,
  decodeSequenced,
  encodeSequenced,
  MAX_HELD_BYTES,
  type ChannelHistory,
  type SequencedMessage,
} from './channel-sequencer.js';
import type { ChannelPosition } from './broadcast.transport.js';

/** Channels' histories as Redis would hold them (`ch` unless named), and a sequencer reading them. */
function setup({ historySize = 100, idleResetMs = 60_000, maxHeld = 1000, maxHeldBytes = MAX_HELD_BYTES, afterRead = (): void => undefined } = {}) {
  let clock = 1_000_000;
  const published = new Map<string, SequencedMessage[]>();
  let epoch = 'e1';
  const delivered: string[] = [];
  const deliveredOn = new Map<string, string[]>();
  const lost: string[] = [];
  const dropped: string[] = [];
  let failReads = false;
  const historyOf = (channel: string): SequencedMessage[] => published.get(channel) ?? published.set(channel, []).get(channel)!;
  const publishOn = (channel: string, payload: string): SequencedMessage => {
    const offset = (historyOf(channel).filter((m) => m.epoch === epoch).at(-1)?.offset ?? 0) + 1;
    const message = { epoch, offset, payload };
    historyOf(channel).push(message);
    return message;
  };
  const deliver = (channel: string, payload: string): void => {
    delivered.push(payload);
    deliveredOn.set(channel, [...(deliveredOn.get(channel) ?? []), payload]);
  };
  const readHistory = async (channel: string, after: ChannelPosition): Promise<ChannelHistory> => {
    await Promise.resolve();
    if (failReads) throw new Error('Redis down');
    const current = historyOf(channel).filter((m) => m.epoch === epoch);
    const last = current.at(-1);
    if (!last) return { head: undefined, messages: [] };
    const afterOffset = after.epoch === epoch ? after.offset : 0;
    const kept = current.slice(-historySize);
    const history = { head: { epoch, offset: last.offset }, messages: kept.filter((m) => m.offset > afterOffset) };
    afterRead();
    return history;
  };
  const io = { deliver, readHistory, lost: (channel: string) => lost.push(channel), dropped: (_: string, { payload }: SequencedMessage) => dropped.push(payload) };
  const sequencer = new ChannelSequencer(io, idleResetMs, maxHeld, maxHeldBytes, () => clock);
  return {
    sequencer,
    delivered,
    deliveredOn: (channel: string) => deliveredOn.get(channel) ?? [],
    lost,
    dropped,
    publish: (payload: string) => publishOn('ch', payload),
    publishOn,
    newEpoch: (next: string) => {
      epoch = next;
    },
    wipe: () => {
      published.clear();
    },
    advance: (ms: number) => {
      clock += ms;
    },
    failReads: (fail: boolean) => {
      failReads = fail;
    },
  };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('ChannelSequencer', () => {
  it('delivers messages in order, once', () => {
    const t = setup();
    const messages = ['a', 'b', 'c'].map(t.publish);
    for (const m of [messages[0], messages[1], messages[1], messages[2], messages[0]]) t.sequencer.receive('ch', m);
    expect(t.delivered).toEqual(['a', 'b', 'c']);
    expect(t.lost).toEqual([]);
  });

  it('fills a gap from the history, then delivers what came meanwhile, in order', async () => {
    const t = setup();
    const m = ['a', 'b', 'c', 'd', 'e'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.sequencer.receive('ch', m[3]); // b and c were missed
    t.sequencer.receive('ch', m[4]);
    await flush();
    expect(t.delivered).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(t.sequencer.recovering).toBe(false);
  });

  it('catches up after a reconnect even when nothing new arrives', async () => {
    const t = setup();
    t.sequencer.receive('ch', t.publish('a'));
    t.publish('b');
    t.publish('c');
    await t.sequencer.catchUp('ch');
    expect(t.delivered).toEqual(['a', 'b', 'c']);
    await t.sequencer.catchUp('ch');
    expect(t.delivered).toEqual(['a', 'b', 'c']);
  });

  it('reports a loss when the history no longer holds the missed messages, and goes on from what it has', async () => {
    const t = setup({ historySize: 2 });
    t.sequencer.receive('ch', t.publish('a'));
    for (const p of ['b', 'c', 'd', 'e']) t.publish(p);
    await t.sequencer.catchUp('ch');
    expect(t.lost).toEqual(['ch']);
    expect(t.delivered).toEqual(['a', 'd', 'e']);
    const next = t.publish('f');
    t.sequencer.receive('ch', next);
    expect(t.delivered.at(-1)).toBe('f');
  });

  it('reports a loss when Redis lost its data (a restart, which cuts the subscriber): no record, or a new epoch', async () => {
    const t = setup();
    t.sequencer.receive('ch', t.publish('a'));
    t.sequencer.disconnected();
    t.wipe();
    await t.sequencer.catchUp('ch');
    expect(t.lost).toEqual(['ch']);
    t.newEpoch('e2');
    t.sequencer.receive('ch', t.publish('x'));
    await flush();
    t.sequencer.disconnected();
    t.newEpoch('e3');
    t.sequencer.receive('ch', t.publish('y'));
    await flush();
    expect(t.lost).toEqual(['ch', 'ch']);
    expect(t.delivered).toEqual(['a', 'x', 'y']);
  });

  it('a channel idle past idleResetMs may restart its epoch without a loss', async () => {
    const t = setup({ idleResetMs: 1000 });
    t.sequencer.receive('ch', t.publish('a'));
    t.advance(1500);
    t.newEpoch('e2');
    t.sequencer.receive('ch', t.publish('b'));
    await flush();
    expect(t.lost).toEqual([]);
    expect(t.delivered).toEqual(['a', 'b']);
  });

  it('a message of an epoch that the channel\'s head in Redis does not show is dropped after one history read: no loss', async () => {
    const t = setup();
    t.sequencer.receive('ch', t.publish('a'));
    for (const offset of [1, 2, 9_007_199_254_740_000]) {
      t.sequencer.receive('ch', { epoch: 'forged', offset, payload: 'forged' });
      await flush();
    }
    expect(t.sequencer.recovering).toBe(false);
    for (const p of ['b', 'c']) t.sequencer.receive('ch', t.publish(p));
    expect(t.delivered).toEqual(['a', 'b', 'c']);
    expect(t.lost).toEqual([]);
    expect(t.sequencer.position('ch')).toEqual({ epoch: 'e1', offset: 3 });
  });

  it('a channel with no record in Redis delivers its first message at once: a later message of another channel does not overtake it', () => {
    const t = setup();
    t.sequencer.start('direct', { epoch: 'e1', offset: t.publishOn('direct', 'd0').offset });
    t.sequencer.start('room', undefined);
    t.sequencer.receive('room', t.publishOn('room', 'r1'));
    t.sequencer.receive('direct', t.publishOn('direct', 'd1'));
    expect(t.delivered).toEqual(['r1', 'd1']);
  });

  it('a forged first message on a channel with no record is delivered like the first, but ends nothing: the real ones follow in order, no loss', async () => {
    const t = setup();
    t.sequencer.start('ch', undefined);
    t.sequencer.receive('ch', { epoch: 'forged', offset: 1, payload: 'forged' });
    await flush();
    for (const p of ['a', 'b']) {
      t.sequencer.receive('ch', t.publish(p));
      await flush();
    }
    expect(t.delivered).toEqual(['forged', 'a', 'b']);
    expect(t.lost).toEqual([]);
  });

  it('after a first message on a channel with no record, a Redis restart without its data (the subscriber was cut) is a loss', async () => {
    const t = setup();
    t.sequencer.start('ch', undefined);
    t.sequencer.receive('ch', t.publish('a'));
    t.sequencer.disconnected(); // Redis restarted without its data
    t.wipe();
    t.newEpoch('e2');
    t.sequencer.receive('ch', t.publish('b'));
    await flush();
    expect(t.lost).toEqual(['ch']);
    expect(t.delivered).toEqual(['a', 'b']);
  });

  it('keeps what it held while Redis cannot be read, and delivers it at the next catch-up', async () => {
    const t = setup();
    const m = ['a', 'b', 'c'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.failReads(true);
    t.sequencer.receive('ch', m[2]);
    await flush();
    expect(t.delivered).toEqual(['a']);
    t.failReads(false);
    await t.sequencer.catchUp('ch');
    expect(t.delivered).toEqual(['a', 'b', 'c']);
    expect(t.lost).toEqual([]);
  });

  it('holds at most maxHeld messages while the history cannot be read: later ones are read from the history once it can be', async () => {
    const t = setup({ maxHeld: 5 });
    const m = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.failReads(true);
    for (const message of m.slice(2, 8)) {
      t.sequencer.receive('ch', message); // b is missed; c … g are held, h is not
      await flush();
    }
    expect(t.lost).toEqual([]);
    t.failReads(false);
    t.sequencer.receive('ch', m[8]);
    await flush();
    expect(t.delivered).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
    expect(t.lost).toEqual([]);
  });

  it('past maxHeld while the history cannot be read, what the history no longer has is a loss, never a silent gap', async () => {
    const t = setup({ maxHeld: 2, historySize: 3 });
    const m = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.failReads(true);
    for (const message of m.slice(2)) {
      t.sequencer.receive('ch', message);
      await flush();
    }
    t.failReads(false);
    await t.sequencer.catchUp('ch');
    expect(t.lost).toEqual(['ch']);
    expect(t.delivered).toEqual(['a', 'e', 'f', 'g']);
  });

  it('a burst of more than maxHeld messages Redis never recorded, while a history read runs, ends nothing', async () => {
    const t = setup({ maxHeld: 5 });
    t.sequencer.receive('ch', t.publish('a'));
    for (let n = 0; n < 20; n++) t.sequencer.receive('ch', { epoch: 'e1', offset: 1000 + n, payload: 'forged' });
    await flush();
    await flush();
    expect(t.lost).toEqual([]);
    for (const p of ['b', 'c']) t.sequencer.receive('ch', t.publish(p));
    await flush();
    expect(t.delivered).toEqual(['a', 'b', 'c']);
    expect(t.lost).toEqual([]);
  });

  it('holds at most maxHeldBytes of payload, all channels together, while the history cannot be read: later ones are read from the history once it can be', async () => {
    const t = setup({ maxHeldBytes: 10 });
    const one = ['aaaa', 'bbbb', 'cccc', 'dddd'].map((payload) => t.publishOn('one', payload));
    const two = ['aaaa', 'bbbb', 'éé'].map((payload) => t.publishOn('two', payload));
    t.sequencer.receive('one', one[0]);
    t.sequencer.receive('two', two[0]);
    t.failReads(true);
    for (const message of one.slice(2)) {
      t.sequencer.receive('one', message); // b is missed; c and d are held: 8 bytes
      await flush();
    }
    t.sequencer.receive('two', two[2]); // b is missed; 'éé' is 4 bytes in UTF-8: not kept
    await flush();
    expect(t.sequencer.heldBytes).toBe(8);
    t.failReads(false);
    for (const channel of ['one', 'two']) await t.sequencer.catchUp(channel);
    expect(t.deliveredOn('one')).toEqual(['aaaa', 'bbbb', 'cccc', 'dddd']);
    expect(t.deliveredOn('two')).toEqual(['aaaa', 'bbbb', 'éé']);
    expect(t.lost).toEqual([]);
    expect(t.sequencer.heldBytes).toBe(0);
  });

  it('a channel forgotten (unsubscribed) while it holds messages gives their bytes back', async () => {
    const t = setup();
    const m = ['a', 'b', 'c'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.failReads(true);
    t.sequencer.receive('ch', m[2]);
    await flush();
    expect(t.sequencer.heldBytes).toBe(1);
    t.sequencer.forget('ch');
    expect(t.sequencer.heldBytes).toBe(0);
  });

  it('a message not kept (past maxHeldBytes) that Redis lost with its data before it could be read is a loss all the same', async () => {
    const t = setup({ maxHeldBytes: 0 });
    t.sequencer.start('ch', undefined);
    t.publish('a'); // missed
    t.sequencer.receive('ch', t.publish('b')); // leaves a gap: waits for a read, not kept
    t.sequencer.disconnected(); // Redis restarted without its data before the read
    t.wipe();
    await flush();
    expect(t.lost).toEqual(['ch']);
    expect(t.delivered).toEqual([]);
  });

  it('reports each message it drops for want of a record in Redis (past the head, or of an epoch the head does not show), and only those', async () => {
    const t = setup();
    const m = ['a', 'b', 'c'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.sequencer.receive('ch', m[2]); // b is missed: read from the history, not dropped
    await flush();
    t.sequencer.receive('ch', { epoch: 'e1', offset: 9_000, payload: 'past the head' });
    await flush();
    t.sequencer.receive('ch', { epoch: 'made-up', offset: 4, payload: 'another epoch' });
    await flush();
    t.sequencer.receive('ch', m[1]); // a duplicate
    expect(t.dropped).toEqual(['past the head', 'another epoch']);
    expect(t.delivered).toEqual(['a', 'b', 'c']);
  });

  it('a message Redis never recorded (past the head) is dropped after one history read: no loss, later messages still delivered', async () => {
    const t = setup();
    t.sequencer.receive('ch', t.publish('a'));
    t.sequencer.receive('ch', { epoch: 'e1', offset: 9_007_199_254_740_000, payload: 'forged' });
    await flush();
    expect(t.sequencer.recovering).toBe(false);
    for (const p of ['b', 'c']) t.sequencer.receive('ch', t.publish(p));
    expect(t.delivered).toEqual(['a', 'b', 'c']);
    expect(t.lost).toEqual([]);
  });

  it('a message published after the history read and past a gap is not a loss: the history is read again', async () => {
    let late: SequencedMessage[] = [];
    let reads = 0;
    const t = setup({
      afterRead: () => {
        if (++reads === 1) late = ['d', 'e'].map(t.publish);
      },
    });
    const m = ['a', 'b', 'c'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.sequencer.receive('ch', m[2]); // b missed: a history read starts, and d, e are published after it
    await Promise.resolve();
    t.sequencer.receive('ch', late[1]); // e arrives during the read; d was missed too
    await flush();
    expect(t.delivered).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(t.lost).toEqual([]);
    expect(reads).toBe(2);
  });

  it('property: any arrival order with drops and duplicates delivers every message once, in order, while the history covers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(fc.nat(39), fc.boolean()), { maxLength: 80 }),
        async (count, arrivals) => {
          const t = setup({ historySize: 100 });
          const messages = Array.from({ length: count }, (_, k) => t.publish(`m${k + 1}`));
          t.sequencer.receive('ch', messages[0]);
          for (const [index, settle] of arrivals) {
            t.sequencer.receive('ch', messages[index % count]);
            if (settle) await flush();
          }
          await flush();
          await t.sequencer.catchUp('ch');
          await flush();
          expect(t.delivered).toEqual(messages.map((m) => m.payload));
          expect(t.lost).toEqual([]);
          expect(t.dropped).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('encodeSequenced / decodeSequenced', () => {
  it('round-trips any payload, spaces and newlines included', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{1,32}$/), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.string(), (epoch, offset, payload) => {
        expect(decodeSequenced(encodeSequenced(epoch, offset, payload))).toEqual({ epoch, offset, payload });
      }),
    );
  });

  it('refuses what is not a sequenced message', () => {
    for (const text of ['', 'abc', 'e 0 x', 'e -1 x', 'e x y', ' 1 x', 'e 1.5 x', 'e 99999999999999999999 x']) {
      expect(decodeSequenced(text)).toBeUndefined();
    }
  });
});

describe('ChannelSequencer.start', () => {
  it('a channel subscribed before anything was published catches up its first messages after a reconnect', async () => {
    const t = setup();
    t.sequencer.start('ch', undefined);
    t.publish('a');
    t.publish('b');
    await t.sequencer.catchUp('ch');
    expect(t.delivered).toEqual(['a', 'b']);
    expect(t.lost).toEqual([]);
  });

  it('starts from the head: what was published before is not delivered, what follows is', async () => {
    const t = setup();
    t.publish('old');
    t.sequencer.start('ch', { epoch: 'e1', offset: 1 });
    const next = t.publish('new');
    t.sequencer.receive('ch', next);
    t.publish('missed');
    await t.sequencer.catchUp('ch');
    expect(t.delivered).toEqual(['new', 'missed']);
  });

  it('does not move a channel that already received messages', () => {
    const t = setup();
    const m = ['a', 'b'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    t.sequencer.start('ch', undefined);
    t.sequencer.receive('ch', m[1]);
    expect(t.delivered).toEqual(['a', 'b']);
  });
});

describe('ChannelSequencer positions', () => {
  it('reports how far a channel is delivered and resolves a wait once it gets there', async () => {
    const t = setup();
    const m = ['a', 'b', 'c'].map(t.publish);
    t.sequencer.receive('ch', m[0]);
    expect(t.sequencer.position('ch')).toEqual({ epoch: 'e1', offset: 1 });
    expect(t.sequencer.position('other')).toBeUndefined();
    await expect(t.sequencer.whenDelivered('ch', { epoch: 'e1', offset: 1 }, 1000)).resolves.toBe(true);
    const waiting = t.sequencer.whenDelivered('ch', { epoch: 'e1', offset: 3 }, 1000);
    t.sequencer.receive('ch', m[1]);
    t.sequencer.receive('ch', m[2]);
    await expect(waiting).resolves.toBe(true);
    await expect(t.sequencer.whenDelivered('ch', { epoch: 'e1', offset: 9 }, 30)).resolves.toBe(false);
    await expect(t.sequencer.whenDelivered('gone', { epoch: 'e1', offset: 9 }, 30)).resolves.toBe(true);
  });
});
