import { decodeBinaryFrame, preparePush, type OutgoingFrame, type PreparedPush, type TransferId } from '../protocol/index.js';
import { SessionTransfers, type TransferLimits, type TransferLink } from '../transfer/index.js';
import { AnswerCache } from './answer-cache.js';

/** What can be stopped: an rxjs `Subscription`, say. */
interface Unsubscribable {
  unsubscribe(): void;
}
import { ReplayBuffer, type ReplayBudget } from './replay-buffer.js';
import { hashSecret, randomSecret, secretsEqual } from './session-id.js';

/** Where a session's frames go while it has a live connection. */
export interface SessionTransport {
  /** Hands over a numbered push (the session keeps it for replay when it is resumable). */
  deliver(push: PreparedPush, seq: number | undefined): void;
  write(frame: OutgoingFrame): void;
  close(code: number): void;
  terminate(): void;
}

/** Bytes a session keeps for replay, and separately of answers, unless configured otherwise. */
export const DEFAULT_SESSION_MAX_BYTES = 1024 * 1024;

/** Bytes all sessions of an instance keep together (replay, answers, transfers), unless configured otherwise. */
export const DEFAULT_TOTAL_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Byte bounds of a session's replay buffer and of its kept answers (each): its own, and the
 * budget it shares with all other sessions.
 */
export interface ReplayByteLimits {
  maxBufferedBytes: number;
  budget?: ReplayBudget;
  /** Bounds of the session's chunked transfers (their bytes count toward `budget` too). */
  transfers?: TransferLimits;
}

/** Everything needed to continue a session on another instance. */
export interface SessionSnapshot {
  id: string;
  /** The resume token's hash: the token itself never leaves the instance. */
  resumeTokenHash: string;
  principal: unknown;
  lastSeq: number;
  lastId: number;
  ackedSeq: number;
  rooms: string[];
  /** A binary push carries its payload in base64 as `binary` (and '' as `dataJson`). */
  pushes: Array<{ seq: number; event: string; dataJson: string; id?: string; binary?: string }>;
  /** Text answers as they are; a binary answer as `{ binary }`, the whole frame in base64. */
  answers: Array<[number, string | { binary: string }]>;
  /** The client's address, for the per-address bounds of detached sessions. */
  ip?: string;
  /** The ids of the `$upload`s in progress: their transfers stay behind, so the client may send them again to start over. */
  uploads?: number[];
}

/**
 * The state of one client across its connections: identity, principal, and the numbering of
 * pushes (`seq`) and of client messages (`lastId`).
 */
export class Session {
  readonly id: string;
  /** The secret a client resumes with; '' on an instance that adopted the session without it. */
  readonly resumeToken: string;
  private tokenHash: string | undefined;
  /** Set while the session is handed over to another instance: it is not resumed here meanwhile. */
  moving = false;
  /**
   * Where its socket's pushes go from the start of a move to another instance on, so that a
   * handler still running here reaches the session wherever it is by then; unset when it stays.
   */
  relay: ((event: string, data: unknown) => void) | undefined;
  principal: unknown;
  /** The seq of the last push numbered for this session. */
  lastSeq = 0;
  /** The highest client message id taken from an `rws.v1` client. */
  lastId = 0;
  /** Created on the first join: most sessions are in no room. */
  private roomSet: Set<string> | undefined;
  /** The highest seq the client has confirmed receiving (cumulative `$ack`). */
  ackedSeq = 0;
  /** Answers to recent client message ids, for duplicates. */
  readonly answers: AnswerCache;
  /** Created on the first transfer: most sessions never make one. */
  private sessionTransfers: SessionTransfers | undefined;
  /** The connection transfers write to, live with its `$ready` sent. */
  private transferLink: TransferLink | undefined;
  /** Ids of `$upload`s that were in progress on the instance this session moved from. */
  private uploadsLeftBehind: Set<number> | undefined;
  private ended = false;
  /** See `endsWith`. */
  private running: Set<Unsubscribable> | undefined;
  /** The address of the client's latest connection. */
  ip = '';
  private transport: SessionTransport | undefined;
  private readonly buffer: ReplayBuffer | undefined;
  private readonly bytes: ReplayByteLimits | undefined;

  /**
   * @param sequenced whether pushes carry `seq`
   * @param bufferSize pushes kept for replay; 0 for a session that cannot be resumed
   * @param bytes byte bounds of the replay buffer (none: bounded by count only)
   */
  constructor(
    readonly sequenced: boolean,
    bufferSize: number,
    identity?: { id: string; resumeToken?: string; resumeTokenHash?: string },
    bytes?: ReplayByteLimits,
  ) {
    this.buffer =
      sequenced && bufferSize > 0 ? new ReplayBuffer(bufferSize, bytes?.maxBufferedBytes, bytes?.budget) : undefined;
    this.answers = new AnswerCache(bytes?.maxBufferedBytes, bytes?.budget);
    this.bytes = bytes;
    this.id = identity?.id ?? randomSecret();
    this.resumeToken = identity?.resumeToken ?? (identity?.resumeTokenHash ? '' : randomSecret());
    this.tokenHash = identity?.resumeTokenHash;
  }

