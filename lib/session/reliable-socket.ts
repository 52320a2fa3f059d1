import { Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import type { HandshakeRequest } from '../auth/index.js';
import {
  appEventNameError,
  CloseCode,
  CloseReason,
  encodeFrame,
  binaryHeaderJson,
  encodeBinaryHead,
  ErrorCode,
  errorText,
  INTERNAL_ERROR_MESSAGE,
  isAppEventName,
  isBinaryData,
  preparePushOf,
  serializeData,
  type OutgoingFrame,
  type PreparedPush,
  SUBPROTOCOL,
  SystemEvent,
  UnserializableDataError,
  type ErrorData,
  type MessageId,
} from '../protocol/index.js';
import { ReliableWsMetrics } from '../telemetry/index.js';
import { corkUntilTickEnds, currentTick, type Corkable } from './tick-batching.js';
import { reportUnserializable } from './unserializable-log.js';
import { encodedLength, pushFrame, pushFrameWritten, textFrame, type EncodedFrame } from './websocket-frames.js';
import type { TransferLink } from '../transfer/index.js';
import type { Session, SessionTransport } from './session.js';

export interface BackpressureOptions {
  /** Unsent bytes a connection may hold before it is closed with 4009. */
  maxBufferedBytes: number;
}

/** How long a slow consumer gets to read its close frame before its socket is destroyed. */
export const SLOW_CONSUMER_CLOSE_GRACE_MS = 2000;

/** The header of a server control frame (its payload is at most 125 bytes). */
const CONTROL_FRAME_HEADER_BYTES = 2;

const OPEN = 1;
const NO_TICK = -1;

const MAX_UTF8_BYTES_PER_UNIT = 3;

/** How soon a stream held back by a full send buffer looks again when no drain event will come. */
const DRAIN_POLL_MS = 10;

const closeListenerLog = new Logger('ReliableSocket');

/** Counts of sockets made outside the module (unit tests): counted nowhere. */
const UNCOUNTED = new ReliableWsMetrics();

/**
 * The connection handed to gateway handlers: one physical WebSocket bound to a session.
 * `send` numbers pushes (`seq`) through the session; every write is checked against the
 * connection's send buffer bound.
 */
export class ReliableSocket implements SessionTransport, TransferLink {
  /** Last time anything arrived from the peer (a frame or a pong), in ms since the epoch. */
  lastSeenAt = performance.now();
  private boundSession: Session | undefined;
  /** The tick of the last write, and the tick this socket was corked in (see tick-batching.ts). */
  private lastWriteTick = NO_TICK;
  private corkedTick = NO_TICK;
  /**
   * Without an extension (permessage-deflate) that must see each message, frames are encoded
   * here and written to the TCP socket as they are.
   */
  private readonly tcpSocket: TcpSocket | undefined;
  /** While a resume replays: the seq of the last push written; later pushes come from the buffer. */
  private replayedThrough: number | undefined;
  /** Who hears of the close: one gateway's listener, or an array when several gateways share the path. */
  private closeListeners: CloseListener | CloseListener[] | undefined;
  /** The first close this server asked for, if any. */
  closedWith: { code: number; reason: string } | undefined;
  /**
   * @internal The `clients` of the gateway path that lists this connection. A connection cut
   * because another one took its session over leaves them at once, not when its close comes:
   * a session is never listed twice.
   */
  listedIn: { delete(socket: ReliableSocket): void } | undefined;

  constructor(
    readonly raw: WebSocket,
    readonly request: HandshakeRequest,
    readonly ip: string,
    private readonly backpressure: BackpressureOptions,
    private readonly metrics: ReliableWsMetrics = UNCOUNTED,
  ) {
    this.tcpSocket = raw.extensions === '' ? this.tcp() : undefined;
  }

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

  /**
   * Pushes an event to this client: sequenced and, with sessions on, resumable. A `Uint8Array`
   * (a `Buffer`) goes as one binary frame. Throws `UnserializableDataError` for data JSON cannot
   * carry (nothing is sent).
   */
  send(event: string, data?: unknown): void {
    const push = preparePushOf(event, data); // throws here, at the caller, for what no push can carry
    const { relay } = this.session;
    if (relay) relay(event, data);
    else this.session.push(push);
  }

  /**
   * Sends bytes of any size (up to `maxTransferBytes`) as a chunked stream, flow-controlled by the
   * client's acknowledgements and continued after a resume; the client's `on(event)` gets them as
   * one `Uint8Array`. Resolves once the client has every byte; rejects when the session ends first,
   * the client refuses the stream, or (`PAYLOAD_TOO_LARGE`) the transfer budget is short.
   */
  stream(event: string, data: Uint8Array): Promise<void> {
    if (!isBinaryData(data)) return Promise.reject(new TypeError('ReliableSocket.stream: data must be a Uint8Array or a Buffer'));
    return this.session.transfers.stream(event, data);
  }

  /** Closes the connection; `ws` throws for a code or reason a close frame cannot carry, and nothing is recorded then. */
  close(code: number = CloseCode.NORMAL, reason?: string): void {
    const text = reason ?? CloseReason[code as CloseCode] ?? '';
    const wasOpen = this.isOpen;
    this.raw.close(code, text);
    if (wasOpen) this.closedWith ??= { code, reason: text };
  }

  /**
   * Answers a client message: `{ event, data, ref }`, never sequenced. A reply JSON cannot carry
   * is answered `$error INTERNAL` instead (and logged once per event).
   */
  reply(event: string, data: unknown, ref: MessageId | undefined): void {
    if (!isAppEventName(event)) throw appEventNameError(event); // a `$ready` reply, say, a client would take for the protocol's
    if (isBinaryData(data)) {
      this.answer(ref, { head: encodeBinaryHead(binaryHeaderJson(event, { ref })), payload: data });
      return;
    }
    let dataJson: string;
    try {
      dataJson = serializeData(data, event, 'reply');
    } catch (error) {
      this.failUnserializable(error, ref);
      return;
    }
    this.metrics.sent.reply++;
    this.answer(ref, encodeFrame(event, dataJson, { ref }));
  }

  /** Answers a client message with `$error`; one whose `details` JSON cannot carry goes as `INTERNAL`. */
  replyError(error: ErrorData): void {
    let dataJson: string;
    try {
      dataJson = serializeData(error, SystemEvent.ERROR, `${error.code} error`);
    } catch (failure) {
      this.failUnserializable(failure, error.ref);
      return;
    }
    this.countError(error.code);
    this.answer(error.ref, encodeFrame(SystemEvent.ERROR, dataJson));
  }

  private countError(code: string): void {
    this.metrics.sent.error++;
    this.metrics.errors.add(code);
  }

  private failUnserializable(error: unknown, ref: MessageId | undefined): void {
    if (!(error instanceof UnserializableDataError)) throw error;
    reportUnserializable(error);
    this.replyError({ code: ErrorCode.INTERNAL, message: INTERNAL_ERROR_MESSAGE, ref });
  }

  /** Answers the `$upload` of a cancelled upload: it is settled, and no handler ran. */
  acknowledgeCancelled(ref: MessageId): void {
    this.answer(ref, encodeFrame(SystemEvent.ACK, serializeData({ ref, cancelled: true })));
  }

  /** Answers a client message whose handler returned nothing. */
  acknowledge(ref: MessageId): void {
    this.metrics.sent.reply++;
    this.answer(ref, encodeFrame(SystemEvent.ACK, serializeData({ ref })));
  }

  sendSystem(event: string, data: unknown): void {
    this.writeSystem(encodeFrame(event, serializeData(data)));
  }

  /** Writes a system frame (`$ready`, `$pong`, an `$ack` of an `$ack` …). */
  writeSystem(frame: string): void {
    this.metrics.sent.system++;
    this.write(frame);
  }

  /** A `$error` that answers no message (or one whose id is not usable). */
  sendError(error: ErrorData): void {
    this.countError(error.code);
    this.write(encodeFrame(SystemEvent.ERROR, serializeData(error)));
  }

  /**
   * Whether this connection's message ids are session-wide retry ids (`rws.v1`, integers), whose
   * answers are kept for duplicates and follow the session to a resumed connection.
   */
  tracksIds(id: MessageId | undefined): id is number {
    return typeof id === 'number' && id >= 1 && this.protocol === SUBPROTOCOL && this.hasSession;
  }

  private answer(ref: MessageId | undefined, frame: OutgoingFrame): void {
    if (this.tracksIds(ref)) this.session.answer(ref, frame);
    else this.write(frame);
  }

  terminate(): void {
    this.raw.terminate();
    this.listedIn?.delete(this);
  }

  deliver(push: PreparedPush, seq: number | undefined): void {
    if (this.replayedThrough !== undefined) return;
    this.metrics.sent.push++;
    this.writePush(push, seq);
  }

  /**
   * A text push is encoded once for all its recipients (see websocket-frames.ts); a frame the TCP
   * socket wrote out at once, with nothing left queued, may be reused for the next recipient.
   */
  private writePush(push: PreparedPush, seq: number | undefined): void {
    const tcp = this.tcpSocket;
    if (!tcp || push.payload) {
      this.write(push.wireFrame(seq));
      return;
    }
    const frame = pushFrame(push, seq, tcp.writableLength > 0 || this.lastWriteTick === currentTick());
    this.writeEncoded(tcp, frame);
    if (tcp.writableLength === 0) pushFrameWritten(frame);
  }

  /**
   * Replays the session's pushes after `lastSeq` from its buffer, in order, as fast as the
   * connection drains (a replay larger than the send bound is not a slow consumer); pushes that
   * arrive meanwhile follow from the buffer, then delivery goes live.
   */
  replayAfter(lastSeq: number): void {
    this.replayedThrough = lastSeq;
    this.pumpReplay();
  }

  private pumpReplay(): void {
    const session = this.session;
    const pauseAbove = this.backpressure.maxBufferedBytes / 2;
    while (this.replayedThrough !== undefined && this.replayedThrough < session.lastSeq && this.isOpen) {
      if (this.raw.bufferedAmount > pauseAbove) {
        this.whenDrained(() => this.pumpReplay());
        return;
      }
      const seq = this.replayedThrough + 1;
      const push = session.pushAt(seq);
      if (!push) {
        // The buffer moved past what this connection had yet to read: it fell too far behind.
        this.cutSlowConsumer();
        return;
      }
      this.metrics.sent.push++;
      this.metrics.replayed++;
      this.writePush(push, seq);
      this.replayedThrough = seq;
    }
    this.replayedThrough = undefined;
  }

  /** `ws` keeps its TCP socket in `_socket`. */
  private tcp(): TcpSocket | undefined {
    return (this.raw as unknown as { _socket?: TcpSocket })._socket;
  }

  /**
   * Sends a frame unless that would take the connection's unsent data over the bound (then the
   * connection is cut as a slow consumer). Frames written in the same tick leave in one write.
   */
  write(frame: OutgoingFrame): void {
    if (typeof frame === 'string' && this.tcpSocket) {
      this.writeEncoded(this.tcpSocket, textFrame(frame));
      return;
    }
    if (!this.isOpen) return;
    if (!this.fits(frame)) {
      this.cutSlowConsumer();
      return;
    }
    const tcp = this.tcp();
    if (tcp) this.batchWrites(tcp, typeof frame !== 'string');
    if (typeof frame === 'string') {
      this.raw.send(frame);
    } else {
      // Two fragments of one message: the recipient's own header, then the payload it shares with others (not copied).
      this.raw.send(frame.head, { binary: true, fin: false });
      this.raw.send(frame.payload, { binary: true, fin: true });
    }
  }

  /**
   * Answers a client's protocol ping, within the send bound like any frame: a client that pings
   * without reading cannot pile pongs up in the server's memory.
   */
  pong(data: Buffer): void {
    if (!this.isOpen) return;
    if (data.byteLength + CONTROL_FRAME_HEADER_BYTES > this.backpressure.maxBufferedBytes - this.raw.bufferedAmount) {
      this.cutSlowConsumer();
      return;
    }
    this.raw.pong(data);
  }

  /** What transfers may fill of the send buffer: half its bound, leaving room for everything else. */
  get maxTransferWriteBytes(): number {
    return Math.floor(this.backpressure.maxBufferedBytes / 2);
  }

  /** Whether `bytes` more fit in the send buffer while staying within `maxTransferWriteBytes`. */
  hasRoomFor(bytes: number): boolean {
    return this.raw.bufferedAmount + bytes <= this.maxTransferWriteBytes;
  }

  /** Calls back once the socket's buffer drained; polls when the socket has nothing waiting on a drain. */
  whenDrained(listener: () => void): void {
    const tcp = this.tcp();
    if (tcp?.writableNeedDrain) tcp.once('drain', listener);
    else setTimeout(listener, DRAIN_POLL_MS);
  }

  /**
   * Whether the frame's bytes fit beside the unsent data. A UTF-16 unit takes 1 to 3 bytes, so
   * the string's length settles most text frames without encoding them.
   */
  private fits(frame: OutgoingFrame): boolean {
    const room = this.backpressure.maxBufferedBytes - this.raw.bufferedAmount;
    if (typeof frame !== 'string') return frame.head.byteLength + frame.payload.byteLength <= room;
    if (frame.length > room) return false;
    return frame.length * MAX_UTF8_BYTES_PER_UNIT <= room || Buffer.byteLength(frame) <= room;
  }

  /** Writes an encoded frame to the TCP socket, within the send bound like `write`. */
  private writeEncoded(tcp: TcpSocket, frame: EncodedFrame): void {
    if (!this.isOpen) return;
    if (encodedLength(frame) > this.backpressure.maxBufferedBytes - this.raw.bufferedAmount) {
      this.cutSlowConsumer();
      return;
    }
    if (Buffer.isBuffer(frame)) {
      this.batchWrites(tcp, false);
      tcp.write(frame);
      return;
    }
    this.batchWrites(tcp, true);
    for (const part of frame) tcp.write(part);
  }

  /**
   * The first write of a tick goes out at once; from the second on (or when one frame takes
   * several writes) the socket is corked until the tick ends, so that they leave in one write.
   */
  private batchWrites(tcp: TcpSocket, severalWrites: boolean): void {
    const tick = currentTick();
    if ((severalWrites || this.lastWriteTick === tick) && this.corkedTick !== tick) {
      this.corkedTick = tick;
      corkUntilTickEnds(tcp);
    }
    this.lastWriteTick = tick;
  }

  onClose(listener: CloseListener): void {
    const listeners = this.closeListeners;
    if (listeners === undefined) this.closeListeners = listener;
    else if (Array.isArray(listeners)) listeners.push(listener);
    else this.closeListeners = [listeners, listener];
  }

  bindSession(session: Session): void {
    this.boundSession = session;
    session.attach(this);
  }

  markSeen(now = performance.now()): void {
    this.lastSeenAt = now;
  }

  /** Called once by the adapter when the underlying socket has closed. */
  notifyClosed(code: number): void {
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    if (Array.isArray(listeners)) for (const listener of listeners) notifyClose(listener, code);
    else if (listeners) notifyClose(listeners, code);
  }

  private cutSlowConsumer(): void {
    this.close(CloseCode.SLOW_CONSUMER);
    setTimeout(() => this.raw.terminate(), SLOW_CONSUMER_CLOSE_GRACE_MS).unref();
  }
}

type CloseListener = (code: number) => void;

function notifyClose(listener: CloseListener, code: number): void {
  try {
    listener(code);
  } catch (error) {
    closeListenerLog.error(`a disconnect handler failed: ${errorText(error)}`);
  }
}

/** The TCP socket under a `ws` connection, as far as this class uses it. */
interface TcpSocket extends Corkable {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): void;
  writableNeedDrain: boolean;
  /** Bytes queued, not yet handed to the kernel: 0 once every write completed at once. */
  writableLength: number;
}
