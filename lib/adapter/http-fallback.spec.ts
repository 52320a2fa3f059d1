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
});
