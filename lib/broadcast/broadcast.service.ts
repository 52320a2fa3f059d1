import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { preparePushOf, type PreparedPush, errorText } from '../protocol/index.js';
import type { Session, SessionObserver, SessionRegistry } from '../session/index.js';
import { LogThrottle, quote, ReliableWsMetrics } from '../telemetry/index.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  pushOf,
  type BroadcastEnvelope,
  type BroadcastTarget,
  type ChannelMark,
  type PushEnvelope,
} from './broadcast-envelope.js';
import type { BroadcastTransport } from './broadcast.transport.js';
import { MembershipIndex } from './membership.index.js';
import { RecentIds } from './recent-ids.js';
import { SessionHandover } from './session-handover.js';

export interface BroadcastOptionsPerCall {
  /** A session id that does not receive this broadcast. */
  except?: string;
}

export type UserIdOf = (principal: unknown) => string | number | undefined;

/** How long `join`/`leave` of a session on another instance waits for that instance to confirm. */
export const MEMBERSHIP_CONFIRM_TIMEOUT_MS = 5000;

/**
 * Broadcasts of other instances remembered by id: a copy published again after a reconnect
 * comes within moments, well inside this many broadcasts (about 1 MiB of ids).
 */
const PUSHES_REMEMBERED = 16_384;

/**
 * Pushes events to every client, a room, one session or one user's sessions, on this instance
 * and, through the transport, on every instance sharing it. Each payload is serialised once;
 * every push goes through the session (sequenced, counted against backpressure).
 */
