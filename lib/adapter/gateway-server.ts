import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import type { ReliableSocket } from '../session/index.js';

/**
 * The open connections of one gateway path: a read-only, Set-like view (`forEach`, `size`,
 * `has`, `for…of`). A connection is in it from its session start (when the gateway's
 * `handleConnection` runs) until it closes; a session waiting for a resume is not.
 */
export class GatewayClients implements Iterable<ReliableSocket> {
  private readonly sockets = new Set<ReliableSocket>();

  get size(): number {
    return this.sockets.size;
  }

  has(socket: ReliableSocket): boolean {
    return this.sockets.has(socket);
  }

  forEach(callback: (socket: ReliableSocket, same: ReliableSocket, clients: GatewayClients) => void, thisArg?: unknown): void {
    for (const socket of this.sockets) callback.call(thisArg, socket, socket, this);
  }

  values(): IterableIterator<ReliableSocket> {
    return this.sockets.values();
  }

  [Symbol.iterator](): IterableIterator<ReliableSocket> {
    return this.sockets.values();
  }

  /** @internal */
  add(socket: ReliableSocket): void {
    this.sockets.add(socket);
  }

  /** @internal */
  delete(socket: ReliableSocket): void {
    this.sockets.delete(socket);
  }
}

/**
 * The server of one gateway path, what `@WebSocketServer()` gives a gateway under
 * `ReliableWsAdapter`: `clients` iterates its open `ReliableSocket`s
 * (`server.clients.forEach((socket) => socket.send('event', data))`), `path` is its path, and it
 * emits `connection` (socket, request) when a session starts.
 */
export class ReliableWsServer extends EventEmitter {
  readonly clients = new GatewayClients();
  /** The `ws` server doing the handshakes, in no-server mode and without its own client tracking. */
  private readonly wss: WebSocketServer;

  constructor(
    readonly path: string,
    options: ServerOptions,
  ) {
    super();
    // Pings are answered by the connection, within its send bound (ws would answer each one unbounded).
    this.wss = new WebSocketServer({ ...options, noServer: true, clientTracking: false, autoPong: false });
    this.wss.on('error', (error) => this.emit('error', error));
  }

  /** @internal Completes an upgrade for this path. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, accepted: (ws: WebSocket) => void): void {
    this.wss.handleUpgrade(request, socket, head, accepted);
  }

  /** @internal Makes an open connection one of `clients`, then announces it (`connection`). */
  announce(socket: ReliableSocket): void {
    if (socket.isOpen) {
      this.clients.add(socket);
      socket.listedIn = this.clients;
    }
    this.emit('connection', socket, socket.request);
  }

  /** @internal A connection of this path closed. */
  forget(socket: ReliableSocket): void {
    this.clients.delete(socket);
  }

  /** Stops answering upgrades (the adapter closes the connections). */
  close(callback?: (error?: Error) => void): void {
    this.wss.close(callback);
  }
}
