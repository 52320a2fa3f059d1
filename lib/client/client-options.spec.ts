import { describe, expect, it } from '@jest/globals';
import { checkClientOptions, checkTimeout } from './client-options.js';
import { ReliableWsClient } from './reliable-ws-client.js';
import type { ReliableWsClientOptions } from './reliable-ws-client.interfaces.js';

describe('checkClientOptions', () => {
  it('accepts no options, the documented defaults and edge values', () => {
    expect(() => checkClientOptions({})).not.toThrow();
    expect(() =>
      checkClientOptions({
        heartbeat: { intervalMs: 30000, timeoutMs: 10000 },
        queue: { maxMessages: 1, maxBytes: 1 },
        connectTimeoutMs: 2 ** 31 - 1,
        ackDelayMs: 0,
        maxBufferedBytes: 0,
        maxTransferBytes: 0,
      }),
    ).not.toThrow();
    expect(() => checkClientOptions({ heartbeat: false })).not.toThrow();
  });

  it.each([
    ['heartbeat', { heartbeat: 5 }, '5'],
    ['heartbeat.intervalMs', { heartbeat: { intervalMs: 0 } }, '0'],
    ['heartbeat.timeoutMs', { heartbeat: { timeoutMs: 2 ** 31 } }, '2147483648'],
    ['queue', { queue: 'big' }, 'big'],
    ['queue.maxMessages', { queue: { maxMessages: 'x' } }, 'x'],
    ['queue.maxBytes', { queue: { maxBytes: Number.NaN } }, 'NaN'],
    ['connectTimeoutMs', { connectTimeoutMs: 30 * 24 * 3600 * 1000 }, '2592000000'],
    ['ackDelayMs', { ackDelayMs: -1 }, '-1'],
    ['maxBufferedBytes', { maxBufferedBytes: 1.5 }, '1.5'],
    ['maxTransferBytes', { maxTransferBytes: Number.POSITIVE_INFINITY }, 'Infinity'],
  ])('rejects a wrong %s with a RangeError naming it and the value', (name, options, shown) => {
    const check = () => checkClientOptions(options as unknown as ReliableWsClientOptions);
    expect(check).toThrow(RangeError);
    expect(check).toThrow(`invalid option "${name}": ${shown}`);
  });

  it('the client constructor checks them before it opens any socket', () => {
    let constructed = 0;
    class NoSocket {
      constructor() {
        constructed++;
      }
    }
    expect(() => new ReliableWsClient('ws://127.0.0.1:9/', { WebSocket: NoSocket as never, ackDelayMs: Number.NaN })).toThrow(
      'invalid option "ackDelayMs": NaN',
    );
    expect(constructed).toBe(0);
  });
});

describe('checkTimeout', () => {
  it('takes nothing or a delay a timer holds, and names anything else', () => {
    for (const ok of [undefined, 1, 10_000, 2 ** 31 - 1]) expect(checkTimeout(ok)).toBeUndefined();
    for (const bad of [0, -5, 1.5, Number.NaN, 2 ** 31, '100' as unknown as number]) {
      expect(checkTimeout(bad)).toEqual(new RangeError(`ReliableWsClient: invalid option "timeoutMs": ${String(bad)}`));
    }
  });

  it('request() and upload() reject a wrong timeoutMs at once, sending nothing', async () => {
    const sent: unknown[] = [];
    class QuietSocket {
      readyState = 0;
      bufferedAmount = 0;
      onopen = null;
      onmessage = null;
      onclose = null;
      onerror = null;
      send(data: unknown) {
        sent.push(data);
      }
      close() {}
    }
    const client = new ReliableWsClient('ws://127.0.0.1:9/', { WebSocket: QuietSocket as never, heartbeat: false });
    await expect(client.request('x', 1, { timeoutMs: 2 ** 32 })).rejects.toThrow('invalid option "timeoutMs": 4294967296');
    await expect(client.upload('x', new Uint8Array(1), { timeoutMs: -1 })).rejects.toThrow(RangeError);
    expect(client.queueLength).toBe(0);
    client.close();
    expect(sent).toEqual([]);
  });
});
