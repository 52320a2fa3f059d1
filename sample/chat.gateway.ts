import { BadRequestException, ForbiddenException, Logger } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage, type OnGatewayConnection } from '@nestjs/websockets';
import { BroadcastService, ReliableGateway, ReliableWsException, SessionRegistry, type ReliableSocket } from '../lib/index.js';
import { FetchDto, JoinDto, NickDto, OfferDto, RoomDto, SayDto } from './chat.dto.js';
import { FileShelf } from './file-shelf.js';
import { PresenceBudget } from './presence-budget.js';

/** The room every session joins on its first connect. */
export const LOBBY = 'lobby';

/** Rooms one session may be in at a time (each room with local members is one subscription). */
export const MAX_ROOMS_PER_SESSION = 20;

/**
 * A small chat with rooms, on `BroadcastService`: in memory with one instance, across instances
 * when the module is configured with `broadcast.redis` (see app.module.ts).
 *
 * Events (client → server), each answered when sent with an `id`:
 * - `join { room }`, `leave { room }` → `{ ok, room, rooms }` (the session's rooms afterwards)
 * - `say { room, text }` → `{ ok }`; `$error FORBIDDEN` unless the session is in the room
 * - `nick { name }` → `{ ok, name }`
 * - sharing a file with a room, in two steps: `offer { room, name, type, size }` → `{ ok }`, then
 *   the bytes as an upload, `client.upload('share', bytes)` → `{ ok, id }`; the room hears
 *   `shared { room, id, name, type, size, from }`
 * - `fetch { id }` → `{ ok }`, then the file's bytes as a stream, `file:<id>`, to this session only
 *
 * Pushes (server → client): `welcome { sessionId, name, rooms }` on every connect (rooms: what the
 * session is in, kept across a resumed reconnect), and to a room's members `said { room, from,
 * text, at }`, `joined { room, name }` (after an explicit `join`), `left { room, name }`,
 * `renamed { room, from, to }` (the last three not to the session that caused them). The last
 * three are presence lines, best effort: at most `PRESENCE_LINES_PER_SECOND` per instance (see
 * presence-budget.ts).
 *
 * A new session is put in the lobby quietly: announcing every anonymous connect to every lobby
 * member (connected or waiting for a resume) would cost O(lobby) per connect and fill the replay
 * buffers of the lobby's detached sessions with `joined` lines, so connect/drop churn would slow
 * the instance down and grow its memory up to the library's bounds.
 *
 * Room membership belongs to the session, not the connection: a dropped connection that resumes
 * is still in its rooms, and pushes to them meanwhile are replayed. So nothing is announced when
 * a connection drops; `left` follows an explicit `leave`.
 *
 * `@ReliableGateway` validates each `@MessageBody()` DTO (whitelist + forbidNonWhitelisted by
 * default): a bad payload is answered `$error VALIDATION_FAILED` with `details`. The sample
 * configures no `auth`, so connections are anonymous guests.
 */
@ReliableGateway({ path: '/ws' })
export class ChatGateway implements OnGatewayConnection {
  private readonly logger = new Logger(ChatGateway.name);

  /**
   * Display names by session id, for the session's lifetime (not the connection's). Per
   * instance: a session resumed on another instance is a guest there again, and a name set here
   * is unknown to the others. Names shared by every instance would need a shared store (a Redis
   * hash with the session's TTL, say).
   */
  private readonly names = new Map<string, string>();
  private readonly presence = new PresenceBudget();
  /** Files shared on this instance, bounded in count and bytes (see file-shelf.ts). */
  readonly files = new FileShelf();
  /** Each session's last `offer`, until its `share` upload comes: what the bytes are and where they go. */
  private readonly offers = new Map<string, OfferDto>();

  /** Sessions this instance keeps a name for: every session it has seen that has not ended. */
  get nameCount(): number {
    return this.names.size;
  }

  constructor(
    private readonly broadcast: BroadcastService,
    sessions: SessionRegistry,
  ) {
    // A name is forgotten when its session ends (closed with 1000, expired, handed over), not
    // when a connection drops: the session may still resume.
    sessions.observe({
      sessionEnded: (session) => {
        this.names.delete(session.id);
        this.offers.delete(session.id);
      },
    });
  }

  /** Every connection, fresh or resumed: a session's first connect here also joins the lobby, unannounced. */
  async handleConnection(socket: ReliableSocket): Promise<void> {
    const sessionId = socket.id;
    try {
      if (!this.names.has(sessionId)) {
        this.names.set(sessionId, `guest-${sessionId.slice(0, 4)}`);
        // A session handed over by another instance brings its rooms; only a new one starts in the lobby.
        if (this.broadcast.roomsOf(sessionId).length === 0) await this.broadcast.join(sessionId, LOBBY);
      }
    } catch (error) {
      this.logger.error(`could not join ${LOBBY}: ${error instanceof Error ? error.message : String(error)}`);
    }
    socket.send('welcome', { sessionId, name: this.nameOf(sessionId), rooms: this.broadcast.roomsOf(sessionId) });
  }

