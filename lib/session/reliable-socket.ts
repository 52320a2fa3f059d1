import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import {
  CloseCode,
  CloseReason,
  encodeFrame,
  preparePush,
  serializeData,
  SystemEvent,
  type ErrorData,
  type MessageId,
} from '../protocol/index.js';
import type { Session, SessionTransport } from './session.js';

export interface BackpressureOptions {
  /** Unsent bytes a connection may hold before it is closed with 4009. */
  maxBufferedBytes: number;
}

/** How long a slow consumer gets to read its close frame before its socket is destroyed. */
export const SLOW_CONSUMER_CLOSE_GRACE_MS = 2000;

const OPEN = 1;

/**
 * The connection handed to gateway handlers: one physical WebSocket bound to a session.
 * `send` numbers pushes (`seq`) through the session; every write is checked against the
 * connection's send buffer bound.
 */
export class ReliableSocket implements SessionTransport {
  /** Last time anything arrived from the peer (a frame or a pong), in ms since the epoch. */
  lastSeenAt = Date.now();
  private boundSession: Session | undefined;
  private readonly closeListeners: Array<(code: number) => void> = [];

  constructor(
    readonly raw: WebSocket,
    readonly request: IncomingMessage,
    readonly ip: string,
    private readonly backpressure: BackpressureOptions,
  ) {}

  /** The session; gateways only ever see sockets whose session has started. */
  get session(): Session {
    if (!this.boundSession) throw new Error('the session of this connection has not started yet');
    return this.boundSession;
  }

  get hasSession(): boolean {
    return this.boundSession !== undefined;
  }

  /** The session id; stable across resumed reconnects. */
  get id(): string {
    return this.session.id;
  }

  /** What authentication established for this connection, if anything. */
  get principal(): unknown {
    return this.boundSession?.principal;
  }

  /** The subprotocol the client negotiated (`rws.v1`), or `''` for a plain client. */
  get protocol(): string {
    return this.raw.protocol;
  }

  get isOpen(): boolean {
    return this.raw.readyState === OPEN;
  }

  /** Pushes an event to this client: sequenced and, with sessions on, resumable. */
  send(event: string, data?: unknown): void {
    this.session.push(preparePush(event, serializeData(data)));
  }

  close(code: number = CloseCode.NORMAL, reason?: string): void {
    this.raw.close(code, reason ?? CloseReason[code as CloseCode] ?? '');
  }

  /** Answers a client message: `{ event, data, ref }`, never sequenced. */
  reply(event: string, data: unknown, ref: MessageId | undefined): void {
    this.write(encodeFrame(event, serializeData(data), { ref }));
  }

  sendSystem(event: string, data: unknown): void {
    this.write(encodeFrame(event, serializeData(data)));
  }

  sendError(error: ErrorData): void {
    this.sendSystem(SystemEvent.ERROR, error);
  }

  write(frame: string): void {
    if (!this.isOpen) return;
    if (this.raw.bufferedAmount + Buffer.byteLength(frame) > this.backpressure.maxBufferedBytes) {
      this.cutSlowConsumer();
      return;
    }
    this.raw.send(frame);
  }

  onClose(listener: (code: number) => void): void {
    this.closeListeners.push(listener);
  }

  bindSession(session: Session): void {
    this.boundSession = session;
    session.attach(this);
  }

  markSeen(now = Date.now()): void {
    this.lastSeenAt = now;
  }

  /** Called once by the adapter when the underlying socket has closed. */
  notifyClosed(code: number): void {
    this.boundSession?.detach(this);
    for (const listener of this.closeListeners.splice(0)) listener(code);
  }

  private cutSlowConsumer(): void {
    this.close(CloseCode.SLOW_CONSUMER);
    setTimeout(() => this.raw.terminate(), SLOW_CONSUMER_CLOSE_GRACE_MS).unref();
  }
}
