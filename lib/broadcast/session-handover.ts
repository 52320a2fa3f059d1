import { Logger } from '@nestjs/common';
import { LogThrottle, quote, shortId } from '../telemetry/index.js';
import {
  claimProof,
  hashSecret,
  secretsEqual,
  type Session,
  type SessionRegistry,
  type SessionSnapshot,
} from '../session/index.js';
import { pushOf, type BroadcastTarget, type ChannelMark, type HandoverEnvelope, type PushEnvelope } from './broadcast-envelope.js';
import type { HandoverTakeBack } from './broadcast.transport.js';
import { errorText, isInstance } from '../protocol/index.js';

/** How long each step of a handover waits for the other instance. */
export const HANDOVER_STEP_TIMEOUT_MS = 1000;
/** How long the owner waits to have delivered what the claimer will not hear. */
const POSITIONS_TIMEOUT_MS = HANDOVER_STEP_TIMEOUT_MS / 2;
/** How long the claimer waits for `done`: the owner's delivery wait, running handlers, and the store. */
const COMMIT_TIMEOUT_MS = 2 * HANDOVER_STEP_TIMEOUT_MS;
/** How long a shutting-down instance waits for the others to answer its roll call. */
const ROLL_CALL_MS = 200;
/** Adoption claims an instance runs at once, whatever the number of offers. */
export const ADOPTION_CONCURRENCY = 64;
/**
 * Offered sessions an instance keeps waiting for an adoption claim: ten instances' worth of the
 * default `resume.maxDetachedSessions` (a few MiB of ids); offered beyond it, they are dropped.
 */
export const MAX_QUEUED_ADOPTIONS = 100_000;
/** How often a shutting-down instance looks whether its offered sessions were taken. */
const OFFER_POLL_MS = 20;

/** What a handover needs from the broadcast bus. */
export interface HandoverBus {
  readonly instanceId: string;
  readonly local: boolean;
  publish(envelope: HandoverEnvelope): Promise<void>;
  /** Subscribes to a room's channel for a claim, until the claim releases it. */
  subscribeRoom(room: string): Promise<void>;
  /** A claim that ended no longer needs the room: its channel is left unless something else here needs it. */
  releaseRoom(room: string): void;
  store(key: string, snapshot: string, ttlMs: number): Promise<void>;
  claim(key: string, claim: string): Promise<string | undefined>;
  takeBack(key: string): Promise<HandoverTakeBack>;
  discard(key: string): Promise<void>;
  userIdOf(principal: unknown): string | undefined;
  keyFor(request: string): string;
  /** Pushes to the session wherever it is (`toClient`), for a socket whose session is moving away. */
  relay(sessionId: string, event: string, data: unknown): void;
  /** How far each channel a session with these rooms listens to is delivered here. */
  positions(rooms: string[]): ChannelMark[];
  /** Resolves true once every channel is delivered here up to its mark, false after `timeoutMs`. */
  whenDelivered(marks: ChannelMark[], timeoutMs: number): Promise<boolean>;
}

/**
 * A claim's end when the session's owner keeps it for now (it is promised to another claim, or the
 * move did not complete): the session lives on, so its client should come back, not start anew.
 */
export class SessionUnsettledError extends Error {
  constructor(reason: string) {
    super(`the session stays with its owner for now: ${reason}`);
    this.name = 'SessionUnsettledError';
  }
}

interface Claim {
  sessionId: string;
  /** Pushes for the session heard while it moves; set once this instance listens for them. */
  heard?: PushEnvelope[];
  /** The session's rooms, as its owner answered: subscribed to for the claim, released when it ends. */
  rooms?: Set<string>;
  userId?: string;
  answer?: (envelope: HandoverEnvelope) => void;
}

