import {
  binaryHeaderJson,
  chunkAckDataOf,
  chunkHeaderJson,
  chunkPayloadBytes,
  CloseCode,
  decodeServerBinary,
  ErrorCode,
  decodeServerMessage,
  encodeBinaryMessage,
  errorDataOf,
  isBinaryData,
  isRecord,
  isAppEventName,
  isValidEventName,
  readyDataOf,
  SUBPROTOCOL,
  SystemEvent,
  type ErrorData,
  type HelloData,
  type ServerMessage,
  type TransferProgress,
  errorText,
  isInstance,
  MAX_TIMER_DELAY_MS,
} from '../protocol/index.js';
import {
  checkReconnectOptions,
  DEFAULT_RECONNECT,
  rateLimitedDelay,
  reconnectDelay,
  type ReconnectOptions,
} from './backoff.js';
import { ConnectionState } from './connection-state.js';
import { ClientErrorCode, RequestError, requestTimeoutError } from './errors.js';
import {
  checkEventName,
  DEFAULT_QUEUE,
  DEFAULT_REQUEST_TIMEOUT_MS,
  encodeOutgoing,
  encodeSystem,
  QueueBudget,
  type OutgoingMessage,
} from './outgoing-message.js';
import type {
  ClientHeartbeatOptions,
  ReliableWsClientOptions,
  RequestOptions,
  UploadOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './reliable-ws-client.interfaces.js';
import { StreamReceiver } from './stream-receiver.js';

/** Where the answer to one send goes when it is not the connection's own listeners (a shared worker's tab). */
export interface SendHooks {
  /** A `$error` answering the send, instead of a `$error` event. */
  onError?(error: ErrorData): void;
  /** The send is done: answered, or given up. */
  onSettled?(): void;
}

interface OutboxEntry extends OutgoingMessage {
  hooks?: SendHooks;
  id?: number;
  /** The connection it was last written to; written again on a later one until answered. */
  sentOn?: number;
  request?: PendingRequest;
  /** The upload an `$upload` entry announces; its answer is the handler's. */
  upload?: OutgoingUpload;
}

/** An upload in progress: its bytes (not copied), how far they were sent and acknowledged on this connection. */
interface OutgoingUpload {
  transfer: number;
  event: string;
  data: Uint8Array;
  entry?: OutboxEntry;
  /** The server accepted it on the current connection (told where to continue). */
  accepted: boolean;
  sent: number;
  acked: number;
  window: number;
  /** The payload of its chunks but the last, within the server's `maxFrameBytes` and `window` (`chunkPayloadBytes`). */
  chunkBytes: number;
  onProgress?: (sent: number, total: number) => void;
  /** Removes the abort listener. */
  unlisten?: () => void;
}

type Outcome = { ok: true; data: unknown } | { ok: false; error: ErrorData };

const ANSWER_LOST: ErrorData = {
  code: ClientErrorCode.ANSWER_LOST,
  message: 'the server handled this message before and no longer keeps its answer',
};

interface PendingRequest {
  resolve(data: unknown): void;
  reject(error: RequestError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const DEFAULT_HEARTBEAT: ClientHeartbeatOptions = { intervalMs: 30000, timeoutMs: 10000 };
const DEFAULT_CONNECT_TIMEOUT_MS = 10000;
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const DEFAULT_ACK_DELAY_MS = 1000;
/** How long past its due point, as a share of the period, an `$ack` waits for a push to take it along. */
export const ACK_GRACE = 0.25;
/** An upload waits for no answer in particular: its end is the handler's reply. */
const NO_TIMEOUT = Number.POSITIVE_INFINITY;
/** Uploads cancelled or refused, remembered so that the server's `$error`s about their chunks still in flight are not reported. */
const FORGOTTEN_REMEMBERED = 64;
/** How often a send held back by a full socket buffer checks again (browsers have no drain event). */
const DRAIN_POLL_MS = 50;
/** Upload chunk frames written in one turn of the event loop: a default window's worth of 64 KiB frames. */
const CHUNK_FRAMES_PER_TURN = 16;
const OPEN = 1;
const TERMINAL_CLOSE_CODES: readonly number[] = [CloseCode.POLICY_VIOLATION, CloseCode.FORBIDDEN];
/** The least time a connection must stay open after `$ready` to start the reconnect schedule over. */
const MIN_STABLE_MS = 1000;
/** Close code of a connection the client abandons to reconnect: anything but 1000 keeps the session. */
const ABANDON_CLOSE_CODE = 4000;

/**
 * One reliable connection: reconnects with exponential backoff and jitter, queues sends while
 * offline, checks liveness with `$ping`, fetches a fresh token on every connect, correlates
 * requests with replies, and resumes its session. `ReliableWsClient` runs one in the page, or a
 * shared worker runs one for all tabs.
 */
export class ReliableConnection extends ConnectionState {
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly heartbeatOptions: ClientHeartbeatOptions | false;
  private readonly budget: QueueBudget;
  private ws: WebSocketLike | undefined;
  private connection = 0;
  private session: { id: string; resumeToken?: string } | undefined;
  /** The session the current connection's `$hello` asked to resume. */
  private resumeAsked: string | undefined;
  /** The largest frame the server takes, as its `$ready` said. */
  private serverMaxPayloadBytes: number | undefined;
  private lastSeq = 0;
  private ackedSeq = 0;
  /** Where in each `ackDelayMs` period this client's ack falls due, as a share of it. */
  private readonly ackPhase = Math.random();
  /** When the pending `$ack` fell or falls due; undefined while none is pending. */
  private ackDueAt: number | undefined;
  private nextId = 0;
  private attempt = 0;
  private retriedUnauthorized = false;
  /** When the current connection got its `$ready`; undefined while there is none. */
  private readyAt: number | undefined;
  private readonly outbox: OutboxEntry[] = [];
  /** Where the outbox entries the open connection has not carried yet begin: those before it were written on it. */
  private unsentFrom = 0;
  private readonly awaitingAnswer = new Map<number, OutboxEntry>();
  /** While `$ready` listeners run: where their sends go, ahead of the older queue; undefined otherwise. */
  private resyncInsertAt: number | undefined;
  private lastInboundAt = 0;
  /** Bytes of replies written on the open connection since its socket's buffer was last found within `maxBufferedBytes`. */
  private repliesBehindFullBuffer = 0;
  private pingSentAt = 0;
  private readonly timers: Partial<Record<'reconnect' | 'connect' | 'ping' | 'pong' | 'ack' | 'flush', ReturnType<typeof setTimeout>>> = {};
  private readonly onOnline = (): void => this.reconnectNow();
  private readonly uploads = new Map<number, OutgoingUpload>();
  private nextTransfer = 0;
  private readonly forgottenTransfers = new Set<number>();
  private readonly streams: StreamReceiver;

  constructor(
    private readonly url: string,
    private readonly options: ReliableWsClientOptions = {},
  ) {
    super();
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new TypeError('ReliableWsClient: no WebSocket here; pass one as the "WebSocket" option (e.g. from "ws")');
    }
    this.WebSocketImpl = WebSocketImpl;
    this.reconnectOptions = checkReconnectOptions({ ...DEFAULT_RECONNECT, ...options.reconnect });
    this.heartbeatOptions = options.heartbeat === false ? false : { ...DEFAULT_HEARTBEAT, ...options.heartbeat };
    this.budget = new QueueBudget({ ...DEFAULT_QUEUE, ...options.queue });
    this.streams = new StreamReceiver(
      { sendSystem: (event, data) => this.sendSystem(event, data), emit: (event, payload) => this.emitter.emit(event, payload) },
      options.maxTransferBytes,
    );
    (globalThis as { addEventListener?: (type: string, listener: () => void) => void }).addEventListener?.(
      'online',
      this.onOnline,
    );
    // Connects once the caller had the chance to listen: it sees `$state` 'connecting' too.
    queueMicrotask(() => {
      if (this.isStopped()) return;
      this.emitter.emit('$state', this.currentState);
      void this.connect();
    });
  }

  get sessionId(): string | undefined {
    return this.session?.id;
  }

  /** Sends (or queues) whose answer has not arrived yet. */
  get queueLength(): number {
    return this.outbox.length;
  }

  /** Sends an event; queued while offline and sent again after a reconnect until answered. */
  send(event: string, data: unknown): void {
    this.submit(encodeOutgoing(event, data));
  }

  /** Sends an event and resolves with the handler's reply, or rejects with a `RequestError`. */
  request(event: string, data: unknown, options: RequestOptions = {}): Promise<unknown> {
    return this.submitRequest(encodeOutgoing(event, data), options.timeoutMs);
  }

  /**
   * Sends bytes of any size (up to the server's `maxTransferBytes`) in chunks, flow-controlled by
   * the server's acknowledgements and continued after a resume; resolves with the handler's reply.
   */
  upload(event: string, data: Uint8Array, options: UploadOptions = {}): Promise<unknown> {
    checkEventName(event);
    if (!isBinaryData(data)) return Promise.reject(new TypeError('ReliableWsClient: upload data must be a Uint8Array'));
    if (options.signal?.aborted) return Promise.reject(new RequestError(ClientErrorCode.ABORTED, `the upload of "${event}" was aborted`));
    const transfer = ++this.nextTransfer;
    const upload: OutgoingUpload = {
      transfer,
      event,
      data,
      accepted: false,
      sent: 0,
      acked: 0,
      window: 0,
      chunkBytes: 0,
      onProgress: options.onProgress,
    };
    const message = encodeSystem(SystemEvent.UPLOAD, { transfer, event, size: data.byteLength });
    const answer = this.submitRequest(message, options.timeoutMs ?? NO_TIMEOUT, { onSettled: () => this.forgetUpload(upload) }, upload);
    const signal = options.signal;
    if (signal) {
      const onAbort = (): void => this.cancelUpload(upload, new RequestError(ClientErrorCode.ABORTED, `the upload of "${event}" was aborted`));
      signal.addEventListener('abort', onAbort, { once: true });
      upload.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    return answer;
  }

  /** Queues an encoded send and writes it if the connection is open. */
  submit(message: OutgoingMessage, hooks?: SendHooks): void {
    this.enqueue(message, hooks);
    this.flush();
  }

  /** Queues an encoded request; its promise settles with the reply, an `$error` or a timeout. */
  submitRequest(message: OutgoingMessage, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS, hooks?: SendHooks, upload?: OutgoingUpload): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const entry = this.enqueue(message, hooks);
      const timedOut = (): RequestError => requestTimeoutError(upload?.event ?? message.event, timeoutMs);
      entry.request = {
        resolve,
        reject,
        timer:
          timeoutMs === NO_TIMEOUT
            ? undefined
            : setTimeout(() => {
                if (upload) return this.cancelUpload(upload, timedOut());
                this.settle(entry);
                reject(timedOut());
              }, timeoutMs),
      };
      if (upload) {
        entry.upload = upload;
        upload.entry = entry;
        this.uploads.set(upload.transfer, upload);
      }
      this.flush();
    });
  }

  /** Closes with 1000 and stops for good: no reconnect; pending requests reject. */
  close(): void {
    if (this.currentState === 'closed' || this.currentState === 'failed') return;
    this.setState('closed');
    this.shutdown(new RequestError(ClientErrorCode.CLOSED, 'the client was closed'));
    this.ws?.close(CloseCode.NORMAL);
  }

  private enqueue(message: OutgoingMessage, hooks: SendHooks | undefined): OutboxEntry {
    if (this.isStopped()) throw new Error(`ReliableWsClient: cannot send on a ${this.currentState} client`);
    this.budget.reserve(message.bytes);
    const entry: OutboxEntry = { ...message, hooks };
    if (this.resyncInsertAt === undefined) this.outbox.push(entry);
    else this.outbox.splice(this.resyncInsertAt++, 0, entry);
    return entry;
  }

  /** Writes what this connection has not carried yet, unless the socket's buffer is full. */
  private flush(): void {
    const ws = this.ws;
    if (this.currentState !== 'open' || this.resyncInsertAt !== undefined || !ws || ws.readyState !== OPEN) return;
    const limit = this.options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    const unencodable: OutboxEntry[] = [];
    const tooLarge: OutboxEntry[] = [];
    let full = false;
    for (; this.unsentFrom < this.outbox.length; this.unsentFrom++) {
      const entry = this.outbox[this.unsentFrom]!;
      if ((full = ws.bufferedAmount > limit)) break;
      // Encoded before it takes an id: one that cannot be must not use up an id or stop the queue.
      const id = entry.id ?? this.nextId + 1;
      const frame = frameOf(entry, id);
      if (frame === undefined) {
        unencodable.push(entry);
        continue;
      }
      // The server would close the connection over it (1009), and it would be sent again after every reconnect.
      if (this.pastServerLimit(entry, frame)) {
        tooLarge.push(entry);
        continue;
      }
      if (entry.id === undefined) entry.id = this.nextId = id;
      this.awaitingAnswer.set(id, entry);
      entry.sentOn = this.connection;
      if (entry.upload) entry.upload.accepted = false;
      ws.send(frame);
    }
    for (const entry of unencodable) {
      this.conclude(entry, { ok: false, error: { code: ErrorCode.BAD_MESSAGE, message: `the send of "${String(entry.event)}" cannot be encoded` } });
    }
    for (const entry of tooLarge) {
      const message = `the send of "${entry.event}" is larger than the server takes in one frame (maxPayloadBytes ${this.serverMaxPayloadBytes}); send large data with upload()`;
      this.conclude(entry, { ok: false, error: { code: ErrorCode.PAYLOAD_TOO_LARGE, message } });
    }
    if (full) this.flushLater(DRAIN_POLL_MS);
    else this.pumpUploads(ws, limit);
  }

  /**
   * Sends the chunks of accepted uploads: whole chunks (see `chunkPayloadBytes`), per upload at
   * most `window` bytes beyond the server's last acknowledgement, each frame within the server's
   * `maxFrameBytes`, while the socket's buffer has room, and at most CHUNK_FRAMES_PER_TURN frames
   * before the event loop's next turn (a server may ask for frames of any size, 1 byte included).
   */
  private pumpUploads(ws: WebSocketLike, limit: number): void {
    let frames = 0;
    for (const upload of this.uploads.values()) {
      if (!upload.accepted || upload.entry?.sentOn !== this.connection) continue;
      const size = upload.data.byteLength;
      while (upload.sent < size) {
        const end = Math.min(upload.sent + upload.chunkBytes, size);
        if (end - upload.acked > upload.window) break;
        if (ws.bufferedAmount > limit) return this.flushLater(DRAIN_POLL_MS);
        if (frames++ === CHUNK_FRAMES_PER_TURN) return this.flushLater(0);
        ws.send(encodeBinaryMessage(chunkHeaderJson(upload.transfer, upload.sent), upload.data.subarray(upload.sent, end)));
        upload.sent = end;
      }
    }
  }

  private flushLater(delayMs: number): void {
    this.timers.flush ??= setTimeout(() => {
      this.timers.flush = undefined;
      this.flush();
    }, delayMs);
  }

  /**
   * `$chunk-ack` of an upload: the acceptance (with `window`) says where to continue, which may be
   * before what was acknowledged (the session moved to an instance without the upload's bytes);
   * later ones move `acked`.
   */
  private onChunkAck(data: unknown): void {
    const ack = chunkAckDataOf(data);
    const upload = typeof ack?.transfer === 'number' ? this.uploads.get(ack.transfer) : undefined;
    if (!ack || !upload || ack.received > upload.data.byteLength) return;
    if (ack.window !== undefined) {
      upload.accepted = true;
      upload.window = Math.max(1, ack.window);
      upload.chunkBytes = chunkPayloadBytes(upload.transfer, upload.data.byteLength, ack.maxFrameBytes ?? upload.window, upload.window);
      upload.sent = ack.received;
      if (ack.received < upload.acked) {
        upload.acked = ack.received;
        this.reportProgress(upload);
      }
    }
    if (ack.received > upload.acked) {
      upload.acked = ack.received;
      if (upload.sent < upload.acked) upload.sent = upload.acked;
      this.reportProgress(upload);
    }
    this.flush();
  }

  private reportProgress(upload: OutgoingUpload): void {
    const total = upload.data.byteLength;
    try {
      upload.onProgress?.(upload.acked, total);
    } catch (error) {
      console.error('ReliableWsClient: an upload onProgress callback threw', error);
    }
    const progress: TransferProgress = { event: upload.event, transfer: upload.transfer, received: upload.acked, total, direction: 'up' };
    this.emitter.emit('$progress', progress);
  }

  /** The handler's reply means the server had every byte, even if the last acknowledgement was lost in a cut. */
  private reportDelivered(upload: OutgoingUpload): void {
    if (upload.acked === upload.data.byteLength) return;
    upload.acked = upload.data.byteLength;
    this.reportProgress(upload);
  }

  /** Gives up on an upload: its promise rejects; a server that may have started it is told to free it. */
  private cancelUpload(upload: OutgoingUpload, reason: RequestError): void {
    const entry = upload.entry;
    if (!entry || !this.outbox.includes(entry)) return;
    const started = entry.id !== undefined;
    this.settle(entry);
    entry.request?.reject(reason);
    if (!started || this.isStopped()) return;
    this.forgetTransfer(upload.transfer);
    try {
      this.submit(encodeSystem(SystemEvent.CANCEL, { transfer: upload.transfer }));
    } catch {
      // a full queue: the server frees the upload when the session ends
    }
  }

  /** The server holds nothing of this upload: refusals of its chunks still in flight are not news. */
  private forgetTransfer(transfer: number): void {
    this.forgottenTransfers.add(transfer);
    if (this.forgottenTransfers.size > FORGOTTEN_REMEMBERED) this.forgottenTransfers.delete(this.forgottenTransfers.values().next().value as number);
  }

  private forgetUpload(upload: OutgoingUpload): void {
    this.uploads.delete(upload.transfer);
    upload.unlisten?.();
  }

  /** Whether a message's frame is larger than the server takes; measured only when its size comes near the limit. */
  private pastServerLimit(entry: OutgoingMessage, frame: string | Uint8Array): boolean {
    const max = this.serverMaxPayloadBytes;
    if (max === undefined || entry.bytes < max - FRAME_SIZE_MARGIN) return false;
    return (typeof frame === 'string' ? utf8.encode(frame).length : frame.byteLength) > max;
  }

  /**
   * A `$`-event of the client's own (a reply to a stream frame), written at once if the connection
   * is open: never queued. A server that sends frames needing replies but does not read would grow
   * the socket's buffer without bound; so beyond `maxBufferedBytes` of replies written while the
   * buffer was over `maxBufferedBytes`, the connection is taken as stalled and made again.
   */
  private sendSystem(event: string, data: unknown): void {
    const ws = this.ws;
    if (ws?.readyState !== OPEN) return;
    const frame = JSON.stringify({ event, data });
    const limit = this.options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (ws.bufferedAmount <= limit) this.repliesBehindFullBuffer = 0;
    else if ((this.repliesBehindFullBuffer += frame.length) > limit) return this.drop(this.connection, 'the server does not read');
    ws.send(frame);
  }

  private async connect(): Promise<void> {
    const connection = ++this.connection;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let token: string | undefined;
    try {
      token = typeof this.options.token === 'function' ? await answeredWithin(this.options.token, connectTimeoutMs) : this.options.token;
    } catch (error) {
      if (this.isCurrent(connection)) this.scheduleReconnect(CloseCode.INTERNAL_ERROR, `token provider failed: ${errorText(error)}`);
      return;
    }
    if (!this.isCurrent(connection)) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(this.url, SUBPROTOCOL);
    } catch (error) {
      this.fail(isInstance(error, Error) ? error : new Error(errorText(error)));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.lastInboundAt = performance.now();
    this.timers.connect = setTimeout(() => this.drop(connection, 'connect timeout'), connectTimeoutMs);
    ws.onopen = () => {
      if (this.isCurrent(connection)) this.sendHello(ws, token);
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (!this.isCurrent(connection)) return;
      // Whatever a server sends must not throw into the socket's event loop (in Node, that ends the process).
      try {
        this.receiveFrame(event.data);
      } catch (error) {
        console.error('ReliableWsClient: a frame from the server could not be handled', error);
        this.drop(connection, 'protocol error');
      }
    };
    ws.onclose = (event: { code: number; reason: string }) => {
      if (connection === this.connection) this.onClose(event.code, event.reason);
    };
    ws.onerror = () => undefined;
  }

  /** Whether events of that connection's socket still count: it is the latest, and `close()` was not called. */
  private isCurrent(connection: number): boolean {
    return connection === this.connection && !this.isStopped();
  }

  private sendHello(ws: WebSocketLike, token: string | undefined): void {
    const hello: HelloData = {};
    if (token !== undefined) hello.token = token;
    this.resumeAsked = undefined;
    if (this.options.resume !== false && this.session?.resumeToken) {
      hello.resume = { sessionId: this.session.id, resumeToken: this.session.resumeToken, lastSeq: this.lastSeq };
      this.resumeAsked = this.session.id;
    }
    ws.send(JSON.stringify({ event: SystemEvent.HELLO, data: hello }));
  }

  private receiveFrame(data: unknown): void {
    if (typeof data === 'string') this.receive(data);
    else if (data instanceof ArrayBuffer) this.receiveBinary(new Uint8Array(data));
    else if (ArrayBuffer.isView(data)) this.receiveBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  private receive(text: string): void {
    this.lastInboundAt = performance.now();
    const message = decodeServerMessage(text);
    if (!message || !this.takes(message.event)) return;
    switch (message.event) {
      case SystemEvent.READY:
        return this.onReady(message.data);
      case SystemEvent.PONG:
        return;
      case SystemEvent.ACK:
        return this.onAck(message.data);
      case SystemEvent.ERROR:
        return this.onError(message.data);
      case SystemEvent.CHUNK_ACK:
        return this.onChunkAck(message.data);
      case SystemEvent.STREAM:
        return this.streams.announce(message.data);
    }
    if (message.ref !== undefined) this.onReply(message);
    else this.onPush(message);
  }

  /** Before its `$ready` a connection serves no session: only `$ready` and `$error` count then. */
  private takes(event: string): boolean {
    return this.readyAt !== undefined || event === SystemEvent.READY || event === SystemEvent.ERROR;
  }

  /** A binary frame: a push or a reply whose data is the payload, or a chunk of a stream. */
  private receiveBinary(bytes: Uint8Array): void {
    this.lastInboundAt = performance.now();
    const message = decodeServerBinary(bytes);
    if (!message || !this.takes(message.event)) return;
    if (message.event === SystemEvent.CHUNK) return this.streams.chunk(message, message.data!);
    if (message.ref !== undefined) this.onReply(message);
    else this.onPush(message);
  }

  /**
   * The session is live; a `$ready` of another shape, or a second one on the same connection, is a
   * protocol failure: the connection is dropped and made again.
   */
  private onReady(data: unknown): void {
    if (this.readyAt !== undefined) return this.drop(this.connection, 'second $ready');
    const ready = readyDataOf(data);
    if (!ready) return this.drop(this.connection, 'malformed $ready');
    // Pushes of another session would be taken as this one's continuation: a silent gap.
    if (ready.resumed && ready.sessionId !== this.resumeAsked) return this.drop(this.connection, '$ready resumed another session');
    // The server cannot have taken an id never sent; one so high would number the next sends past 2^53.
    if (ready.resumed && ready.lastId > this.nextId) return this.drop(this.connection, '$ready lastId beyond the ids sent');
    clearTimeout(this.timers.connect);
    if (!ready.resumed) this.startNewSession();
    else this.continueSession(ready.lastId);
    if (ready.resumed && ready.streams) this.streams.keepOnly(ready.streams);
    this.unsentFrom = this.repliesBehindFullBuffer = 0;
    this.serverMaxPayloadBytes = ready.maxPayloadBytes;
    this.session = { id: ready.sessionId, resumeToken: ready.resumeToken };
    this.readyAt = performance.now();
    this.startHeartbeat();
    // What the application sends while it learns of the session (a resync) goes before the older queue.
    this.resyncInsertAt = 0;
    try {
      this.setState('open');
      this.emitter.emit('$ready', { sessionId: ready.sessionId, resumed: ready.resumed, missed: ready.missed });
    } finally {
      this.resyncInsertAt = undefined;
    }
    this.flush();
  }

  /**
   * A fresh session numbers ids from 1 again and knows nothing of the old one: requests already
   * sent in it fail with SESSION_LOST (their outcome is unknown); everything else is sent anew.
   */
  private startNewSession(): void {
    const hadSession = this.session !== undefined;
    this.nextId = 0;
    this.lastSeq = 0;
    this.ackedSeq = 0;
    this.awaitingAnswer.clear();
    this.streams.reset();
    for (const entry of [...this.outbox]) {
      if (entry.upload) {
        // The new session knows nothing of it: the upload starts again from its first byte.
        entry.upload.sent = entry.upload.acked = 0;
      } else if (hadSession && entry.request && entry.sentOn !== undefined) {
        this.settle(entry);
        entry.request.reject(new RequestError(ClientErrorCode.SESSION_LOST, 'the session was lost before the answer arrived'));
        continue;
      }
      entry.id = undefined;
      entry.sentOn = undefined;
    }
  }

  /**
   * After a resume, sends the server already took (id ≤ lastId) are done, and requests among
   * them are asked again for their cached answer. The server took no id above lastId, so those
   * are numbered afresh, in queue order: ids must reach the server in increasing order.
   */
  private continueSession(lastId: number): void {
    this.nextId = lastId;
    for (const entry of [...this.outbox]) {
      if (entry.id === undefined) continue;
      if (entry.id > lastId) {
        this.awaitingAnswer.delete(entry.id);
        entry.id = undefined;
      } else if (!entry.request) {
        this.settle(entry);
      }
    }
  }

  /** A `$error` of another shape is a protocol failure: it could neither answer a send nor be reported. */
  private onError(data: unknown): void {
    const error = errorDataOf(data);
    if (!error) return this.drop(this.connection, 'malformed $error');
    const transfer = (error.details as { transfer?: unknown } | undefined)?.transfer;
    if (error.ref === undefined && typeof transfer === 'number' && this.forgottenTransfers.has(transfer)) return;
    if (this.awaiting(error.ref)) {
      this.answer(error.ref, { ok: false, error });
    } else {
      this.emitter.emit('$error', error);
    }
  }

  /**
   * A reply carries its handler's event, an application's name; one named otherwise (a binary
   * `$error`, say) is no answer but a protocol failure, never taken as success.
   */
  private onReply(message: ServerMessage): void {
    if (!isAppEventName(message.event)) return this.drop(this.connection, 'malformed answer');
    this.answer(message.ref, { ok: true, data: message.data });
  }

  /** The send a `ref` answers: ids the client sends are numbers, so only the same number matches. */
  private awaiting(ref: unknown): OutboxEntry | undefined {
    return typeof ref === 'number' ? this.awaitingAnswer.get(ref) : undefined;
  }

  /**
   * `$ack { ref }`: the message was handled. With `duplicate: true` it was handled before and the
   * server no longer keeps its answer: done for a send, but a request cannot have its answer.
   */
  private onAck(data: unknown): void {
    if (!isRecord(data)) return;
    const entry = this.awaiting(data.ref);
    if (!entry) return;
    const lost = data.duplicate === true && entry.request !== undefined;
    this.conclude(entry, lost ? { ok: false, error: ANSWER_LOST } : { ok: true, data: undefined });
  }

  private answer(ref: unknown, outcome: Outcome): void {
    const entry = this.awaiting(ref);
    if (entry) this.conclude(entry, outcome);
  }

  /** Settles a send with its outcome: its request resolves or rejects; a failed send reports a `$error`. */
  private conclude(entry: OutboxEntry, outcome: Outcome): void {
    this.settle(entry);
    if (entry.request) {
      if (outcome.ok) {
        if (entry.upload) this.reportDelivered(entry.upload);
        entry.request.resolve(outcome.data);
      } else {
        if (entry.upload) this.forgetTransfer(entry.upload.transfer);
        entry.request.reject(new RequestError(outcome.error.code, outcome.error.message, outcome.error.details, outcome.error.retryAfterMs));
      }
    } else if (!outcome.ok) {
      if (entry.hooks?.onError) entry.hooks.onError(outcome.error);
      else this.emitter.emit('$error', outcome.error);
    }
  }

  /** Removes an entry from the queue once it has its answer (or its request gave up). */
  private settle(entry: OutboxEntry): void {
    const index = this.outbox.indexOf(entry);
    if (index === -1) return;
    this.outbox.splice(index, 1);
    if (index < this.unsentFrom) this.unsentFrom--;
    this.budget.release(entry.bytes);
    if (entry.id !== undefined) this.awaitingAnswer.delete(entry.id);
    if (entry.request) clearTimeout(entry.request.timer);
    entry.hooks?.onSettled?.();
  }

  /**
   * A push; one whose `seq` is not a whole number above the last one (a replayed one, or junk) is
   * dropped. Pushes are numbered 1, 2, 3 … and replayed from `lastSeq + 1`: a `seq` that skips
   * ahead means pushes went missing, so the connection is dropped and resumed from the last one.
   */
  private onPush(message: ServerMessage): void {
    if (message.seq !== undefined) {
      if (!Number.isSafeInteger(message.seq) || message.seq <= this.lastSeq) return;
      if (message.seq !== this.lastSeq + 1) return this.drop(this.connection, 'push seq gap');
      this.lastSeq = message.seq;
      this.scheduleAck();
    }
    // Only an application's name (1–128 characters): `$` names are the protocol's and the client's own events (`$state`, `$failed` …).
    if (isAppEventName(message.event)) this.emitter.emit(message.event, message.data);
  }

  /**
   * One cumulative `$ack` per `ackDelayMs`, due at a point of the period drawn once per client, so
   * that the clients of one broadcast ack at different moments. A push that arrives once it is due
   * takes it along (the server is awake, writing, and reads it at little cost); else a timer sends
   * it `ACK_GRACE` of a period later.
   */
  private scheduleAck(): void {
    const now = performance.now();
    if (this.ackDueAt === undefined) {
      const delayMs = this.options.ackDelayMs ?? DEFAULT_ACK_DELAY_MS;
      this.ackDueAt = now + untilPhase(now, this.ackPhase, delayMs);
      this.timers.ack = setTimeout(() => this.sendAck(), Math.min(this.ackDueAt - now + ACK_GRACE * delayMs, MAX_TIMER_DELAY_MS));
    } else if (now >= this.ackDueAt) {
      this.sendAck();
    }
  }

  private sendAck(): void {
    clearTimeout(this.timers.ack);
    this.timers.ack = undefined;
    this.ackDueAt = undefined;
    if (this.lastSeq <= this.ackedSeq || this.ws?.readyState !== OPEN) return;
    this.ackedSeq = this.lastSeq;
    this.ws.send(JSON.stringify({ event: SystemEvent.ACK, data: { seq: this.lastSeq } }));
  }

  private startHeartbeat(): void {
    clearInterval(this.timers.ping);
    if (!this.heartbeatOptions) return;
    this.timers.ping = setInterval(() => {
      if (this.timers.pong === undefined) this.ping();
    }, this.heartbeatOptions.intervalMs);
  }

  private ping(): void {
    if (!this.heartbeatOptions || this.ws?.readyState !== OPEN) return;
    const { timeoutMs } = this.heartbeatOptions;
    this.pingSentAt = performance.now();
    this.ws.send(JSON.stringify({ event: SystemEvent.PING, data: Date.now() }));
    const connection = this.connection;
    this.timers.pong = setTimeout(() => {
      this.timers.pong = undefined;
      if (connection !== this.connection || this.lastInboundAt >= this.pingSentAt) return;
      // A check that ran far too late was throttled (a background tab): silence cannot be told
      // from sleep, so ask again instead of reconnecting.
      if (performance.now() - this.pingSentAt > 2 * timeoutMs) this.ping();
      else this.drop(connection, 'heartbeat timeout');
    }, timeoutMs);
  }

  /** Gives up on a connection that hangs (connect or heartbeat timeout) and reconnects. */
  private drop(connection: number, reason: string): void {
    if (connection !== this.connection || this.isStopped()) return;
    const ws = this.ws as (WebSocketLike & { terminate?: () => void }) | undefined;
    this.connection++;
    // A stalled peer would not answer a close handshake: Node's `ws` can cut the socket at once.
    if (ws?.terminate) ws.terminate();
    else ws?.close(ABANDON_CLOSE_CODE, reason);
    this.onClose(CloseCode.GOING_AWAY, reason);
  }

  private onClose(code: number, reason: string): void {
    this.stopConnectionTimers();
    this.ws = undefined;
    this.endReadyPeriod();
    this.emitter.emit('$close', { code, reason });
    if (this.isStopped()) return;
    if (TERMINAL_CLOSE_CODES.includes(code)) {
      this.fail(new Error(`closed by the server with ${code}${reason ? ` (${reason})` : ''}`));
    } else if (code === CloseCode.UNAUTHORIZED) {
      if (this.retriedUnauthorized || typeof this.options.token !== 'function') {
        this.fail(new Error(`unauthorized (4001)${reason ? `: ${reason}` : ''}`));
      } else {
        this.retriedUnauthorized = true;
        this.scheduleReconnect(code, reason, 0);
      }
    } else {
      const delay = code === CloseCode.RATE_LIMITED ? rateLimitedDelay(this.reconnectOptions) : undefined;
      this.scheduleReconnect(code, reason, delay);
    }
  }

  /**
   * A connection that stayed open for `initialDelayMs` (at least MIN_STABLE_MS) after `$ready`
   * starts the schedule over. One closed sooner counts as a failed attempt (and a 4001 as the
   * failure of the fresh token), so a server that closes right after `$ready` meets the backoff
   * and, at last, `maxRetries`.
   */
  private endReadyPeriod(): void {
    const stableMs = Math.max(this.reconnectOptions.initialDelayMs, MIN_STABLE_MS);
    if (this.readyAt !== undefined && performance.now() - this.readyAt >= stableMs) {
      this.attempt = 0;
      this.retriedUnauthorized = false;
    }
    this.readyAt = undefined;
  }

  private scheduleReconnect(code: number, reason: string, delayMs?: number): void {
    this.attempt++;
    if (this.attempt > this.reconnectOptions.maxRetries) {
      this.fail(new Error(`gave up after ${this.reconnectOptions.maxRetries} reconnect attempts (last close ${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    const delay = delayMs ?? reconnectDelay(this.attempt, this.reconnectOptions);
    this.setState('reconnecting');
    this.emitter.emit('$reconnecting', { attempt: this.attempt, delayMs: delay });
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => {
      this.timers.reconnect = undefined;
      void this.connect();
    }, delay);
  }

  /** The browser is back online: skip the wait. */
  private reconnectNow(): void {
    if (this.currentState !== 'reconnecting' || this.timers.reconnect === undefined) return;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = undefined;
    void this.connect();
  }

  private fail(error: Error): void {
    this.setState('failed');
    this.shutdown(new RequestError(ClientErrorCode.CLOSED, `the client failed: ${error.message}`));
    this.emitter.emit('$failed', error);
  }

  /** Stops every timer and listener and rejects what waits for an answer. */
  private shutdown(reason: RequestError): void {
    this.stopConnectionTimers();
    clearTimeout(this.timers.reconnect);
    (globalThis as { removeEventListener?: (type: string, listener: () => void) => void }).removeEventListener?.(
      'online',
      this.onOnline,
    );
    this.unsentFrom = 0;
    for (const entry of this.outbox.splice(0)) {
      if (entry.request) {
        clearTimeout(entry.request.timer);
        entry.request.reject(reason);
      }
      entry.hooks?.onSettled?.();
    }
    this.awaitingAnswer.clear();
    this.budget.clear();
  }

  private stopConnectionTimers(): void {
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    clearTimeout(this.timers.ack);
    clearTimeout(this.timers.flush);
    this.timers.connect = this.timers.ping = this.timers.pong = this.timers.ack = this.timers.flush = undefined;
    this.ackDueAt = undefined;
  }
}

/** The frame of a queued send with its id; undefined for one that cannot be encoded (a malformed send from a tab). */
const utf8 = new TextEncoder();

/** How far below the server's limit a message's estimated size is taken as fitting without measuring its frame. */
const FRAME_SIZE_MARGIN = 1024;

function frameOf(entry: OutgoingMessage, id: number): string | Uint8Array<ArrayBuffer> | undefined {
  if (!isValidEventName(entry.event)) return undefined;
  if (entry.payload !== undefined) {
    return isBinaryData(entry.payload) ? encodeBinaryMessage(binaryHeaderJson(entry.event, { id }), entry.payload) : undefined;
  }
  return typeof entry.dataJson === 'string' ? `{"event":${JSON.stringify(entry.event)},"data":${entry.dataJson},"id":${id}}` : undefined;
}

/** What the token provider answers, or a rejection once it has taken `timeoutMs` (`connectTimeoutMs` bounds it too). */
async function answeredWithin<T>(provider: () => T | Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no token within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([provider(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Until the next point `phase` (a share of `periodMs`) into a period: in (0, periodMs], 0 for a zero period. */
function untilPhase(now: number, phase: number, periodMs: number): number {
  if (periodMs === 0) return 0;
  const intoPeriod = (((now - phase * periodMs) % periodMs) + periodMs) % periodMs;
  return periodMs - intoPeriod;
}
