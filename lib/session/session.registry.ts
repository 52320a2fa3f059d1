import type { OnApplicationShutdown } from '@nestjs/common';
import { CloseCode, SUBPROTOCOL } from '../protocol/index.js';
import type { ReliableSocket } from './reliable-socket.js';
import { secretsEqual } from './session-id.js';
import { Session, type SessionSnapshot } from './session.js';

/** Told when sessions start and end and when their principal changes. */
export interface SessionObserver {
  sessionStarted(session: Session): void;
  sessionEnded(session: Session): void;
  principalChanged(session: Session, previous: unknown): void;
}

export interface SessionLifetime {
  /** Pushes kept per session for replay. */
  bufferSize: number;
  /** How long a session outlives its connection. */
  ttlMs: number;
}

export interface ResumeRequest {
  sessionId: string;
  resumeToken: string;
  lastSeq: number;
}

/**
 * The open connections of this instance, with or without a started session, and the sessions,
 * which outlive a dropped connection for `ttlMs` so that the client can resume them.
 */
export class SessionRegistry implements OnApplicationShutdown {
  private readonly connections = new Set<ReliableSocket>();
  private readonly sessions = new Map<string, Session>();
  private readonly expiryTimers = new Map<Session, NodeJS.Timeout>();
  private readonly observers: SessionObserver[] = [];
  private readonly emptyWaiters: Array<() => void> = [];

  /** @param lifetime `false` when sessions are off: no numbering, and a session ends with its connection. */
  constructor(private readonly lifetime: SessionLifetime | false) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  observe(observer: SessionObserver): void {
    this.observers.push(observer);
  }

  add(socket: ReliableSocket): void {
    this.connections.add(socket);
  }

  /**
   * Forgets a closed connection. Its session ends when the client closed with 1000 or cannot
   * resume it (sessions off, a plain client); otherwise it waits `ttlMs` for a resume.
   */
  remove(socket: ReliableSocket, closeCode: number): void {
    if (!this.connections.delete(socket)) return;
    if (socket.hasSession && socket.session.detach(socket)) {
      const { session } = socket;
      if (!this.lifetime || !session.resumable || closeCode === CloseCode.NORMAL || this.lifetime.ttlMs === 0) {
        this.endSession(session);
      }
      else this.expireLater(session, this.lifetime.ttlMs);
    }
    if (this.connections.size === 0) for (const resolve of this.emptyWaiters.splice(0)) resolve();
  }

  /**
   * Starts a fresh session for a connection. Only an `rws.v1` client can resume one, so only its
   * session keeps pushes for replay; a plain client's pushes are numbered all the same.
   */
  startSession(socket: ReliableSocket, principal: unknown): Session {
    const resumable = this.lifetime && socket.protocol === SUBPROTOCOL;
    const session = new Session(this.lifetime !== false, resumable ? this.lifetime.bufferSize : 0);
    session.principal = principal;
    this.sessions.set(session.id, session);
    socket.bindSession(session);
    for (const observer of this.observers) observer.sessionStarted(session);
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
    if (!session || !secretsEqual(session.resumeToken, request.resumeToken) || !accepted(session)) return undefined;
    if (!session.canReplayAfter(request.lastSeq)) {
      this.endSession(session);
      return undefined;
    }
    clearTimeout(this.expiryTimers.get(session));
    this.expiryTimers.delete(session);
    session.takeOver()?.terminate();
    socket.bindSession(session);
    return session;
  }

  /** Takes in a session handed over by another instance; it waits for its client's resume. */
  adopt(snapshot: SessionSnapshot): Session | undefined {
    if (!this.lifetime || this.sessions.has(snapshot.id)) return undefined;
    const session = Session.restore(snapshot, this.lifetime.bufferSize);
    this.sessions.set(session.id, session);
    for (const observer of this.observers) observer.sessionStarted(session);
    this.expireLater(session, this.lifetime.ttlMs);
    return session;
  }

  /** Lets go of a session handed over to another instance: its connection, if any, is cut. */
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
    for (const observer of this.observers) observer.principalChanged(session, previous);
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

  private expireLater(session: Session, ttlMs: number): void {
    const timer = setTimeout(() => {
      this.expiryTimers.delete(session);
      if (!session.attached) this.endSession(session);
    }, ttlMs);
    timer.unref();
    this.expiryTimers.set(session, timer);
  }

  private endSession(session: Session): void {
    if (!this.sessions.delete(session.id)) return;
    clearTimeout(this.expiryTimers.get(session));
    this.expiryTimers.delete(session);
    for (const observer of this.observers) observer.sessionEnded(session);
  }
}
