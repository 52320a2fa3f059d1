import { describe, expect, it } from '@jest/globals';
import { MAX_TRANSFERS_PER_DIRECTION } from '../protocol/index.js';
import { StreamReceiver } from './stream-receiver.js';

function setup(maxTransferBytes?: number) {
  const sent: Array<{ event: string; data: any }> = [];
  const emitted: Array<{ event: string; payload: any }> = [];
  const receiver = new StreamReceiver(
    { sendSystem: (event, data) => sent.push({ event, data }), emit: (event, payload) => emitted.push({ event, payload }) },
    maxTransferBytes,
  );
  const announce = (transfer: number, size = 1) => receiver.announce({ transfer, event: 'file', size, offset: 0 });
  return { receiver, sent, emitted, announce };
}

describe('StreamReceiver', () => {
  it(`takes at most ${MAX_TRANSFERS_PER_DIRECTION} streams at once: beyond, $cancel and a PAYLOAD_TOO_LARGE $error, whatever their size`, () => {
    const { receiver, sent, emitted, announce } = setup();
    const ANNOUNCED = 10_000;
    for (let transfer = 1; transfer <= ANNOUNCED; transfer++) announce(transfer);
    const acks = sent.filter((frame) => frame.event === '$chunk-ack');
    const cancels = sent.filter((frame) => frame.event === '$cancel');
    expect(acks.map((frame) => frame.data.transfer)).toEqual(Array.from({ length: MAX_TRANSFERS_PER_DIRECTION }, (_, i) => i + 1));
    expect(cancels).toHaveLength(ANNOUNCED - MAX_TRANSFERS_PER_DIRECTION);
    expect(cancels[0]!.data).toEqual({ transfer: MAX_TRANSFERS_PER_DIRECTION + 1, direction: 'down' });
    const errors = emitted.filter((e) => e.event === '$error');
    expect(errors).toHaveLength(ANNOUNCED - MAX_TRANSFERS_PER_DIRECTION);
    expect(errors[0]!.payload).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { transfer: MAX_TRANSFERS_PER_DIRECTION + 1, size: 1 } });

    // One completes: room for one more.
    receiver.chunk({ transfer: 1, offset: 0 }, Uint8Array.of(7));
    expect(emitted.filter((e) => e.event === 'file').map((e) => Array.from(e.payload))).toEqual([[7]]);
    sent.length = 0;
    announce(ANNOUNCED + 1);
    announce(ANNOUNCED + 2);
    expect(sent.map((frame) => frame.event)).toEqual(['$chunk-ack', '$cancel']);
  });

  it('a new session forgets the streams in progress and makes room again', () => {
    const { receiver, sent, announce } = setup();
    for (let transfer = 1; transfer <= MAX_TRANSFERS_PER_DIRECTION; transfer++) announce(transfer);
    receiver.reset();
    sent.length = 0;
    announce(1_000);
    expect(sent.map((frame) => frame.event)).toEqual(['$chunk-ack']);
  });

  it('a stream whose buffer cannot be allocated is refused like one too large, never thrown out of the frame handler', () => {
    const { receiver, sent, emitted, announce } = setup(Number.MAX_SAFE_INTEGER);
    announce(1, Number.MAX_SAFE_INTEGER); // within maxTransferBytes, beyond any typed array
    sent.length = 0;
    expect(() => receiver.chunk({ transfer: 1, offset: 0 }, new Uint8Array(10))).not.toThrow();
    expect(sent).toEqual([{ event: '$cancel', data: { transfer: 1, direction: 'down' } }]);
    expect(emitted.filter((e) => e.event === '$error').map((e) => e.payload)).toMatchObject([
      { code: 'PAYLOAD_TOO_LARGE', details: { transfer: 1, event: 'file', size: Number.MAX_SAFE_INTEGER } },
    ]);
    sent.length = 0;
    receiver.chunk({ transfer: 1, offset: 10 }, new Uint8Array(10)); // a chunk still in flight: ignored
    announce(2, 10); // fits: the refused stream holds nothing
    expect(sent).toEqual([{ event: '$chunk-ack', data: { transfer: 2, received: 0 } }]);
  });

  it('after a resume, keeps the partial streams the server continues and lets go of the others (bytes and slots)', () => {
    const { receiver, sent, emitted, announce } = setup(100);
    announce(1, 60);
    announce(2, 40);
    receiver.chunk({ transfer: 1, offset: 0 }, new Uint8Array(30));
    receiver.keepOnly([2]);
    sent.length = 0;
    announce(3, 60); // fits only because stream 1 no longer counts
    receiver.chunk({ transfer: 1, offset: 30 }, new Uint8Array(30)); // a late chunk of a stream let go: ignored
    expect(sent.map((frame) => [frame.event, frame.data.transfer])).toEqual([['$chunk-ack', 3]]);
    expect(emitted.filter((e) => e.event === 'file')).toEqual([]);
    receiver.chunk({ transfer: 2, offset: 0 }, new Uint8Array(40));
    expect(emitted.filter((e) => e.event === 'file').map((e) => e.payload.length)).toEqual([40]);
  });
});
