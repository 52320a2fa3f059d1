import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { offersWebSocket } from './http-fallback.js';

const offering = (upgrade?: string): IncomingMessage => ({ headers: upgrade === undefined ? {} : { upgrade } }) as IncomingMessage;

describe('offersWebSocket', () => {
  it('finds WebSocket offered alone, in any case', () => {
    expect(offersWebSocket(offering('websocket'))).toBe(true);
    expect(offersWebSocket(offering('WebSocket'))).toBe(true);
  });

  it('finds WebSocket among other protocols', () => {
    expect(offersWebSocket(offering('h2c, WebSocket'))).toBe(true);
    expect(offersWebSocket(offering(' websocket '))).toBe(true);
  });

  it('refuses any other offer, or none', () => {
    expect(offersWebSocket(offering())).toBe(false);
    expect(offersWebSocket(offering('h2c'))).toBe(false);
    expect(offersWebSocket(offering('websockex'))).toBe(false);
    expect(offersWebSocket(offering('websockets'))).toBe(false);
    expect(offersWebSocket(offering('h2c,web socket'))).toBe(false);
  });

  it('property: any header, lists of near names or garbage up to 10,000 characters, is read as its comma-separated names say', () => {
    const name = fc.oneof(
      fc.constantFrom('websocket', 'WebSocket', 'WEBSOCKET', 'h2c', 'websockex', 'web socket', ''),
      fc.string({ maxLength: 12 }),
    );
    const list = fc
      .tuple(fc.array(fc.tuple(fc.constantFrom('', ' ', '\t'), name, fc.constantFrom('', ' ')), { maxLength: 6 }), fc.constantFrom(',', ', ', ' ,'))
      .map(([names, separator]) => names.map(([before, text, after]) => `${before}${text}${after}`).join(separator));
    const header = fc.oneof(list, fc.string({ maxLength: 10_000 }), fc.string({ unit: 'binary', maxLength: 64 }));
    fc.assert(
      fc.property(header, (upgrade) => {
        const expected = upgrade.split(',').some((protocol) => protocol.trim().toLowerCase() === 'websocket');
        expect(offersWebSocket(offering(upgrade))).toBe(expected);
      }),
      { numRuns: 2_000 },
    );
  });
});
