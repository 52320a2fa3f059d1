import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { DEFAULT_AUTH_TIMEOUT_MS, handshakeRequestOf } from '../auth/index.js';
import { SessionUnsettledError } from '../broadcast/index.js';
import {
  CloseCode,
  decodeClientBinary,
  decodeClientMessage,
  encodeFrame,
  ErrorCode,
  isSystemEventName,
  MAX_TIMER_DELAY_MS,
  memberText,
  plainAckSeq,
  serializeData,
  SUBPROTOCOL,
  SystemEvent,
  type ClientMessage,
  type MessageId,
  type ReadyData,
  errorText,
} from '../protocol/index.js';
import type { ResolvedReliableWsOptions } from '../reliable-ws.options.js';
import type { ReliableWsRuntime } from '../reliable-ws.runtime.js';
import { ANSWER_PENDING, ReliableSocket, type ResumeRequest } from '../session/index.js';
import { isProblemClose, quote, shortId, type ConnectionLog, type ReliableWsMetrics } from '../telemetry/index.js';
import type { ReliableWsServer } from './gateway-server.js';
import type { MessageDispatcher } from './message-dispatcher.js';
import { HelloDeadlines } from './hello-deadlines.js';
import { TransferProtocol } from './transfer-protocol.js';
import { wsErrorCloseCode } from './ws-error-close-code.js';

/**
 * The protocol of one accepted connection: `$hello` and its deadline, first-message auth,
 * resume, `$auth`, `$ping`, `$ack`, retry ids, and routing of application messages.
 */
export class ConnectionProtocol {
  private readonly log = new Logger('ReliableWsAdapter');
  private readonly options: ResolvedReliableWsOptions;
  private readonly transfers: TransferProtocol;
  private readonly metrics: ReliableWsMetrics;
  // Listeners shared by every connection: `ws` calls them with the connection's socket as `this`.
  private readonly onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  private readonly onClose: (this: WebSocket, code: number, reason: Buffer) => void;
  private readonly onError: (this: WebSocket, error: Error) => void;
  private readonly helloDeadlines: HelloDeadlines<ConnectionState>;

  constructor(
    private readonly runtime: ReliableWsRuntime,
    private readonly dispatcher: MessageDispatcher,
    private readonly connectionLog: ConnectionLog,
  ) {
    this.options = runtime.options;
    this.transfers = new TransferProtocol(this.options, dispatcher, (socket, ref) => this.admitUnhandled(socket, ref));
    this.metrics = runtime.metrics;
    this.helloDeadlines = new HelloDeadlines(this.helloTimeoutMs, (connection) => connection.socket.close(CloseCode.AUTH_TIMEOUT));
    const protocol = this;
    this.onMessage = function (data, isBinary) {
      protocol.onFrame(connectionOf(this), data, isBinary);
    };
    this.onClose = function (code, reason) {
      protocol.closed(connectionOf(this), code, reason.toString());
    };
    this.onError = function (error) {
      // `ws` has closed the connection over a bad frame (1009 too big, 1007 bad UTF-8, …): the server's close.
      const code = wsErrorCloseCode(error);
      if (code !== undefined) connectionOf(this).socket.closedWith ??= { code, reason: error.message };
      protocol.log.debug(`connection error: ${error.message}`);
    };
  }

  accept(
    wss: ReliableWsServer,
    ws: WebSocket,
    request: IncomingMessage,
    ip: string,
    credentials: HandshakeCredentials,
  ): void {
    const socket = new ReliableSocket(ws, handshakeRequestOf(request), ip, this.options.backpressure, this.metrics);
    const connection = new ConnectionState(wss, socket, credentials.principal);
    (ws as ConnectedWebSocket)[CONNECTION] = connection;
    this.runtime.sessions.add(socket);
    if (this.connectionLog.debugEnabled) {
      this.connectionLog.debug(`connection opened: ${wss.path} from ${ip}${ws.protocol ? ` (${ws.protocol})` : ''}`);
    }
    ws.on('ping', onPing);
    ws.on('pong', onPong);
    ws.on('error', this.onError);
    ws.on('message', this.onMessage);
    ws.on('close', this.onClose);
    if (credentials.rejected) {
      socket.close(credentials.timedOut ? CloseCode.AUTH_TIMEOUT : CloseCode.UNAUTHORIZED);
    } else if (this.refusedAsExpired(socket, credentials.principal)) {
      // closed 4001: nothing starts
    } else if (ws.protocol === SUBPROTOCOL || (this.runtime.authenticator && credentials.principal === undefined)) {
      this.helloDeadlines.start(connection);
    } else {
      this.startSession(connection, credentials.principal);
    }
  }

