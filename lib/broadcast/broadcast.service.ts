import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { preparePush, serializeData, type PreparedPush } from '../protocol/index.js';
import type { Session, SessionObserver, SessionRegistry } from '../session/index.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  type BroadcastEnvelope,
  type BroadcastTarget,
} from './broadcast-envelope.js';
import type { BroadcastTransport } from './broadcast.transport.js';
import { MembershipIndex } from './membership.index.js';

export interface BroadcastOptionsPerCall {
  /** A session id that does not receive this broadcast. */
  except?: string;
}

export type UserIdOf = (principal: unknown) => string | number | undefined;

/**
 * Pushes events to every client, a room, one session or one user's sessions, on this instance
 * and, through the transport, on every instance sharing it. Each payload is serialised once;
 * every push goes through the session (sequenced, counted against backpressure).
 */
export class BroadcastService implements SessionObserver, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BroadcastService.name);
  private readonly members = new MembershipIndex();
  private readonly channels: { all: string; direct: string; room: (room: string) => string };

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly transport: BroadcastTransport,
    private readonly instanceId: string,
    channelPrefix: string,
    private readonly userIdOf: UserIdOf,
  ) {
    this.channels = {
      all: `${channelPrefix}:all`,
      direct: `${channelPrefix}:direct`,
      room: (room) => `${channelPrefix}:room:${room}`,
    };
    sessions.observe(this);
  }

  /** Subscribes before the app listens, so `app.listen()` resolves with delivery live. */
  onApplicationBootstrap(): Promise<void> {
    return this.transport.start([this.channels.all, this.channels.direct], (_, payload) => this.receive(payload));
  }

  /** Runs after the sockets are gone. */
  onApplicationShutdown(): Promise<void> {
    return this.transport.close();
  }

  get healthy(): boolean {
    return this.transport.healthy;
  }

  toAll(event: string, data: unknown, options: BroadcastOptionsPerCall = {}): Promise<void> {
    return this.push({ kind: 'all' }, event, data, options.except);
  }

  toRoom(room: string, event: string, data: unknown, options: BroadcastOptionsPerCall = {}): Promise<void> {
    return this.push({ kind: 'room', room }, event, data, options.except);
  }

  toClient(sessionId: string, event: string, data: unknown): Promise<void> {
    return this.push({ kind: 'client', sessionId }, event, data);
  }

  toUser(userId: string | number, event: string, data: unknown): Promise<void> {
    return this.push({ kind: 'user', userId: String(userId) }, event, data);
  }

  /** Adds a session, here or on another instance, to a room. */
  async join(sessionId: string, room: string): Promise<void> {
    const session = this.sessions.getSession(sessionId);
    if (!session) return this.publish(this.channels.direct, { type: 'join', origin: this.instanceId, sessionId, room });
    if (this.members.join(session, room)) await this.transport.subscribe(this.channels.room(room));
  }

  async leave(sessionId: string, room: string): Promise<void> {
    const session = this.sessions.getSession(sessionId);
    if (!session) return this.publish(this.channels.direct, { type: 'leave', origin: this.instanceId, sessionId, room });
    if (this.members.leave(session, room)) await this.transport.unsubscribe(this.channels.room(room));
  }

  /** The rooms a local session is in. */
  roomsOf(sessionId: string): string[] {
    return [...(this.sessions.getSession(sessionId)?.rooms ?? [])];
  }

  sessionStarted(session: Session): void {
    const userId = this.userIdOf(session.principal);
    if (userId !== undefined) this.members.addUser(session, String(userId));
  }

  principalChanged(session: Session, previous: unknown): void {
    const before = this.userIdOf(previous);
    if (before !== undefined) this.members.removeUser(session, String(before));
    this.sessionStarted(session);
  }

  sessionEnded(session: Session): void {
    for (const room of [...session.rooms]) {
      if (this.members.leave(session, room)) {
        this.transport.unsubscribe(this.channels.room(room)).catch((error: unknown) => this.logFailure('unsubscribe', error));
      }
    }
    const userId = this.userIdOf(session.principal);
    if (userId !== undefined) this.members.removeUser(session, String(userId));
  }

  private async push(target: BroadcastTarget, event: string, data: unknown, except?: string): Promise<void> {
    const push = preparePush(event, serializeData(data));
    const deliveredHere = this.deliver(target, push, except);
    if (target.kind === 'client' && deliveredHere) return;
    const envelope: BroadcastEnvelope = { type: 'push', origin: this.instanceId, target, event, except, dataJson: push.dataJson };
    await this.publish(this.channelOf(target), envelope);
  }

  private channelOf(target: BroadcastTarget): string {
    if (target.kind === 'all') return this.channels.all;
    if (target.kind === 'room') return this.channels.room(target.room);
    return this.channels.direct;
  }

  private async publish(channel: string, envelope: BroadcastEnvelope): Promise<void> {
    try {
      await this.transport.publish(channel, encodeEnvelope(envelope));
    } catch (error) {
      this.logFailure(`publish to ${channel}`, error);
      throw error;
    }
  }

  /** Delivers to the local recipients; true when there was at least one. */
  private deliver(target: BroadcastTarget, push: PreparedPush, except?: string): boolean {
    let delivered = false;
    for (const session of this.recipients(target)) {
      if (session.id === except) continue;
      session.push(push);
      delivered = true;
    }
    return delivered;
  }

  private recipients(target: BroadcastTarget): Iterable<Session> {
    switch (target.kind) {
      case 'all':
        return this.sessions.allSessions();
      case 'room':
        return this.members.roomMembers(target.room) ?? [];
      case 'user':
        return this.members.userSessions(target.userId) ?? [];
      case 'client': {
        const session = this.sessions.getSession(target.sessionId);
        return session ? [session] : [];
      }
    }
  }

  private receive(payload: string): void {
    const envelope = decodeEnvelope(payload);
    if (!envelope || envelope.origin === this.instanceId) return;
    if (envelope.type === 'push') {
      this.deliver(envelope.target, preparePush(envelope.event, envelope.dataJson), envelope.except);
      return;
    }
    if (!this.sessions.getSession(envelope.sessionId)) return;
    const change = envelope.type === 'join' ? this.join(envelope.sessionId, envelope.room) : this.leave(envelope.sessionId, envelope.room);
    change.catch((error: unknown) => this.logFailure(envelope.type, error));
  }

  private logFailure(what: string, error: unknown): void {
    this.logger.error(`broadcast ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