/**
 * Moves a session to the instance its client resumes on, without a Redis write per push:
 *
 * 1. the claiming instance asks (`prepare`, with a proof that it holds the resume token, bound to
 *    this request, and its client's user); the owner checks both, and answers with the session's
 *    rooms and user, still delivering to it (a wrong token or user never disturbs the owner's
 *    connection);
 * 2. the claimer subscribes to those rooms and starts keeping every push addressed to the session;
 * 3. it asks the owner to `commit`: the owner freezes the session (cuts its old connection) and
 *    stores a snapshot in Redis, keeping the session until the move is settled;
 * 4. the claimer takes the snapshot (whoever holds it owns the session), restores it if it is the
 *    session claimed, with the claiming client's token (else gives it back to the owner),
 *    appends the pushes it kept that the snapshot lacks (by broadcast id), and says `taken`; the
 *    owner then forgets the session. Without `taken` in time, the owner takes the snapshot back
 *    itself: if it gets it, the session stays with it; a failed store keeps it there too.
 *
 * Graceful shutdown offers an instance's sessions for adoption the same way (the offer stands for
 * the proof). Resume tokens never travel: only their hashes, inside snapshots.
 */
export class SessionHandover {
  private readonly logger = new Logger(SessionHandover.name);
  private readonly droppedLog = new LogThrottle((level, message) => this.logger[level](message));
  private readonly claims = new Map<string, Claim>();
  /** Running claims by session and credentials: a claim with other credentials never shares another's outcome. */
  private readonly claimsByCredentials = new Map<string, Promise<Session | undefined>>();
  /**
   * The last claim of each session here. A claim waits for the one before it (an adoption and its
   * client's resume meet here during a shutdown): the owner would refuse a second claim while the
   * first is moving the session, and the session arrives with the first.
   */
  private readonly claimsBySession = new Map<string, Promise<Session | undefined>>();
  /** Sessions of this instance promised to a claimer (session id → request). */
  private readonly reserved = new Map<string, string>();
  /** Sessions of this instance being moved to a claimer, until the move settles (session id → its end). */
  private readonly movesOut = new Map<string, Promise<void>>();
  /** Committed moves waiting for the claimer's `taken` (request → resolve). */
  private readonly awaitingTaken = new Map<string, () => void>();
  /** Sessions offered for adoption at shutdown. */
  private offered = new Set<string>();
  /** Sessions offered to this instance by others, waiting for an adoption claim. */
  private readonly adoptionQueue: string[] = [];
  /** Adoption claims running. */
  private adoptionClaims = 0;
  /** Roll calls of a shutting-down instance: who answered. */
  private readonly rollCalls = new Map<string, Set<string>>();
  private counter = 0;
  /** When another instance last asked for one of this instance's sessions. */
  private lastAskedAt = 0;
  /** Set once this instance shuts down: it hands sessions over and takes none. */
  private leaving = false;

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly bus: HandoverBus,
  ) {}

  /**
   * Brings a session living on another instance here; undefined when no instance has it for these
   * credentials, a SessionUnsettledError when its owner keeps it for now.
   * `resumeToken` is the client's (none: an adoption the owner offered), `userId` its user's.
   * Concurrent claims of one session with the same credentials (a quick retry) share one handover;
   * with other credentials, a claim waits for the running one.
   */
  claim(sessionId: string, resumeToken?: string, userId?: string): Promise<Session | undefined> {
    const local = this.sessions.getSession(sessionId);
    if (this.bus.local) return Promise.resolve(local);
    // its client came back here while the session moves away: it stays here or is claimed back
    const movingOut = local && this.movesOut.get(sessionId);
    if (movingOut) return movingOut.then(() => this.claim(sessionId, resumeToken, userId));
    if (this.leaving || local) return Promise.resolve(local);
    const credentials = resumeToken === undefined ? `${sessionId}\u0000adopt` : `${sessionId}\u0000${hashSecret(resumeToken)}\u0000${userId ?? ''}`;
    const running = this.claimsByCredentials.get(credentials);
    if (running) return running;
    const claim: Promise<Session | undefined> = this.afterEarlierClaim(sessionId, resumeToken, userId).finally(() => {
      this.claimsByCredentials.delete(credentials);
      if (this.claimsBySession.get(sessionId) === claim) this.claimsBySession.delete(sessionId);
    });
    this.claimsByCredentials.set(credentials, claim);
    this.claimsBySession.set(sessionId, claim);
    return claim;
  }

  /** Moves the session here once the claim running for it (if any) has ended, unless that one brought it. */
  private async afterEarlierClaim(sessionId: string, resumeToken: string | undefined, userId: string | undefined): Promise<Session | undefined> {
    const earlier = this.claimsBySession.get(sessionId);
    if (earlier) await earlier.catch(() => undefined);
    return (earlier && this.sessions.getSession(sessionId)) || this.move(sessionId, resumeToken, userId);
  }

  private async move(sessionId: string, resumeToken: string | undefined, userId: string | undefined): Promise<Session | undefined> {
    const request = `${this.bus.instanceId}:${++this.counter}`;
    const claim: Claim = { sessionId };
    this.claims.set(request, claim);
    try {
      const credentials = resumeToken === undefined ? { adopt: true as const } : { proof: claimProof(hashSecret(resumeToken), request), userId };
      const prepare: HandoverEnvelope = { type: 'handover-prepare', origin: this.bus.instanceId, request, sessionId, ...credentials };
      const ready = await this.step(claim, prepare, (answer) => answer.type === 'handover-ready' || answer.type === 'handover-refused');
      if (ready?.type === 'handover-ready') return await this.take(claim, ready, resumeToken);
      if (ready?.type === 'handover-refused' && ready.busy) throw new SessionUnsettledError('it is promised to another claim');
      return undefined;
    } catch (error) {
      if (error instanceof SessionUnsettledError) throw error;
      this.logger.warn(`handover of a session failed: ${errorText(error)}`);
      return undefined;
    } finally {
      this.claims.delete(request);
      for (const room of claim.rooms ?? []) this.bus.releaseRoom(room);
    }
  }

  /** Steps 2–4 of a move the owner agreed to. */
  private async take(claim: Claim, ready: Extract<HandoverEnvelope, { type: 'handover-ready' }>, resumeToken: string | undefined): Promise<Session | undefined> {
    const { key, stored } = await this.snapshotOf(claim, ready).catch((error: unknown) => {
      throw isInstance(error, SessionUnsettledError) ? error : new SessionUnsettledError(errorText(error));
    });
    const snapshot = JSON.parse(stored) as SessionSnapshot;
    if (!isClaimedSession(snapshot, claim.sessionId, resumeToken)) {
      // Another session, or not this client's: a forged message steered its owner's move here.
      await this.bus.store(key, stored, this.sessions.ttlMs).catch(() => undefined); // its owner takes it back
      this.logger.warn(`handover of session ${shortId(claim.sessionId)} refused: the snapshot stored for it is another session's or not its client's (a forged handover message on the bus?)`);
      return undefined;
    }
    const session = this.restore(snapshot, claim.heard ?? [], resumeToken);
    void this.bus.publish({ type: 'handover-taken', origin: this.bus.instanceId, request: ready.request }).catch(() => undefined);
    void this.bus.discard(key).catch(() => undefined); // else it expires with the session's ttl
    this.logger.debug(`session ${shortId(claim.sessionId)} claimed from instance ${ready.origin}`);
    return session;
  }

  /** Listens for the session's pushes, has the owner commit, and takes its snapshot; until taken, a failure leaves the session with its owner. */
  private async snapshotOf(claim: Claim, ready: Extract<HandoverEnvelope, { type: 'handover-ready' }>): Promise<{ key: string; stored: string }> {
    claim.rooms = new Set(ready.rooms); // before subscribing: a subscription that fails is released too
    await Promise.all([...claim.rooms].map((room) => this.bus.subscribeRoom(room)));
    Object.assign(claim, { heard: [], userId: ready.userId });
    const positions = this.bus.positions(ready.rooms);
    const commit: HandoverEnvelope = { type: 'handover-commit', origin: this.bus.instanceId, request: ready.request, positions };
    // The snapshot's key follows from the request: a done naming another key is not this move's.
    const key = this.bus.keyFor(ready.request);
    const done = await this.step(claim, commit, (answer) => answer.type === 'handover-done' && answer.key === key, COMMIT_TIMEOUT_MS);
    if (!done) throw new SessionUnsettledError('its owner did not commit the move in time');
    const stored = await this.bus.claim(key, ready.request);
    if (stored === undefined) throw new SessionUnsettledError('its owner took the snapshot back');
    return { key, stored };
  }

  /**
   * Offers this instance's sessions to the others (graceful shutdown): a roll call finds who is
   * there, each session is offered to one of them (round robin), and each adopter claims only its
   * own. Waits until they are taken, or until no instance has asked for one for a handover step's
   * time and no move is still committing, or `timeoutMs`.
   */
  async offerAll(timeoutMs: number): Promise<void> {
    this.leaving = true;
    const deadline = performance.now() + timeoutMs;
    // A claim still running brings its session here: it is offered with the others.
    await settledBefore([...this.claimsByCredentials.values()], deadline);
    const offered = [...this.sessions.allSessions()].map(({ id }) => id);
    if (this.bus.local || offered.length === 0) return;
    this.offered = new Set(offered);
    const adopters = await this.rollCall(Math.min(ROLL_CALL_MS, timeoutMs));
    if (adopters.length === 0) return;
    await Promise.all(
      adopters.map((adopter, index) =>
        this.bus.publish({
          type: 'adopt-offer',
          origin: this.bus.instanceId,
          adopter,
          sessionIds: offered.filter((_, position) => position % adopters.length === index),
        }),
      ),
    );
    this.lastAskedAt = performance.now();
    const waiting = (): boolean =>
      offered.some((sessionId) => this.sessions.getSession(sessionId)) &&
      performance.now() < deadline &&
      (this.reserved.size > 0 || this.movesOut.size > 0 || performance.now() - this.lastAskedAt < HANDOVER_STEP_TIMEOUT_MS);
    while (waiting()) await new Promise((resolve) => setTimeout(resolve, OFFER_POLL_MS));
  }

  /** The instances that answer a roll call within `windowMs`. */
  private async rollCall(windowMs: number): Promise<string[]> {
    const call = `${this.bus.instanceId}:call:${++this.counter}`;
    const answered = new Set<string>();
    this.rollCalls.set(call, answered);
    try {
      await this.bus.publish({ type: 'adopt-call', origin: this.bus.instanceId, call });
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      return [...answered].sort();
    } finally {
      this.rollCalls.delete(call);
    }
  }

  /**
   * Claims the sessions offered to this instance, at most ADOPTION_CONCURRENCY at a time across
   * all offers; the others wait in the queue, and those that find it full are dropped (they end
   * with their owner, unless their clients resume first).
   */
  private adopt({ origin, sessionIds }: Extract<HandoverEnvelope, { type: 'adopt-offer' }>): void {
    let dropped = 0;
    for (const sessionId of sessionIds) {
      if (this.adoptionClaims < ADOPTION_CONCURRENCY) void this.adoptInTurn(sessionId);
      else if (this.adoptionQueue.length < MAX_QUEUED_ADOPTIONS) this.adoptionQueue.push(sessionId);
      else dropped++;
    }
    if (dropped > 0) {
      const message = `adoption queue full (${MAX_QUEUED_ADOPTIONS} sessions waiting): dropped ${dropped} session(s) offered by instance ${quote(origin)}`;
      this.droppedLog.log('adoption offers dropped', 'warn', message);
    }
  }

  /** One adoption claim at a time: of `sessionId`, then of the sessions waiting in the queue. */
  private async adoptInTurn(sessionId: string): Promise<void> {
    this.adoptionClaims++;
    try {
      for (let next: string | undefined = sessionId; next !== undefined; next = this.adoptionQueue.shift()) {
        await this.claim(next).catch(() => undefined); // one its owner kept stays with it
      }
    } finally {
      this.adoptionClaims--;
    }
  }

  /** Keeps a push that a session being claimed must not miss. */
  hear(envelope: PushEnvelope): void {
    for (const claim of this.claims.values()) {
      if (claim.heard && addresses(envelope.target, claim) && envelope.except !== claim.sessionId) claim.heard.push(envelope);
    }
  }

  receive(envelope: HandoverEnvelope): void {
    switch (envelope.type) {
      case 'handover-prepare':
        return this.onPrepare(envelope);
      case 'handover-commit':
        return this.onCommit(envelope);
      case 'adopt-call':
        if (!this.leaving) void this.bus.publish({ type: 'adopt-here', origin: this.bus.instanceId, call: envelope.call }).catch(() => undefined);
        return;
      case 'adopt-here':
        this.rollCalls.get(envelope.call)?.add(envelope.origin);
        return;
      case 'adopt-offer':
        if (envelope.adopter === this.bus.instanceId) this.adopt(envelope);
        return;
      case 'handover-taken':
        this.awaitingTaken.get(envelope.request)?.();
        return;
      default:
        for (const claim of this.claims.values()) claim.answer?.(envelope);
    }
  }

  private onPrepare(envelope: Extract<HandoverEnvelope, { type: 'handover-prepare' }>): void {
    const session = this.sessions.getSession(envelope.sessionId);
    if (!session) return;
    this.lastAskedAt = performance.now();
    const { origin, request } = envelope;
    const authorized = this.authorizes(session, envelope);
    if (!authorized || this.reserved.has(session.id) || session.moving) {
      const refused: HandoverEnvelope = { type: 'handover-refused', origin: this.bus.instanceId, request, ...(authorized && { busy: true as const }) };
      void this.bus.publish(refused).catch(() => undefined);
      return;
    }
    this.reserved.set(session.id, request);
    session.keepAcknowledged = true;
    setTimeout(() => {
      if (this.reserved.get(session.id) !== request) return;
      this.reserved.delete(session.id);
      session.keepAcknowledged = false;
    }, 2 * HANDOVER_STEP_TIMEOUT_MS).unref();
    void this.bus
      .publish({ type: 'handover-ready', origin: this.bus.instanceId, request, rooms: [...session.rooms], userId: this.bus.userIdOf(session.principal) })
      .catch((error: unknown) => this.logger.warn(`handover to ${origin} failed: ${errorText(error)}`));
  }

  /**
   * Whether a claim may take the session: it was offered for adoption, or the claim proves it
   * holds the resume token (for this very request) and comes for the session's own user.
   */
  private authorizes(session: Session, envelope: Extract<HandoverEnvelope, { type: 'handover-prepare' }>): boolean {
    if (envelope.adopt) return this.leaving && this.offered.has(session.id);
    const expected = claimProof(session.resumeTokenHash, envelope.request);
    return envelope.proof !== undefined && secretsEqual(envelope.proof, expected) && this.bus.userIdOf(session.principal) === envelope.userId;
  }

  /**
   * Cuts the session's connection, lets handlers still running answer (bounded), stores a
   * snapshot and keeps the session until the claimer has taken it. Pushes delivered here
   * meanwhile are in the snapshot or heard by the claimer, which drops its copies of them.
   */
  private onCommit(envelope: Extract<HandoverEnvelope, { type: 'handover-commit' }>): void {
    const sessionId = [...this.reserved].find(([, request]) => request === envelope.request)?.[0];
    const session = sessionId === undefined ? undefined : this.sessions.getSession(sessionId);
    if (!session) return;
    this.reserved.delete(session.id);
    session.moving = true;
    session.relay = (event, data) => this.bus.relay(session.id, event, data);
    session.takeOver()?.terminate();
    const moveOut = this.commit(session, envelope.request, envelope.positions ?? [])
      .catch((error: unknown) => this.logger.warn(`handover of a session failed: ${errorText(error)}`))
      .finally(() => this.movesOut.delete(session.id));
    this.movesOut.set(session.id, moveOut);
  }

  /**
   * Delivers here everything the claimer will not hear (up to where it started hearing each
   * channel: with one connection per shard, channels may arrive out of step), then stores the
   * snapshot and keeps the session until the claimer has taken it.
   */
  private async commit(session: Session, request: string, positions: ChannelMark[]): Promise<void> {
    const key = this.bus.keyFor(request);
    if (!(await this.bus.whenDelivered(positions, POSITIONS_TIMEOUT_MS))) {
      this.logger.warn('handover of a session abandoned: this instance lags behind the claimer; the session stays here');
      this.keep(session);
      return;
    }
    await settled(session);
    try {
      await this.bus.store(key, JSON.stringify(session.snapshot()), this.sessions.ttlMs);
    } catch (error) {
      this.logger.warn(`handover of a session failed, it stays here: ${errorText(error)}`);
      this.keep(session);
      return;
    }
    const taken = new Promise<boolean>((resolve) => {
      this.awaitingTaken.set(request, () => resolve(true));
      setTimeout(() => resolve(false), 2 * HANDOVER_STEP_TIMEOUT_MS).unref();
    });
    await this.bus.publish({ type: 'handover-done', origin: this.bus.instanceId, request, key }).catch(() => undefined);
    const claimed = await taken;
    this.awaitingTaken.delete(request);
    if (claimed || (await this.takenByClaimer(key))) {
      this.sessions.release(session);
      this.logger.debug(`session ${shortId(session.id)} moved to instance ${request.slice(0, request.lastIndexOf(':'))}`);
    } else {
      this.keep(session);
    }
  }

  /**
   * Takes the snapshot back unless the claimer holds it (or has restored and discarded it):
   * whoever holds it owns the session. Unknown (Redis down) counts as "not taken".
   */
  private async takenByClaimer(key: string): Promise<boolean> {
    try {
      return (await this.bus.takeBack(key)) !== 'back';
    } catch {
      return false;
    }
  }

  /** The move did not happen: the session stays here, waiting for its client. */
  private keep(session: Session): void {
    session.moving = false;
    session.relay = undefined;
    session.keepAcknowledged = false;
    session.trimAcknowledged();
  }

  private restore(snapshot: SessionSnapshot, heard: PushEnvelope[], resumeToken: string | undefined): Session | undefined {
    const session = this.sessions.adopt(snapshot, resumeToken);
    if (!session) return this.sessions.getSession(snapshot.id);
    const kept = new Set(snapshot.pushes.map((push) => push.id).filter(Boolean));
    for (const envelope of heard) {
      if (!kept.has(envelope.id)) session.push(pushOf(envelope));
    }
    session.trimAcknowledged();
    return session;
  }

  /** Publishes a step and waits for the owner's answer to it: the first one to its request that `fits` (others are not the owner's). */
  private async step(
    claim: Claim,
    envelope: HandoverEnvelope,
    fits: (answer: HandoverEnvelope) => boolean,
    timeoutMs = HANDOVER_STEP_TIMEOUT_MS,
  ): Promise<HandoverEnvelope | undefined> {
    const { request } = envelope as { request: string };
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<HandoverEnvelope | undefined>((resolve) => {
      claim.answer = (answer) => {
        if ((answer as { request?: string }).request === request && fits(answer)) resolve(answer);
      };
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      await this.bus.publish(envelope);
      return await answered;
    } finally {
      clearTimeout(timer);
      claim.answer = undefined;
    }
  }
}