  private closed(connection: ConnectionState, code: number, reason: string): void {
    const { socket } = connection;
    this.helloDeadlines.stop(connection);
    connection.dispose();
    connection.wss.forget(socket);
    this.logClose(socket, code, reason);
    this.runtime.sessions.remove(socket, code);
    socket.notifyClosed(code);
  }

  /**
   * Counts and logs a closed connection by the code the server closed it with, or else the
   * client's (1005: none, 1006: dropped); a problem close the server chose at warn, once.
   */
  private logClose(socket: ReliableSocket, peerCode: number, peerReason: string): void {
    const sent = socket.closedWith;
    const code = sent?.code ?? peerCode;
    this.metrics.countClose(code, sent !== undefined);
    if (sent && isProblemClose(code)) {
      this.connectionLog.closed(code, `${sent.reason || 'no reason'} (${peerOf(socket)})`, sent.reason === CREDENTIALS_EXPIRED);
    } else if (this.connectionLog.debugEnabled) {
      const reason = sent ? sent.reason : peerReason;
      this.connectionLog.debug(`connection closed: ${code}${reason ? ` ${quote(reason)}` : ''} by the ${sent ? 'server' : 'client'} (${peerOf(socket)})`);
    }
  }

  private get helloTimeoutMs(): number {
    return this.options.auth ? this.options.auth.timeoutMs : DEFAULT_AUTH_TIMEOUT_MS;
  }

  /**
   * Resumes the session the client asks for when it can, else starts a fresh one (`missed` when
   * a resume was asked for and failed: the client must resync), then hands the connection to
   * the gateways.
   */
  private startSession(connection: ConnectionState, principal: unknown, resume?: ResumeRequest, helloId?: MessageId): void {
    const { socket, wss } = connection;
    this.helloDeadlines.stop(connection);
    const { sessions } = this.runtime;
    const resumed = resume && this.options.resume !== false ? this.resume(socket, resume, principal) : undefined;
    const session = resumed ?? sessions.startSession(socket, principal);
    if (resumed) sessions.setPrincipal(session, principal);
    this.watchExpiry(connection, principal);
    const ready: ReadyData = {
      sessionId: session.id,
      ...(this.options.resume === false ? {} : { resumeToken: resumed && resume ? resume.resumeToken : session.resumeToken }),
      resumed: resumed !== undefined,
      missed: resume !== undefined && resumed === undefined,
      lastId: session.lastId,
      heartbeatMs: this.options.heartbeat.intervalMs,
      maxPayloadBytes: this.options.maxPayloadBytes,
      ...(resumed ? { streams: session.streamsInProgress } : {}),
    };
    socket.writeSystem(encodeFrame(SystemEvent.READY, serializeData(ready), { ref: helloId }));
    this.logSessionStart(session.id, resume, resumed !== undefined);
    if (resumed && resume) socket.replayAfter(resume.lastSeq);
    session.attachTransfers(socket);
    this.announce(wss, socket);
  }

  private logSessionStart(sessionId: string, resume: ResumeRequest | undefined, resumed: boolean): void {
    if (resume && resumed) this.metrics.resumes.resumed++;
    else if (resume) this.metrics.resumes.missed++;
    if (!this.connectionLog.debugEnabled) return;
    if (!resume) {
      this.connectionLog.debug(`session ${shortId(sessionId)} started`);
    } else if (resumed) {
      this.connectionLog.debug(`session ${shortId(sessionId)} resumed after seq ${resume.lastSeq}`);
    } else {
      this.connectionLog.debug(
        `resume of session ${shortId(resume.sessionId)} missed (unknown, expired, wrong token or pushes gone): ` +
          `session ${shortId(sessionId)} started`,
      );
    }
  }

  /** Hands the connection to the gateways; a `handleConnection` that throws closes it with 1011. */
  private announce(wss: ReliableWsServer, socket: ReliableSocket): void {
    try {
      wss.announce(socket);
    } catch (error) {
      this.log.error(`a connection handler failed: ${errorText(error)}`);
      socket.close(CloseCode.INTERNAL_ERROR);
    }
  }

