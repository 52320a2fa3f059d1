import { pushFrame, type PreparedPush } from '../protocol/index.js';
import { randomSecret } from './session-id.js';

/** Where a session's frames go while it has a live connection. */
export interface SessionTransport {
  write(frame: string): void;
}

/**
 * The state of one client across its connections: identity, principal, and the numbering of
 * pushes (`seq`) and of client messages (`lastId`).
 */
export class Session {
  readonly id = randomSecret();
  readonly resumeToken = randomSecret();
  principal: unknown;
  /** The seq of the last push numbered for this session. */
  lastSeq = 0;
  /** The highest client message id taken from an `rws.v1` client. */
  lastId = 0;
  /** Rooms the session is a member of; kept across a resumed reconnect. */
  readonly rooms = new Set<string>();
  /** The highest seq the client has confirmed receiving (cumulative `$ack`). */
  ackedSeq = 0;
  private transport: SessionTransport | undefined;

  constructor(readonly sequenced: boolean) {}

  get attached(): boolean {
    return this.transport !== undefined;
  }

  attach(transport: SessionTransport): void {
    this.transport = transport;
  }

  detach(transport: SessionTransport): void {
    if (this.transport === transport) this.transport = undefined;
  }

  /** Whether `seq` is a valid cumulative acknowledgement that moves `ackedSeq` forward. */
  acknowledges(seq: number): boolean {
    return Number.isSafeInteger(seq) && seq > this.ackedSeq && seq <= this.lastSeq;
  }

  acknowledge(seq: number): void {
    this.ackedSeq = seq;
  }

  /** Numbers a push whose payload is already serialised and hands it to the live connection. */
  push(push: PreparedPush): void {
    const seq = this.sequenced ? ++this.lastSeq : undefined;
    this.transport?.write(pushFrame(push, seq));
  }
}
