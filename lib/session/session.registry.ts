import type { ReliableSocket } from './reliable-socket.js';
import { Session } from './session.js';

/** The open connections of this instance, with or without a started session, and the sessions. */
export class SessionRegistry {
  private readonly connections = new Set<ReliableSocket>();
  private readonly sessions = new Map<string, Session>();
  private readonly emptyWaiters: Array<() => void> = [];

  constructor(private readonly sequenced: boolean) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  add(socket: ReliableSocket): void {
    this.connections.add(socket);
  }

  remove(socket: ReliableSocket): void {
    if (!this.connections.delete(socket)) return;
    if (socket.hasSession) this.sessions.delete(socket.id);
    if (this.connections.size === 0) for (const resolve of this.emptyWaiters.splice(0)) resolve();
  }

  /** Starts a fresh session for a connection. */
  startSession(socket: ReliableSocket): Session {
    const session = new Session(this.sequenced);
    this.sessions.set(session.id, session);
    socket.bindSession(session);
    return session;
  }

  getSession(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  [Symbol.iterator](): IterableIterator<ReliableSocket> {
    return this.connections.values();
  }

  /** Resolves once no connection is left open. */
  whenEmpty(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }
}