  /** A session resumes only for the same user (when auth tells users apart). */
  private resume(socket: ReliableSocket, request: ResumeRequest, principal: unknown) {
    const userIdOf = this.options.auth ? this.options.auth.userId : undefined;
    return this.runtime.sessions.resumeSession(
      socket,
      request,
      (session) => !userIdOf || userIdOf(session.principal) === userIdOf(principal),
    );
  }

  /**
   * Closes the connection 4001 `credentials expired` when the principal's credentials have
   * already expired: it starts no session and changes none (no `$ready`, no `$ack`).
   */
  private refusedAsExpired(socket: ReliableSocket, principal: unknown): boolean {
    if (principal === undefined || this.runtime.authenticator?.msUntilExpiry(principal) !== 0) return false;
    socket.close(CloseCode.UNAUTHORIZED, CREDENTIALS_EXPIRED);
    return true;
  }

  /** Closes the connection with 4001 when its credentials expire without a refresh. */
  private watchExpiry(connection: ConnectionState, principal: unknown): void {
    clearTimeout(connection.expiryTimer);
    const delay = this.runtime.authenticator?.msUntilExpiry(principal);
    if (delay === undefined || delay > MAX_TIMER_DELAY_MS) return;
    connection.expiryTimer = setTimeout(() => connection.socket.close(CloseCode.UNAUTHORIZED, CREDENTIALS_EXPIRED), delay);
  }

