import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
} from '@nestjs/websockets';
import { ReliableGateway, type ReliableSocket } from '../lib/index.js';
import { NickDto, SayDto } from './chat.dto.js';

/**
 * A small chat: everyone connected to `/ws` gets every line.
 *
 * Events (client → server): `say { text }`, `nick { name }`.
 * Pushes (server → client): `welcome`, `joined`, `said`, `renamed`, `left`.
 *
 * `@ReliableGateway` validates each `@MessageBody()` DTO (`WsValidationInterceptor`: whitelist +
 * forbidNonWhitelisted by default), so no `ValidationPipe` is needed; a bad payload is answered
 * `$error VALIDATION_FAILED` with `details: [{ property, constraints }]`. The sample configures
 * no `auth`, so handlers take no `@WsPrincipal()` and connections are anonymous guests.
 */
@ReliableGateway({ path: '/ws' })
export class ChatGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly clients = new Set<ReliableSocket>();
  private readonly names = new Map<string, string>();

  handleConnection(socket: ReliableSocket): void {
    this.clients.add(socket);
    const name = this.nameOf(socket);
    socket.send('welcome', { sessionId: socket.id, name, online: this.clients.size });
    this.pushToAll('joined', { name, online: this.clients.size }, socket);
  }

  handleDisconnect(socket: ReliableSocket): void {
    if (!this.clients.delete(socket)) return;
    const name = this.nameOf(socket);
    this.names.delete(socket.id);
    this.pushToAll('left', { name, online: this.clients.size });
  }

  @SubscribeMessage('say')
  say(@MessageBody() message: SayDto, @ConnectedSocket() socket: ReliableSocket) {
    this.pushToAll('said', { from: this.nameOf(socket), text: message.text, at: new Date().toISOString() });
    return { ok: true };
  }

  @SubscribeMessage('nick')
  nick(@MessageBody() message: NickDto, @ConnectedSocket() socket: ReliableSocket) {
    const from = this.nameOf(socket);
    const to = message.name.trim() || from;
    this.names.set(socket.id, to);
    if (to !== from) this.pushToAll('renamed', { from, to });
    return { ok: true, name: to };
  }

  private nameOf(socket: ReliableSocket): string {
    return this.names.get(socket.id) ?? `guest-${socket.id.slice(0, 4)}`;
  }

  private pushToAll(event: string, data: unknown, except?: ReliableSocket): void {
    for (const client of this.clients) if (client !== except) client.send(event, data);
  }
}