  @SubscribeMessage('join')
  async join(@MessageBody() { room, quiet }: JoinDto, @ConnectedSocket() socket: ReliableSocket) {
    await this.enter(socket.id, room, quiet === true);
    return { ok: true, room, rooms: this.broadcast.roomsOf(socket.id) };
  }

  @SubscribeMessage('leave')
  async leave(@MessageBody() { room }: RoomDto, @ConnectedSocket() socket: ReliableSocket) {
    const sessionId = socket.id;
    if (this.broadcast.roomsOf(sessionId).includes(room)) {
      await this.broadcast.leave(sessionId, room);
      await this.announce(room, 'left', { room, name: this.nameOf(sessionId) }, sessionId);
    }
    return { ok: true, room, rooms: this.broadcast.roomsOf(sessionId) };
  }

  @SubscribeMessage('say')
  async say(@MessageBody() { room, text }: SayDto, @ConnectedSocket() socket: ReliableSocket) {
    this.checkMember(socket.id, room);
    const at = new Date().toISOString();
    await this.broadcast.toRoom(room, 'said', { room, from: this.nameOf(socket.id), text, at });
    return { ok: true };
  }

  /** The session's name and rooms: what `welcome` says, for a page that missed it (a tab sharing a connection). */
  @SubscribeMessage('whoami')
  whoami(@ConnectedSocket() socket: ReliableSocket) {
    return { sessionId: socket.id, name: this.nameOf(socket.id), rooms: this.broadcast.roomsOf(socket.id) };
  }

  @SubscribeMessage('nick')
  async nick(@MessageBody() message: NickDto, @ConnectedSocket() socket: ReliableSocket) {
    const sessionId = socket.id;
    const from = this.nameOf(sessionId);
    const to = message.name.trim() || from;
    this.names.set(sessionId, to);
    if (to !== from && !message.quiet) {
      await Promise.all(
        this.broadcast.roomsOf(sessionId).map((room) => this.announce(room, 'renamed', { room, from, to }, sessionId)),
      );
    }
    return { ok: true, name: to };
  }

  /** Sharing a file, step 1: what it is and where it goes. The `share` upload that follows brings its bytes. */
  @SubscribeMessage('offer')
  offer(@MessageBody() offer: OfferDto, @ConnectedSocket() socket: ReliableSocket) {
    this.checkMember(socket.id, offer.room);
    this.offers.set(socket.id, offer);
    return { ok: true };
  }

  /** Step 2: the bytes, as one Buffer however large the upload (up to `maxTransferBytes`). */
  @SubscribeMessage('share')
  async share(@MessageBody() bytes: Buffer, @ConnectedSocket() socket: ReliableSocket) {
    const offer = this.offers.get(socket.id);
    this.offers.delete(socket.id);
    if (!offer) throw new BadRequestException('offer the file first');
    if (bytes.length !== offer.size) throw new BadRequestException(`the offer said ${offer.size} bytes, the upload has ${bytes.length}`);
    const { room, name, type, size } = offer;
    this.checkMember(socket.id, room);
    const file = this.files.add({ room, name, type, size, from: this.nameOf(socket.id) }, bytes);
    await this.broadcast.toRoom(room, 'shared', file);
    return { ok: true, id: file.id };
  }

  /** A shared file's bytes, streamed to this session only, as `file:<id>` (the page shows `$progress`). */
  @SubscribeMessage('fetch')
  fetch(@MessageBody() { id }: FetchDto, @ConnectedSocket() socket: ReliableSocket) {
    const file = this.files.get(id);
    if (!file) throw new ReliableWsException({ code: 'NOT_FOUND', message: 'this file is no longer kept' });
    this.checkMember(socket.id, file.room);
    // Rejects if the session ends first or the client refuses the stream: nothing left to do then.
    socket.stream(`file:${id}`, file.bytes).catch(() => undefined);
    return { ok: true };
  }

  private checkMember(sessionId: string, room: string): void {
    if (!this.broadcast.roomsOf(sessionId).includes(room)) throw new ForbiddenException('join the room first');
  }

  /** Joins a room and tells its other members unless quiet; nothing happens when the session is already in it. */
  private async enter(sessionId: string, room: string, quiet: boolean): Promise<void> {
    const rooms = this.broadcast.roomsOf(sessionId);
    if (rooms.includes(room)) return;
    if (rooms.length >= MAX_ROOMS_PER_SESSION) throw new ForbiddenException(`at most ${MAX_ROOMS_PER_SESSION} rooms at a time`);
    await this.broadcast.join(sessionId, room);
    if (!quiet) await this.announce(room, 'joined', { room, name: this.nameOf(sessionId) }, sessionId);
  }

  /** Sends a presence line to a room's members but the session that caused it, within the budget. */
  private async announce(room: string, event: 'joined' | 'left' | 'renamed', data: object, causedBy: string): Promise<void> {
    if (this.presence.take()) await this.broadcast.toRoom(room, event, data, { except: causedBy });
  }

  private nameOf(sessionId: string): string {
    return this.names.get(sessionId) ?? `guest-${sessionId.slice(0, 4)}`;
  }
}