  private onFrame(connection: ConnectionState, data: RawData, isBinary: boolean): void {
    const { socket } = connection;
    if (!socket.isOpen) return;
    socket.markSeen();
    if (connection.verifying) {
      if (!connection.hold(data, isBinary)) socket.close(CloseCode.POLICY_VIOLATION, 'too many frames while credentials are checked');
      return;
    }
    const received = this.metrics.received;
    if (!isBinary && Buffer.isBuffer(data) && socket.hasSession) {
      const seq = plainAckSeq(data);
      if (seq !== undefined && socket.session.acknowledges(seq)) {
        received.system++;
        socket.session.acknowledge(seq);
        return;
      }
    }
    const text = isBinary ? undefined : data.toString();
    const decoded = text === undefined ? decodeClientBinary(bufferOf(data)) : decodeClientMessage(text, this.options.maxMessageDepth);
    if (!decoded.ok) {
      received.invalid++;
      if (this.admitUnhandled(socket, decoded.id)) {
        socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: decoded.reason, ref: decoded.id });
      }
      return;
    }
    const { message } = decoded;
    const system = isSystemEventName(message.event);
    if (system) received.system++;
    else if (message.id === undefined) received.message++;
    else received.request++;
    const header = 'header' in decoded ? (decoded.header as Record<string, unknown>) : undefined;
    if (header && system) {
      this.onBinarySystemEvent(socket, message, header);
    } else if (message.event === SystemEvent.CHUNK_ACK && socket.hasSession) {
      this.transfers.onChunkAck(socket, message); // charged only when it acknowledges nothing new
    } else if (isAdvancingAck(socket, message)) {
      socket.session.acknowledge((message.data as { seq: number }).seq);
      if (message.id !== undefined) this.answerAck(socket, message.id);
    } else if (system) {
      if (isOpeningHello(socket, message) || this.admitUnhandled(socket, message.id)) this.onSystemEvent(connection, message, text);
    } else if (!socket.hasSession) {
      socket.close(CloseCode.UNAUTHORIZED, 'send $hello first');
    } else if (this.isDuplicate(socket, message.id)) {
      return;
    } else if (!this.dispatcher.dispatch(socket, message) && this.admitUnhandled(socket, message.id, true)) {
      socket.replyError({ code: ErrorCode.UNKNOWN_EVENT, message: `no handler for event "${message.event}"`, ref: message.id });
    }
  }

  /** The one `$`-event that comes as a binary frame is `$chunk`. */
  private onBinarySystemEvent(socket: ReliableSocket, message: ClientMessage, header: Record<string, unknown>): void {
    if (!socket.hasSession) {
      socket.close(CloseCode.UNAUTHORIZED, 'send $hello first');
    } else if (message.event === SystemEvent.CHUNK) {
      this.transfers.onChunk(socket, header, message.data as Uint8Array, message.id);
    } else if (this.admitUnhandled(socket, message.id)) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: `${message.event} is not sent as a binary frame`, ref: message.id });
    }
  }

  /**
   * Takes a new retry id of an `rws.v1` client, or answers a duplicate from the session's cache
   * (nothing while its first run is still going: that answer will come).
   */
  private isDuplicate(socket: ReliableSocket, id: MessageId | undefined): boolean {
    if (!socket.tracksIds(id)) return false;
    const { session } = socket;
    if (id > session.lastId) {
      session.lastId = id;
      session.answers.markPending(id);
      return false;
    }
    if (!this.admitUnhandled(socket, id)) return true;
    const cached = session.answers.get(id);
    if (cached === ANSWER_PENDING) return true;
    this.metrics.sent.reply++;
    socket.write(cached ?? encodeFrame(SystemEvent.ACK, serializeData({ ref: id, duplicate: true })));
    return true;
  }

  /**
   * Charges a frame that no handler's limit covers against the protocol's own bucket. Over it,
   * answers `RATE_LIMITED`, kept as the answer of `ref` when `keepAnswer` (a retry id already taken).
   */
  private admitUnhandled(socket: ReliableSocket, ref: MessageId | undefined, keepAnswer = false): boolean {
    const decision = this.runtime.rateLimiter.consumeSystem(socket);
    if (decision.allowed) return true;
    const error = { code: ErrorCode.RATE_LIMITED, message: 'rate limit exceeded', ref, retryAfterMs: decision.retryAfterMs };
    if (keepAnswer) socket.replyError(error);
    else socket.sendError(error);
    return false;
  }

  /** @param text the frame's text (a system event other than `$chunk` always comes as one) */
  private onSystemEvent(connection: ConnectionState, message: ClientMessage, text: string | undefined): void {
    const { socket } = connection;
    const { event, data, id } = message;
    if (event === SystemEvent.PING) {
      this.pong(socket, text, id);
    } else if (event === SystemEvent.HELLO) {
      if (socket.hasSession) {
        socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: 'the session has already started', ref: id });
      } else if (this.helloNeedsNoCheck(connection, data)) {
        this.startSession(connection, connection.handshakePrincipal, undefined, id);
      } else {
        // The $hello deadline keeps running while the credentials are checked.
        void this.whileVerifying(connection, () => this.onHello(connection, data, id));
      }
    } else if (!socket.hasSession) {
      socket.close(CloseCode.UNAUTHORIZED, 'send $hello first');
    } else if (event === SystemEvent.AUTH && !this.runtime.authenticator) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: 'authentication is not configured', ref: id });
    } else if (event === SystemEvent.AUTH) {
      // unref: the socket keeps the process alive while the deadline matters; after app.close() it must not
      const deadline = setTimeout(() => socket.close(CloseCode.AUTH_TIMEOUT), this.helloTimeoutMs).unref();
      void this.whileVerifying(connection, () => this.onAuth(connection, data, id)).finally(() => clearTimeout(deadline));
    } else if (event === SystemEvent.ACK) {
      if (id !== undefined) this.answerAck(socket, id);
    } else if (event === SystemEvent.UPLOAD) {
      this.transfers.onUpload(socket, message);
    } else if (event === SystemEvent.CANCEL) {
      this.transfers.onCancel(socket, message);
    } else {
      socket.sendError({ code: ErrorCode.UNKNOWN_EVENT, message: `unknown system event "${event}"`, ref: id });
    }
  }

  /** `$pong` with the `$ping`'s data exactly as the client wrote it (depth-checked on the way in, not serialised again) and its id as `ref`. */
  private pong(socket: ReliableSocket, frameText: string | undefined, id: MessageId | undefined): void {
    const dataJson = (frameText && memberText(frameText, 'data')) ?? 'null';
    socket.writeSystem(encodeFrame(SystemEvent.PONG, dataJson, { ref: id }));
  }

  /** Every `$ack` that carries an id is answered, whether or not it moved the acknowledged seq. */
  private answerAck(socket: ReliableSocket, id: MessageId): void {
    socket.writeSystem(encodeFrame(SystemEvent.ACK, serializeData({ ref: id })));
  }

  private async onHello(connection: ConnectionState, data: unknown, id: MessageId | undefined): Promise<void> {
    const principal = await this.helloPrincipal(connection, tokenOf(data));
    // closed meanwhile (its deadline, the client): it resumes and claims nothing
    if (!connection.socket.isOpen) return;
    if (principal === REJECTED) {
      connection.socket.close(CloseCode.UNAUTHORIZED);
      return;
    }
    if (this.refusedAsExpired(connection.socket, principal)) return;
    const resume = resumeRequestOf(data);
    if (resume && resume !== UNMATCHED_RESUME && this.options.resume !== false && !(await this.claimed(resume, principal))) {
      // the session lives on but stays with its owner for now: the client reconnects and resumes it
      connection.socket.close(CloseCode.SERVICE_RESTART);
      return;
    }
    if (connection.socket.isOpen) this.startSession(connection, principal, resume, id);
  }

  /** Brings the session here if another instance has it; false when its owner keeps it for now. */
  private async claimed(resume: ResumeRequest, principal: unknown): Promise<boolean> {
    try {
      await this.runtime.broadcast.claimSession(resume.sessionId, resume.resumeToken, principal);
      return true;
    } catch (error) {
      if (!(error instanceof SessionUnsettledError)) throw error;
      if (this.connectionLog.debugEnabled) this.connectionLog.debug(`resume of session ${shortId(resume.sessionId)} held back: ${error.message}`);
      return false;
    }
  }

  /** A `$hello` that neither asks to resume nor brings a token to verify starts the session at once. */
  private helloNeedsNoCheck(connection: ConnectionState, data: unknown): boolean {
    return resumeRequestOf(data) === undefined && this.keepsHandshakePrincipal(connection, tokenOf(data));
  }

  /** Whether a `$hello` with this token keeps the handshake's principal (nothing to verify). */
  private keepsHandshakePrincipal(connection: ConnectionState, token: unknown): boolean {
    const auth = this.runtime.authenticator;
    return !auth || auth.options.mode === 'handshake' || (token === undefined && connection.handshakePrincipal !== undefined);
  }

  /** The principal a `$hello` establishes: the handshake's, or the one its token verifies to. */
  private async helloPrincipal(connection: ConnectionState, token: unknown): Promise<unknown> {
    if (this.keepsHandshakePrincipal(connection, token)) return connection.handshakePrincipal;
    const auth = this.runtime.authenticator!;
    const principal = typeof token === 'string' ? await auth.verify(token, connection.socket.request, connection.socket.ip) : undefined;
    return principal === undefined ? REJECTED : principal;
  }

  private async onAuth(connection: ConnectionState, data: unknown, id: MessageId | undefined): Promise<void> {
    const { socket } = connection;
    const auth = this.runtime.authenticator!;
    const token = tokenOf(data);
    const principal = typeof token === 'string' ? await auth.verify(token, socket.request, socket.ip) : undefined;
    // closed meanwhile (its deadline, the client, a resume that took the session over): changes nothing
    if (!socket.isOpen) return;
    if (principal === undefined) {
      socket.close(CloseCode.UNAUTHORIZED);
      return;
    }
    if (this.refusedAsExpired(socket, principal)) return; // `$auth` is answered `$ack` or closed 4001, never both
    this.runtime.sessions.setPrincipal(socket.session, principal);
    this.watchExpiry(connection, principal);
    socket.sendSystem(SystemEvent.ACK, id === undefined ? {} : { ref: id });
  }

  /** Runs a credential check with the connection's later frames held back, then replays them in order. */
  private async whileVerifying(connection: ConnectionState, check: () => Promise<void>): Promise<void> {
    connection.verifying = true;
    try {
      await check();
    } finally {
      connection.verifying = false;
      while (!connection.verifying && connection.socket.isOpen) {
        const frame = connection.release();
        if (!frame) break;
        this.onFrame(connection, frame[0], frame[1]);
      }
    }
  }
}

