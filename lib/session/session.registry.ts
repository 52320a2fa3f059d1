import type { ReliableSocket } from './reliable-socket.js';
import { Session } from './session.js';

/** Told when sessions start and end and when their principal changes. */
export interface SessionObserver {
  sessionStarted(session: Session): void;
  sessionEnded(session: Session): void;
  principalChanged(session: Session, previous: unknown): void;
}

/** The open connections of this instance, with or without a started session, and the sessions. */
export class SessionRegistry {
  private readonly connections = new Set<ReliableSocket>();
  private readonly sessions = new Map<string, Session>();
  private readonly observers: SessionObserver[] = [];
  private readonly emptyWaiters: Array<() => void> = [];

  constructor(private readonly sequenced: boolean) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  observe(observer: SessionObserver): void {
    this.observers.push(observer);
  }

  add(socket: ReliableSocket): void {
    this.connections.add(socket);
  }

  remove(socket: ReliableSocket): void {
    if (!this.connections.delete(socket)) return;
    if (socket.hasSession) this.endSession(socket.session);
    if (this.connections.size === 0) for (const resolve of this.emptyWaiters.splice(0)) resolve();
  }

  /** Starts a fresh session for a connection. */
  startSession(socket: ReliableSocket, principal: unknown): Session {
    const session = new Session(this.sequenced);
    session.principal = principal;
    this.sessions.set(session.id, session);
    socket.bindSession(session);
    for (const observer of this.observers) observer.sessionStarted(session);
    return session;
  }

  setPrincipal(session: Session, principal: unknown): void {
    const previous = session.principal;
    session.principal = principal;
    for (const observer of this.observers) observer.principalChanged(session, previous);
  }

  getSession(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** Every session of this instance. */
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

  private endSession(session: Session): void {
    if (!this.sessions.delete(session.id)) return;
    for (const observer of this.observers) observer.sessionEnded(session);
  }
}