/** How long a moving session's running handlers get to answer before the snapshot is taken. */
const ANSWER_GRACE_MS = HANDOVER_STEP_TIMEOUT_MS / 2;

/** Resolves once no handler of the session is running, or after ANSWER_GRACE_MS. */
async function settled(session: Session): Promise<void> {
  const deadline = performance.now() + ANSWER_GRACE_MS;
  while (session.answers.hasPending && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Whether a snapshot is of the session claimed, and, for a client's resume, of the token it brought. */
function isClaimedSession(snapshot: SessionSnapshot, sessionId: string, resumeToken: string | undefined): boolean {
  return snapshot.id === sessionId && (resumeToken === undefined || secretsEqual(String(snapshot.resumeTokenHash), hashSecret(resumeToken)));
}

function addresses(target: BroadcastTarget, claim: Claim): boolean {
  switch (target.kind) {
    case 'all':
      return true;
    case 'room':
      return claim.rooms?.has(target.room) ?? false;
    case 'client':
      return target.sessionId === claim.sessionId;
    case 'user':
      return target.userId === claim.userId;
  }
}

/** Resolves once every promise has settled, or at `deadline` (ms since the epoch). */
async function settledBefore(promises: Array<Promise<unknown>>, deadline: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
  });
  await Promise.race([Promise.allSettled(promises), late]);
  clearTimeout(timer);
}