export interface HandshakeCredentials {
  /** A token was required or presented at the handshake and not accepted. */
  rejected: boolean;
  /** `verify` did not answer within `auth.timeoutMs`: closed 4008 rather than 4001. */
  timedOut?: boolean;
  principal?: unknown;
}

const REJECTED = Symbol('rejected credentials');

/**
 * The `$hello` that opens a session is not charged against the protocol's bucket: it comes once,
 * since it starts the session or closes the connection (frames wait while it is checked).
 */
function isOpeningHello(socket: ReliableSocket, message: ClientMessage): boolean {
  return message.event === SystemEvent.HELLO && !socket.hasSession;
}

/** A binary frame as one Buffer (`ws` hands over fragments as an array, or an ArrayBuffer by binaryType). */
function bufferOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** The close reason of credentials that expired without a refresh: routine, logged at debug. */
const CREDENTIALS_EXPIRED = 'credentials expired';

/** Frames held while credentials are checked, at most: beyond either bound the connection is closed 1008. */
export const MAX_HELD_FRAMES = 32;
export const MAX_HELD_BYTES = 256 * 1024;

type HeldFrame = [data: RawData, isBinary: boolean, bytes: number];

/** Where a connection's `ws` socket keeps its protocol state, for the shared listeners. */
const CONNECTION = Symbol('connection');

