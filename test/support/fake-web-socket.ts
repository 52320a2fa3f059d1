import type { WebSocketLike } from '../../lib/client/reliable-ws-client.interfaces.js';

/** The `$ready` data of a fresh session, as a server sends it. */
export const READY = { sessionId: 's1', resumeToken: 't1', resumed: false, missed: false, lastId: 0, heartbeatMs: 30000 };

/** A stand-in WebSocket for client unit specs: records its constructions and what was sent, lets the spec play the server. */
export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = [];
  readyState = 0;
  bufferedAmount = 0;
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: { data: any }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  readonly sent: Array<string | Uint8Array> = [];
  readonly createdAt = Date.now();
  closedWith: number | undefined;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.instances.push(this);
  }

  /** The latest socket the client opened. */
  static get last(): FakeWebSocket {
    return FakeWebSocket.instances.at(-1)!;
  }

  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }

  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  /** The server accepted: open, then `$ready` (with `ready` over a fresh session's data). */
  accept(ready: Record<string, unknown> = {}): void {
    this.open();
    this.receive({ event: '$ready', data: { ...READY, ...ready } });
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A frame from the server: an object is sent as JSON text, a string as it is, bytes as a binary frame. */
  receive(frame: object | string | Uint8Array): void {
    const data = typeof frame === 'string' || frame instanceof Uint8Array ? frame : JSON.stringify(frame);
    this.onmessage?.({ data });
  }

  /** The text frames sent, parsed. */
  sentJson(): Array<{ event: string; data?: any; id?: number }> {
    return this.sent.filter((frame): frame is string => typeof frame === 'string').map((frame) => JSON.parse(frame));
  }

  fireClose(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}