  /** Rooms the session is a member of; kept across a resumed reconnect. */
  get rooms(): ReadonlySet<string> {
    return this.roomSet ?? NO_ROOMS;
  }

  joinRoom(room: string): void {
    (this.roomSet ??= new Set()).add(room);
  }

  leaveRoom(room: string): void {
    this.roomSet?.delete(room);
  }

  /** Chunked transfers in progress, both ways; they continue after a resume. */
  get transfers(): SessionTransfers {
    if (!this.sessionTransfers) {
      const transfers = new SessionTransfers(this.bytes?.transfers, this.bytes?.budget);
      if (this.ended) transfers.dispose();
      else if (this.transferLink) transfers.attach(this.transferLink);
      this.sessionTransfers = transfers;
    }
    return this.sessionTransfers;
  }

  /**
   * Whether an `$upload` sent again under an id already taken starts over: only one that was in
   * progress on the instance this session moved from (its bytes stayed there), and only once.
   */
  restartsUpload(id: number): boolean {
    return this.uploadsLeftBehind?.delete(id) ?? false;
  }

  /** The ids of the streams to the client in progress (continued on the next connection). */
  get streamsInProgress(): TransferId[] {
    return this.sessionTransfers?.streamIds() ?? [];
  }

  /** The session's connection is live with its `$ready` sent: transfers may write to it. */
  attachTransfers(link: TransferLink): void {
    this.transferLink = link;
    this.sessionTransfers?.attach(link);
  }

  private detachTransfers(): void {
    this.transferLink = undefined;
    this.sessionTransfers?.detach();
  }

  get resumeTokenHash(): string {
    this.tokenHash ??= hashSecret(this.resumeToken);
    return this.tokenHash;
  }

  /** Whether a client's resume token is this session's (compared in constant time). */
  acceptsToken(token: string): boolean {
    return this.resumeToken ? secretsEqual(this.resumeToken, token) : secretsEqual(this.resumeTokenHash, hashSecret(token));
  }

  /** @param resumeToken the token, when the client that resumes brought it */
  static restore(snapshot: SessionSnapshot, bufferSize: number, bytes?: ReplayByteLimits, resumeToken?: string): Session {
    const session = new Session(true, bufferSize, { id: snapshot.id, resumeToken, resumeTokenHash: snapshot.resumeTokenHash }, bytes);
    try {
      session.fill(snapshot);
    } catch (error) {
      session.dispose(); // what it kept so far goes back to the instance's budget
      throw error;
    }
    return session;
  }

  /** Takes in a snapshot's state; throws for one this version cannot take (a push it refuses, a wrong shape). */
  private fill(snapshot: SessionSnapshot): void {
    this.principal = snapshot.principal;
    this.ip = snapshot.ip ?? '';
    this.lastId = snapshot.lastId;
    this.ackedSeq = snapshot.ackedSeq;
    for (const room of snapshot.rooms) this.joinRoom(room);
    for (const { seq, event, dataJson, id, binary } of snapshot.pushes) {
      this.buffer?.append(seq, preparePush(event, dataJson, id, binary === undefined ? undefined : Buffer.from(binary, 'base64')));
    }
    this.lastSeq = snapshot.lastSeq;
    if (snapshot.uploads?.length) this.uploadsLeftBehind = new Set(snapshot.uploads);
    for (const [id, frame] of snapshot.answers) {
      const restored = restoredAnswer(frame);
      if (restored !== undefined) this.answers.set(id, restored);
    }
  }

  snapshot(): SessionSnapshot {
    return {
      id: this.id,
      resumeTokenHash: this.resumeTokenHash,
      principal: this.principal,
      lastSeq: this.lastSeq,
      lastId: this.lastId,
      ackedSeq: this.ackedSeq,
      rooms: [...this.rooms],
      pushes: [...(this.buffer?.entries() ?? [])].map(({ seq, push }) => ({
        seq,
        event: push.event,
        dataJson: push.dataJson,
        id: push.id,
        ...(push.payload ? { binary: Buffer.from(push.payload.buffer, push.payload.byteOffset, push.payload.byteLength).toString('base64') } : {}),
      })),
      answers: this.answers.settled().map(([id, frame]) => [
        id,
        typeof frame === 'string' ? frame : { binary: binaryAnswerBase64(frame) },
      ]),
      ip: this.ip,
      uploads: this.uploadsInProgress(),
    };
  }