type ConnectedWebSocket = WebSocket & { [CONNECTION]: ConnectionState };

function connectionOf(ws: WebSocket): ConnectionState {
  return (ws as ConnectedWebSocket)[CONNECTION];
}

function onPing(this: WebSocket, data: Buffer): void {
  connectionOf(this).socket.pong(data);
}

function onPong(this: WebSocket): void {
  connectionOf(this).socket.markSeen();
}

/** Per-connection protocol state that only the adapter needs. */
class ConnectionState {
  expiryTimer: NodeJS.Timeout | undefined;
  verifying = false;
  /** Frames held while credentials are checked; none most of the time. */
  private held: HeldFrame[] | undefined;
  private heldBytes = 0;

  constructor(
    readonly wss: ReliableWsServer,
    readonly socket: ReliableSocket,
    readonly handshakePrincipal: unknown,
  ) {}

  /** Keeps a frame for after the credential check; false (keeping nothing more) once over the bounds. */
  hold(data: RawData, isBinary: boolean): boolean {
    const bytes = Array.isArray(data) ? data.reduce((sum, part) => sum + part.byteLength, 0) : data.byteLength;
    const held = (this.held ??= []);
    if (held.length >= MAX_HELD_FRAMES || this.heldBytes + bytes > MAX_HELD_BYTES) {
      this.dropHeld();
      return false;
    }
    held.push([data, isBinary, bytes]);
    this.heldBytes += bytes;
    return true;
  }

  /** The oldest held frame, taken out. */
  release(): HeldFrame | undefined {
    const frame = this.held?.shift();
    if (frame) this.heldBytes -= frame[2];
    return frame;
  }

  dispose(): void {
    clearTimeout(this.expiryTimer);
    this.dropHeld();
  }

  private dropHeld(): void {
    this.held = undefined;
    this.heldBytes = 0;
  }
}

/** An `$ack` that moves the session's acknowledged seq forward: free, as it is bounded by the pushes sent. */
function isAdvancingAck(socket: ReliableSocket, { event, data }: ClientMessage): boolean {
  if (event !== SystemEvent.ACK || !socket.hasSession) return false;
  const seq = (data as { seq?: unknown } | null | undefined)?.seq;
  return typeof seq === 'number' && socket.session.acknowledges(seq);
}

/** The connection in a log line: its session, if started, and its address. */
function peerOf(socket: ReliableSocket): string {
  return `${socket.hasSession ? `session ${shortId(socket.id)}, ` : ''}${socket.ip}`;
}

/**
 * `$hello.resume`: undefined when absent (or null); one of the wrong shape is `UNMATCHED_RESUME`,
 * so that the client, which asked to resume, hears `missed: true`.
 */
function resumeRequestOf(data: unknown): ResumeRequest | undefined {
  const resume = typeof data === 'object' && data !== null ? (data as { resume?: unknown }).resume : undefined;
  if (resume === undefined || resume === null) return undefined;
  const { sessionId, resumeToken, lastSeq } = (typeof resume === 'object' ? resume : {}) as Record<string, unknown>;
  if (typeof sessionId !== 'string' || typeof resumeToken !== 'string' || typeof lastSeq !== 'number') return UNMATCHED_RESUME;
  return { sessionId, resumeToken, lastSeq };
}

/** A resume request that no session matches (no session has the id ''), nor needs asking another instance for. */
const UNMATCHED_RESUME: ResumeRequest = { sessionId: '', resumeToken: '', lastSeq: -1 };

function tokenOf(data: unknown): unknown {
  return typeof data === 'object' && data !== null ? (data as { token?: unknown }).token : undefined;
}