export class BroadcastService implements SessionObserver, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BroadcastService.name);
  private readonly droppedLog = new LogThrottle((level, message) => this.logger[level](message));
  private readonly members = new MembershipIndex();
  private readonly pendingChanges = new Map<string, () => void>();
  private readonly pushesHeard = new RecentIds(PUSHES_REMEMBERED);
  /** The subscription of each room with local members, live once its promise resolves. */
  private readonly roomSubscriptions = new Map<string, Promise<void>>();
  /** Rooms subscribed to for claims of sessions in progress (see SessionHandover): how many claims need each. */
  private readonly claimedRooms = new Map<string, number>();
  private requestCounter = 0;
  private pushCounter = 0;
  private readonly channels: { all: string; direct: string; room: (room: string) => string };
  private readonly roomPrefix: string;
  private readonly handover: SessionHandover;

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly transport: BroadcastTransport,
    private readonly instanceId: string,
    private readonly channelPrefix: string,
    private readonly userIdOf: UserIdOf,
    private readonly metrics = new ReliableWsMetrics(),
  ) {
    this.channels = {
      all: `${channelPrefix}:all`,
      direct: `${channelPrefix}:direct`,
      room: (room) => `${channelPrefix}:room:${encodeRoom(room)}`,
    };
    this.roomPrefix = `${channelPrefix}:room:`;
    sessions.observe(this);
    this.handover = new SessionHandover(sessions, {
      instanceId,
      local: transport.local,
      publish: (envelope) => this.publish(this.channels.direct, envelope),
      subscribeRoom: (room) => this.claimRoom(room),
      releaseRoom: (room) => this.releaseClaimedRoom(room),
      store: (key, snapshot, ttlMs) => transport.store(key, snapshot, ttlMs),
      claim: (key, claim) => transport.claim(key, claim),
      takeBack: (key) => transport.takeBack(key),
      discard: (key) => transport.discard(key),
      userIdOf: (principal) => this.userIdString(principal),
      keyFor: (request) => `${channelPrefix}:handover:${request}`,
      relay: (sessionId, event, data) => void this.toClient(sessionId, event, data).catch(() => undefined), // a failed publish is logged
      positions: (rooms) => this.positions(rooms),
      whenDelivered: async (marks, timeoutMs) =>
        (await Promise.all(marks.map(([channel, epoch, offset]) => transport.whenDelivered(channel, { epoch, offset }, timeoutMs)))).every(Boolean),
    });
  }

  /** How far the channels of a session in these rooms are delivered here. */
  private positions(rooms: string[]): ChannelMark[] {
    const marks: ChannelMark[] = [];
    for (const channel of [this.channels.all, this.channels.direct, ...rooms.map(this.channels.room)]) {
      const position = this.transport.position(channel);
      if (position) marks.push([channel, position.epoch, position.offset]);
    }
    return marks;
  }

  /** Subscribes before the app listens, so `app.listen()` resolves with delivery live. */
  async onApplicationBootstrap(): Promise<void> {
    await this.transport.start(
      [this.channels.all, this.channels.direct],
      (_, payload) => this.receive(payload),
      (channel) => this.onLoss(channel),
    );
    const where = this.transport.description ?? this.transport.constructor.name;
    this.logger.log(`Broadcast: ${where}${this.transport.local ? '' : `, channel prefix "${this.channelPrefix}"`}`);
  }

  /**
   * Broadcasts of a channel are gone for good: the sessions they were for are ended and their
   * connections closed with 1012, so that their clients resume with `missed: true` and resync.
   */
  private onLoss(channel: string): void {
    const room = channel.startsWith(this.roomPrefix) ? decodeURIComponent(channel.slice(this.roomPrefix.length)) : undefined;
    const affected = [...(room === undefined ? this.sessions.allSessions() : (this.members.roomMembers(room) ?? []))];
    for (const session of affected) this.sessions.interrupt(session);
    this.logger.warn(
      `broadcasts on ${channel} were lost (history trimmed, or Redis lost its data): ` +
        `${affected.length} session(s) ended, their connections closed with 1012; their resume gets missed: true`,
    );
  }

  /** Runs after the sockets are gone. */
  onApplicationShutdown(): Promise<void> {
    return this.transport.close();
  }

  get healthy(): boolean {
    return this.transport.healthy;
  }

  // Every method is async: a wrong argument rejects (a TypeError), it never throws at the caller.

  async toAll(event: string, data: unknown, options?: BroadcastOptionsPerCall): Promise<void> {
    return this.push({ kind: 'all' }, event, data, options?.except);
  }

  async toRoom(room: string, event: string, data: unknown, options?: BroadcastOptionsPerCall): Promise<void> {
    return this.push({ kind: 'room', room: checkedRoom(room) }, event, data, options?.except);
  }

  async toClient(sessionId: string, event: string, data: unknown): Promise<void> {
    return this.push({ kind: 'client', sessionId }, event, data);
  }

  async toUser(userId: string | number, event: string, data: unknown): Promise<void> {
    if (typeof userId !== 'string' && typeof userId !== 'number') {
      throw new TypeError(`a user id must be a string or a number, got ${typeof userId}`);
    }
    return this.push({ kind: 'user', userId: String(userId) }, event, data);
  }

  /**
   * Adds a session, here or on another instance, to a room; resolves once pushes to the room
   * reach it. Rejects when no instance has the session.
   */
  async join(sessionId: string, room: string): Promise<void> {
    checkedRoom(room);
    const session = this.sessions.getSession(sessionId);
    if (!session) return this.changeRemotely('join', sessionId, room);
    const alreadyMember = session.rooms.has(room);
    this.members.join(session, room);
    try {
      await this.subscribeRoom(room);
    } catch (error) {
      // Not subscribed, so not a member: pushes from other instances would never reach it.
      if (!alreadyMember) this.members.leave(session, room);
      throw error;
    }
  }

  /** Subscribes to a room's channel once; a failed subscription is tried again by the next join. */
  private subscribeRoom(room: string): Promise<void> {
    let subscription = this.roomSubscriptions.get(room);
    if (!subscription) {
      subscription = this.transport.subscribe(this.channels.room(room)).catch((error: unknown) => {
        this.roomSubscriptions.delete(room);
        throw error;
      });
      this.roomSubscriptions.set(room, subscription);
    }
    return subscription;
  }

  /** Subscribes to a room for a claim of a session in progress, until the claim releases it. */
  private claimRoom(room: string): Promise<void> {
    this.claimedRooms.set(room, (this.claimedRooms.get(room) ?? 0) + 1);
    return this.subscribeRoom(room);
  }

  private releaseClaimedRoom(room: string): void {
    const claims = (this.claimedRooms.get(room) ?? 0) - 1;
    if (claims > 0) {
      this.claimedRooms.set(room, claims);
      return;
    }
    this.claimedRooms.delete(room);
    this.unsubscribeUnused(room).catch((error: unknown) => this.logFailure('unsubscribe', error));
  }

  async leave(sessionId: string, room: string): Promise<void> {
    checkedRoom(room);
    const session = this.sessions.getSession(sessionId);
    if (!session) return this.changeRemotely('leave', sessionId, room);
    if (this.members.leave(session, room)) await this.unsubscribeUnused(room);
  }

  /** Unsubscribes from a room that has no local member and that no claim in progress needs. */
  private async unsubscribeUnused(room: string): Promise<void> {
    if (this.members.roomMembers(room) || this.claimedRooms.has(room)) return;
    this.roomSubscriptions.delete(room);
    await this.transport.unsubscribe(this.channels.room(room));
  }

  /**
   * Brings a session that lives on another instance here, for its client's resume. Resolves
   * with the session, or undefined when no instance has it for these credentials; rejects with a
   * SessionUnsettledError when its owner keeps it for now (the client should come back).
   */
  claimSession(sessionId: string, resumeToken: string, principal: unknown): Promise<Session | undefined> {
    return this.handover.claim(sessionId, resumeToken, this.userIdString(principal));
  }

  /** Offers this instance's sessions to the other instances (graceful shutdown). */
  handOverSessions(timeoutMs: number): Promise<void> {
    return this.handover.offerAll(timeoutMs);
  }

  /** The rooms a local session is in. */
  roomsOf(sessionId: string): string[] {
    return [...(this.sessions.getSession(sessionId)?.rooms ?? [])];
  }

  /** Indexes the session's user; a session handed over from another instance brings its rooms. */
  sessionStarted(session: Session): void {
    this.indexUser(session);
    for (const room of session.rooms) {
      this.members.join(session, room);
      this.subscribeRoom(room).catch((error: unknown) => this.logFailure('subscribe', error));
    }
  }

  principalChanged(session: Session, previous: unknown): void {
    const before = this.userIdString(previous);
    if (before !== undefined) this.members.removeUser(session, before);
    this.indexUser(session);
  }

  private indexUser(session: Session): void {
    const userId = this.userIdString(session.principal);
    if (userId !== undefined) this.members.addUser(session, userId);
  }

  private userIdString(principal: unknown): string | undefined {
    const userId = this.userIdOf(principal);
    return userId === undefined ? undefined : String(userId);
  }

  sessionEnded(session: Session): void {
    for (const room of [...session.rooms]) {
      if (this.members.leave(session, room)) {
        this.unsubscribeUnused(room).catch((error: unknown) => this.logFailure('unsubscribe', error));
      }
    }
    const userId = this.userIdString(session.principal);
    if (userId !== undefined) this.members.removeUser(session, userId);
  }

  /** Asks the instance that has the session to change its membership, and waits for it to confirm. */
  private async changeRemotely(type: 'join' | 'leave', sessionId: string, room: string): Promise<void> {
    const request = `${this.instanceId}:${++this.requestCounter}`;
    let timer: NodeJS.Timeout | undefined;
    const confirmed = new Promise<void>((resolve, reject) => {
      this.pendingChanges.set(request, resolve);
      timer = setTimeout(
        () => reject(new Error(`${type}: no instance has session ${sessionId}`)),
        this.transport.local ? 0 : MEMBERSHIP_CONFIRM_TIMEOUT_MS,
      );
    });
    try {
      if (!this.transport.local) await this.publish(this.channels.direct, { type, origin: this.instanceId, sessionId, room, request });
      await confirmed;
    } finally {
      clearTimeout(timer);
      this.pendingChanges.delete(request);
    }
  }

  private async push(target: BroadcastTarget, event: string, data: unknown, except?: string): Promise<void> {
    const startedAt = this.metrics.timing ? performance.now() : 0;
    const id = `${this.instanceId}:${++this.pushCounter}`;
    const push = preparePushOf(event, data, id);
    const channel = this.channelOf(target); // before delivering: a room name no channel can carry throws
    const deliveredHere = this.deliver(target, push, except);
    if (startedAt > 0) this.metrics.recordBroadcast(performance.now() - startedAt, 'local');
    // A session moving to another instance must hear it there too.
    if (target.kind === 'client' && deliveredHere && !this.sessions.getSession(target.sessionId)?.moving) return;
    const envelope: PushEnvelope = {
      type: 'push',
      origin: this.instanceId,
      id,
      target,
      event,
      except,
      dataJson: push.dataJson,
      at: Date.now(),
    };
    if (push.payload) envelope.binary = push.payload;
    this.handover.hear(envelope);
    await this.publish(channel, envelope);
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
    if (!envelope) return this.logDropped(payload);
    if (envelope.origin === this.instanceId) return;
    switch (envelope.type) {
      case 'push':
        if (!this.pushesHeard.add(envelope.id)) return; // published twice: a command resent after a reconnect
        this.deliver(envelope.target, pushOf(envelope), envelope.except);
        if (envelope.at !== undefined && this.metrics.timing) this.metrics.recordBroadcast(Date.now() - envelope.at, 'remote');
        this.handover.hear(envelope);
        return;
      case 'done':
        this.pendingChanges.get(envelope.request)?.();
        return;
      case 'join':
      case 'leave':
        return this.changeHere(envelope);
      default:
        this.handover.receive(envelope);
    }
  }

  /** A membership change asked by another instance, for a session that may live here. */
  private changeHere(envelope: Extract<BroadcastEnvelope, { type: 'join' | 'leave' }>): void {
    if (!this.sessions.getSession(envelope.sessionId)) return;
    const change = envelope.type === 'join' ? this.join(envelope.sessionId, envelope.room) : this.leave(envelope.sessionId, envelope.room);
    change
      .then(() => this.publish(this.channels.direct, { type: 'done', origin: this.instanceId, request: envelope.request }))
      .catch((error: unknown) => this.logFailure(envelope.type, error));
  }

  /** Another version of this package, or something else, publishing on this prefix's channels. */
  private logDropped(payload: string): void {
    this.droppedLog.log(
      'dropped',
      'warn',
      `dropped a message on the channels of prefix "${this.channelPrefix}" that is not one this package sends: ${quote(payload)}`,
    );
  }

  private logFailure(what: string, error: unknown): void {
    this.logger.error(`broadcast ${what} failed: ${errorText(error)}`);
  }
}

/** A room name as given, once it is known to be text (`42` and `'42'` would be one channel but two rooms here). */
function checkedRoom(room: unknown): string {
  if (typeof room !== 'string') throw new TypeError(`a room name must be a string, got ${typeof room}`);
  return room;
}

/** A room's name as part of its channel's; a TypeError for one that is not well-formed UTF-16 (a lone surrogate). */
function encodeRoom(room: string): string {
  try {
    return encodeURIComponent(room);
  } catch {
    throw new TypeError(`a room name must be well-formed text, got ${JSON.stringify(room)}`);
  }
}