  /** The retry ids of the `$upload`s in progress here, and of those left behind where the session came from. */
  private uploadsInProgress(): number[] {
    const here = (this.sessionTransfers?.uploadIds() ?? []).filter((id) => typeof id === 'number');
    return [...(this.uploadsLeftBehind ?? []), ...here];
  }

  /** Bytes of pushes kept for replay. */
  get bufferedBytes(): number {
    return this.buffer?.byteLength ?? 0;
  }

  /**
   * Work of the session that only its end stops (a handler's observable still waiting for its
   * first value): ended with the session, forgotten once it ends by itself.
   */
  endsWith(work: Unsubscribable & { add(teardown: () => void): void }): void {
    if (this.ended) return work.unsubscribe();
    const running = (this.running ??= new Set());
    running.add(work);
    work.add(() => running.delete(work));
  }

  /** Releases the replay buffer, the kept answers, the transfers and the running work of a session that has ended. */
  dispose(): void {
    this.buffer?.dispose();
    this.answers.dispose();
    this.ended = true;
    this.sessionTransfers?.dispose();
    const running = this.running;
    this.running = undefined;
    for (const work of running ?? []) work.unsubscribe();
  }


  /** Whether a client can resume the session: it keeps pushes for replay. */
  get resumable(): boolean {
    return this.buffer !== undefined;
  }

  get attached(): boolean {
    return this.transport !== undefined;
  }

  attach(transport: SessionTransport): void {
    this.transport = transport;
  }

  /** Detaches the live connection, if any, and returns it (a resume takes the session over). */
  takeOver(): SessionTransport | undefined {
    const previous = this.transport;
    this.transport = undefined;
    this.detachTransfers();
    return previous;
  }

  /** Returns whether the transport was the session's live one. */
  detach(transport: SessionTransport): boolean {
    if (this.transport !== transport) return false;
    this.transport = undefined;
    this.detachTransfers();
    return true;
  }

  /** Whether `seq` is a valid cumulative acknowledgement that moves `ackedSeq` forward. */
  acknowledges(seq: number): boolean {
    return Number.isSafeInteger(seq) && seq > this.ackedSeq && seq <= this.lastSeq;
  }

  acknowledge(seq: number): void {
    this.ackedSeq = seq;
    if (!this.keepAcknowledged) this.buffer?.trimThrough(seq);
  }

  /**
   * While the session moves to another instance, acknowledged pushes stay in the buffer, so that
   * the snapshot names every push it already holds.
   */
  keepAcknowledged = false;

  /**
   * Numbers a push whose payload is already serialised, keeps it for replay and hands it to the
   * live connection, if there is one.
   */
  push(push: PreparedPush): void {
    const seq = this.sequenced ? ++this.lastSeq : undefined;
    if (seq !== undefined) this.buffer?.append(seq, push);
    this.transport?.deliver(push, seq);
  }

  /** Whether a client that received pushes up to `lastSeq` can get every later one replayed. */
  canReplayAfter(lastSeq: number): boolean {
    if (!this.buffer || !Number.isSafeInteger(lastSeq) || lastSeq < 0 || lastSeq > this.lastSeq) return false;
    return this.buffer.covers(lastSeq, this.lastSeq);
  }

  /** The push numbered `seq`, while the replay buffer holds it. */
  pushAt(seq: number): PreparedPush | undefined {
    return this.buffer?.at(seq);
  }

  /** Drops what the client confirmed; after a move, applies the acknowledgement the snapshot carried. */
  trimAcknowledged(): void {
    this.buffer?.trimThrough(this.ackedSeq);
  }

  /** Sends an answer to the session's live connection (whichever it is now) and keeps it for duplicates. */
  answer(id: number | undefined, frame: OutgoingFrame): void {
    if (id !== undefined) this.answers.set(id, frame);
    this.transport?.write(frame);
  }
}

const NO_ROOMS: ReadonlySet<string> = new Set();

/** A binary answer in a snapshot: its whole frame, in base64. */
function binaryAnswerBase64(frame: { head: Uint8Array; payload: Uint8Array }): string {
  return Buffer.concat([frame.head, frame.payload]).toString('base64');
}

function restoredAnswer(frame: string | { binary: string }): OutgoingFrame | undefined {
  if (typeof frame === 'string') return frame;
  const bytes = Buffer.from(frame.binary, 'base64');
  const decoded = decodeBinaryFrame(bytes);
  if (!decoded.ok) return undefined;
  const payloadStart = bytes.byteLength - decoded.payload.byteLength;
  return { head: bytes.subarray(0, payloadStart), payload: decoded.payload };
}
