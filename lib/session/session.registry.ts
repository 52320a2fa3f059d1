import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { CloseCode, errorText, SUBPROTOCOL } from '../protocol/index.js';
import { DetachedSessions } from './detached-sessions.js';
import type { ReliableSocket } from './reliable-socket.js';
import { ReplayBudget } from './replay-buffer.js';
import type { TransferLimits } from '../transfer/index.js';
import { DEFAULT_SESSION_MAX_BYTES, DEFAULT_TOTAL_MAX_BYTES, Session, type ReplayByteLimits, type SessionSnapshot } from './session.js';

/**
 * Told when sessions of this instance start (new, or taken over from another instance) and end
 * (closed by the client with 1000, expired, evicted, resumed too late, or moved to another
 * instance), and when their principal changes. One that throws is logged; the others are still told.
 */
export interface SessionObserver {
  sessionStarted?(session: Session): void;
  sessionEnded?(session: Session): void;
  principalChanged?(session: Session, previous: unknown): void;
}

export interface SessionLifetime {
  /** Pushes kept per session for replay. */
  bufferSize: number;
  /** How long a session outlives its connection. */
  ttlMs: number;
  /** Bytes of pushes kept per session for replay, and of answers kept for duplicate ids. Default: unbounded. */
  maxBufferedBytes?: number;
  /** Bytes of pushes kept for replay by all sessions together. Default: unbounded. */
  maxTotalBytes?: number;
  /** Sessions kept for a resume after their connection dropped. Default: unbounded. */
  maxDetachedSessions?: number;
  /** Open connections plus detached sessions one address may hold. Default: unbounded. */
  maxPerIp?: number;
}

export interface ResumeRequest {
  sessionId: string;
  resumeToken: string;
  lastSeq: number;
}

/** Evictions are logged at the first and then once per this many. */
const EVICTION_LOG_EVERY = 1000;

/**
 * The open connections of this instance, with or without a started session, and the sessions,
 * which outlive a dropped connection for `ttlMs` so that the client can resume them.
 */
export class SessionRegistry implements OnApplicationShutdown {
  private readonly logger = new Logger(SessionRegistry.name);
  private readonly connections = new Set<ReliableSocket>();
  private readonly connectionsByIp = new Map<string, number>();
  private readonly sessions = new Map<string, Session>();
  private readonly detached = new DetachedSessions();
  private readonly expiryTimers = new Map<Session, NodeJS.Timeout>();
  private readonly observers: SessionObserver[] = [];
  private readonly emptyWaiters: Array<() => void> = [];
  private readonly replayLimits: ReplayByteLimits;
  private evictions = 0;

  /**
   * @param lifetime `false` when sessions are off: no numbering, and a session ends with its connection.
   * @param transfers bounds of each session's chunked transfers (default: `DEFAULT_TRANSFER_LIMITS`)
   */
  constructor(
    private readonly lifetime: SessionLifetime | false,
    transfers?: TransferLimits,
  ) {
    if (!lifetime) {
      // Without sessions nothing is replayed, but an rws.v1 connection still keeps answers, and transfers hold bytes.
      this.replayLimits = { maxBufferedBytes: DEFAULT_SESSION_MAX_BYTES, budget: new ReplayBudget(DEFAULT_TOTAL_MAX_BYTES), transfers };
      return;
    }
    const budget = new ReplayBudget(lifetime.maxTotalBytes ?? Number.POSITIVE_INFINITY, () => this.evictWhile(() => budget.exceeded));
    this.replayLimits = { maxBufferedBytes: lifetime.maxBufferedBytes ?? Number.POSITIVE_INFINITY, budget, transfers };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Sessions waiting for their client to resume. */
  get detachedCount(): number {
    return this.detached.size;
  }

  /** Bytes of pushes kept for replay by all sessions. */
  get bufferedBytes(): number {
    return this.replayLimits.budget?.used ?? 0;
  }

  observe(observer: SessionObserver): void {
    this.observers.push(observer);
  }

  add(socket: ReliableSocket): void {
    this.connections.add(socket);
    this.connectionsByIp.set(socket.ip, (this.connectionsByIp.get(socket.ip) ?? 0) + 1);
  }

  /**
   * Forgets a closed connection. Its session ends when the client closed with 1000 or cannot
   * resume it (sessions off, a plain client); otherwise it waits `ttlMs` for a resume.
   */
  remove(socket: ReliableSocket, closeCode: number): void {
    if (!this.connections.delete(socket)) return;
    const left = (this.connectionsByIp.get(socket.ip) ?? 1) - 1;
    if (left === 0) this.connectionsByIp.delete(socket.ip);
    else this.connectionsByIp.set(socket.ip, left);
    if (socket.hasSession && socket.session.detach(socket)) {
      const { session } = socket;
      if (!this.lifetime || !session.resumable || closeCode === CloseCode.NORMAL || this.lifetime.ttlMs === 0) {
        this.endSession(session);
      } else {
        this.keepDetached(session, this.lifetime.ttlMs);
      }
    }
    if (this.connections.size === 0) for (const resolve of this.emptyWaiters.splice(0)) resolve();
  }

  /**
   * Starts a fresh session for a connection. Only an `rws.v1` client can resume one, so only its
   * session keeps pushes for replay; a plain client's pushes are numbered all the same.
   */
  startSession(socket: ReliableSocket, principal: unknown): Session {
    const resumable = this.lifetime && socket.protocol === SUBPROTOCOL;
    const session = new Session(this.lifetime !== false, resumable ? this.lifetime.bufferSize : 0, undefined, this.replayLimits);
    session.principal = principal;
    session.ip = socket.ip;
    this.sessions.set(session.id, session);
    socket.bindSession(session);
    this.notify((observer) => observer.sessionStarted?.(session));
    this.keepAddressShare(socket.ip);
    return session;
  }

  /**
   * Hands a known session to a new connection, taking it over from a connection the server still
   * believes open. Returns the session, or undefined when it cannot be resumed
   * (unknown, expired, wrong token, not `accepted`, or pushes it missed are gone).
   */
  resumeSession(
    socket: ReliableSocket,
    request: ResumeRequest,
    accepted: (session: Session) => boolean,
  ): Session | undefined {
    const session = this.sessions.get(request.sessionId);
    if (!session || session.moving || !session.acceptsToken(request.resumeToken) || !accepted(session)) return undefined;
    if (!session.canReplayAfter(request.lastSeq)) {
      this.release(session);
      return undefined;
    }
    this.stopWaiting(session);
    session.takeOver()?.terminate();
    session.ip = socket.ip;
    socket.bindSession(session);
    return session;
  }

  /** Takes in a session handed over by another instance; it waits for its client's resume. */
  adopt(snapshot: SessionSnapshot, resumeToken?: string): Session | undefined {
    if (!this.lifetime || this.sessions.has(snapshot.id)) return undefined;
    const session = Session.restore(snapshot, this.lifetime.bufferSize, this.replayLimits, resumeToken);
    this.sessions.set(session.id, session);
    this.notify((observer) => observer.sessionStarted?.(session));
    this.keepDetached(session, this.lifetime.ttlMs);
    return this.sessions.get(session.id);
  }

  /**
   * Ends a session that missed pushes for good: its connection is closed with 1012 (service
   * restart) and its client's resume gets `missed: true`.
   */
  interrupt(session: Session): void {
    const transport = session.takeOver();
    this.endSession(session);
    transport?.close(CloseCode.SERVICE_RESTART);
  }

  /**
   * Ends a session its client left for good (handed over to another instance, or resumed too late
   * for its pushes): its connection, if the server still believes one open, is cut.
   */
  release(session: Session): void {
    session.takeOver()?.terminate();
    this.endSession(session);
  }

  /** How long a detached session is kept, or 0 when sessions are off. */
  get ttlMs(): number {
    return this.lifetime ? this.lifetime.ttlMs : 0;
  }

  setPrincipal(session: Session, principal: unknown): void {
    const previous = session.principal;
    session.principal = principal;
    this.notify((observer) => observer.principalChanged?.(session, previous));
  }

  getSession(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** Every session of this instance, connected or waiting for a resume. */
  allSessions(): IterableIterator<Session> {
    return this.sessions.values();
  }

  [Symbol.iterator](): IterableIterator<ReliableSocket> {
    return this.connections.values();
  }

  /** Resolves once no connection is left open. */
  whenEmpty(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  onApplicationShutdown(): void {
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  /**
   * Keeps a session without connection for `ttlMs`, within the bounds: its address's share
   * (connections plus detached sessions), the number of detached sessions, and the bytes.
   */
  private keepDetached(session: Session, ttlMs: number): void {
    const timer = setTimeout(() => {
      this.expiryTimers.delete(session);
      if (!session.attached) this.endSession(session);
    }, ttlMs);
    timer.unref();
    this.expiryTimers.set(session, timer);
    this.detached.add(session);
    this.keepAddressShare(session.ip);
    const { maxDetachedSessions = Number.POSITIVE_INFINITY } = this.lifetime || {};
    this.evictWhile(() => this.detached.size > maxDetachedSessions);
  }

  /** Evicts an address's oldest detached sessions while it holds more than its share. */
  private keepAddressShare(ip: string): void {
    if (ip === '') return; // unknown (a session from an older instance): no address to hold to a share
    const { maxPerIp = Number.POSITIVE_INFINITY } = this.lifetime || {};
    const open = this.connectionsByIp.get(ip) ?? 0;
    while (this.detached.countOf(ip) > 0 && open + this.detached.countOf(ip) > maxPerIp) {
      this.evict(this.detached.oldestOf(ip)!);
    }
  }

  /** Evicts detached sessions, the largest address's oldest first, while `over()` holds. */
  private evictWhile(over: () => boolean): void {
    for (let victim = this.detached.victim(); victim && over(); victim = this.detached.victim()) this.evict(victim);
  }

  /** Ends a detached session early: its client's resume will answer `missed: true`. */
  private evict(session: Session): void {
    this.endSession(session);
    if (++this.evictions % EVICTION_LOG_EVERY === 1) {
      this.logger.warn(
        `evicted detached session(s) to stay within the resume bounds (${this.evictions} so far; ` +
          `${this.detached.size} detached, ${this.bufferedBytes} bytes buffered)`,
      );
    }
  }

  private stopWaiting(session: Session): void {
    clearTimeout(this.expiryTimers.get(session));
    this.expiryTimers.delete(session);
    this.detached.delete(session);
  }

  private notify(tell: (observer: SessionObserver) => void): void {
    for (const observer of this.observers) {
      try {
        tell(observer);
      } catch (error) {
        this.logger.error(`a session observer failed: ${errorText(error, { stack: true })}`);
      }
    }
  }

  private endSession(session: Session): void {
    this.stopWaiting(session);
    if (!this.sessions.delete(session.id)) return;
    session.dispose();
    this.notify((observer) => observer.sessionEnded?.(session));
  }
}
