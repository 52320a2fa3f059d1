import { Logger, type INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  CloseCode,
  decodeClientMessage,
  ErrorCode,
  isSystemEventName,
  SUBPROTOCOL,
  SystemEvent,
  type ClientMessage,
} from '../protocol/index.js';
import type { ResolvedReliableWsOptions } from '../reliable-ws.options.js';
import { ReliableWsRuntime } from '../reliable-ws.runtime.js';
import { ReliableSocket } from '../session/index.js';
import { ConnectionLimiter } from './connection-limiter.js';
import {
  clientIp,
  isOriginAllowed,
  normalizeGatewayPath,
  refuseUpgrade,
  requestPath,
} from './handshake.js';
import { MessageDispatcher } from './message-dispatcher.js';

/** How long a client that must open with `$hello` has to send it. */
export const HELLO_TIMEOUT_MS = 5000;

const SHARED_HTTP_SERVER_PORT = 0;

interface GatewayServer extends WebSocketServer {
  path: string;
}

/**
 * The WebSocket adapter of `ReliableWsModule`: hardens the handshake (Origin, per-IP cap,
 * draining), starts a session per connection, speaks the `rws.v1` envelope and routes messages
 * to gateway handlers. Install it with `app.useWebSocketAdapter(new ReliableWsAdapter(app))`.
 */
export class ReliableWsAdapter extends WsAdapter {
  private readonly log = new Logger(ReliableWsAdapter.name);
  private readonly runtime: ReliableWsRuntime;
  private readonly options: ResolvedReliableWsOptions;
  private readonly limiter: ConnectionLimiter;
  private readonly dispatcher = new MessageDispatcher();
  private readonly gatewaysByHttpServer = new Map<HttpServer, GatewayServer[]>();
  private readonly upgradeListeners = new Map<HttpServer, (...args: [IncomingMessage, Duplex, Buffer]) => void>();
  private readonly ownHttpServers = new Set<HttpServer>();

  constructor(app: INestApplicationContext) {
    super(app);
    this.runtime = resolveRuntime(app);
    this.options = this.runtime.options;
    this.limiter = new ConnectionLimiter(this.options.maxConnectionsPerIp);
  }

  override create(port: number, options: Record<string, unknown> = {}): GatewayServer {
    const { server, path, namespace, ...wsOptions } = options;
    if (namespace) throw new Error('ReliableWsAdapter does not support namespaces; use a separate path instead');
    if (server) throw new Error('ReliableWsAdapter creates its own WebSocket servers; remove the "server" gateway option');
    const httpServer = port === SHARED_HTTP_SERVER_PORT ? this.sharedHttpServer() : this.ownHttpServer(port);
    const wss = new WebSocketServer({
      ...wsOptions,
      noServer: true,
      clientTracking: false,
      maxPayload: this.options.maxPayloadBytes,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    }) as GatewayServer;
    wss.path = normalizeGatewayPath(path as string | undefined);
    wss.on('error', (error) => this.log.error(error));
    this.register(httpServer, wss);
    return wss;
  }

  override bindMessageHandlers(
    client: ReliableSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    this.dispatcher.bind(client, handlers, transform);
  }

  override bindClientDisconnect(client: ReliableSocket, callback: (code: number) => void): void {
    client.onClose(callback);
  }

  override async close(server: GatewayServer): Promise<void> {
    for (const socket of this.runtime.sessions) socket.raw.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  override async dispose(): Promise<void> {
    for (const [httpServer, listener] of this.upgradeListeners) httpServer.off('upgrade', listener);
    this.upgradeListeners.clear();
    this.gatewaysByHttpServer.clear();
    await Promise.all(
      [...this.ownHttpServers].map((httpServer) => new Promise((resolve) => httpServer.close(resolve))),
    );
    this.ownHttpServers.clear();
  }

  private sharedHttpServer(): HttpServer {
    if (!this.httpServer) throw new Error('ReliableWsAdapter needs an HTTP application (NestFactory.create)');
    return this.httpServer as HttpServer;
  }

  private ownHttpServer(port: number): HttpServer {
    const existing = [...this.ownHttpServers].find((httpServer) => (httpServer as { port?: number }).port === port);
    if (existing) return existing;
    const httpServer = Object.assign(createServer(), { port });
    httpServer.listen(port);
    this.ownHttpServers.add(httpServer);
    return httpServer;
  }

  private register(httpServer: HttpServer, wss: GatewayServer): void {
    const gateways = this.gatewaysByHttpServer.get(httpServer) ?? [];
    gateways.push(wss);
    this.gatewaysByHttpServer.set(httpServer, gateways);
    if (this.upgradeListeners.has(httpServer)) return;
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void =>
      this.handleUpgrade(gateways, request, socket, head);
    httpServer.on('upgrade', listener);
    this.upgradeListeners.set(httpServer, listener);
  }

  private handleUpgrade(gateways: GatewayServer[], request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = requestPath(request);
    const wss = gateways.find((gateway) => gateway.path === path);
    if (!wss) return refuseUpgrade(socket, 404, 'no WebSocket endpoint at this path');
    if (this.runtime.shutdown.draining) return refuseUpgrade(socket, 503, 'server is shutting down');
    if (!isOriginAllowed(request, this.options)) return refuseUpgrade(socket, 403, 'origin not allowed');
    const ip = clientIp(request, this.options.trustProxy);
    if (!this.limiter.tryAcquire(ip)) return refuseUpgrade(socket, 429, 'too many connections from this address');
    socket.once('close', () => this.limiter.release(ip));
    wss.handleUpgrade(request, socket, head, (ws) => this.accept(wss, ws, request, ip));
  }

  private accept(wss: GatewayServer, ws: WebSocket, request: IncomingMessage, ip: string): void {
    const socket = new ReliableSocket(ws, request, ip, this.options.backpressure);
    const { sessions } = this.runtime;
    sessions.add(socket);
    let helloTimer: NodeJS.Timeout | undefined;
    ws.on('pong', () => socket.markSeen());
    ws.on('error', (error) => this.log.debug(`connection error: ${error.message}`));
    ws.on('message', (data, isBinary) => {
      const awaitingHello = !socket.hasSession;
      this.onFrame(wss, socket, data, isBinary);
      if (awaitingHello && socket.hasSession) clearTimeout(helloTimer);
    });
    ws.once('close', (code) => {
      clearTimeout(helloTimer);
      sessions.remove(socket);
      socket.notifyClosed(code);
    });
    if (ws.protocol === SUBPROTOCOL) {
      helloTimer = setTimeout(() => socket.close(CloseCode.AUTH_TIMEOUT), HELLO_TIMEOUT_MS);
    } else {
      this.startSession(wss, socket);
    }
  }

  private startSession(wss: GatewayServer, socket: ReliableSocket): void {
    const session = this.runtime.sessions.startSession(socket);
    socket.sendSystem(SystemEvent.READY, {
      sessionId: session.id,
      ...(this.options.resume === false ? {} : { resumeToken: session.resumeToken }),
      resumed: false,
      missed: false,
      lastId: session.lastId,
      heartbeatMs: this.options.heartbeat.intervalMs,
    });
    wss.emit('connection', socket, socket.request);
  }

  private onFrame(wss: GatewayServer, socket: ReliableSocket, data: RawData, isBinary: boolean): void {
    socket.markSeen();
    if (isBinary) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: 'binary frames are not supported' });
      return;
    }
    const decoded = decodeClientMessage(data.toString());
    if (!decoded.ok) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: decoded.reason, ref: decoded.id });
      return;
    }
    const { message } = decoded;
    if (isSystemEventName(message.event)) this.onSystemEvent(wss, socket, message);
    else if (!socket.hasSession) socket.close(CloseCode.UNAUTHORIZED, 'send $hello first');
    else this.dispatcher.dispatch(socket, message);
  }

  private onSystemEvent(wss: GatewayServer, socket: ReliableSocket, message: ClientMessage): void {
    const { event, data, id } = message;
    if (event === SystemEvent.PING) {
      socket.sendSystem(SystemEvent.PONG, data ?? null);
    } else if (event === SystemEvent.HELLO) {
      if (socket.hasSession) {
        socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: 'the session has already started', ref: id });
      } else {
        this.startSession(wss, socket);
      }
    } else if (!socket.hasSession) {
      socket.close(CloseCode.UNAUTHORIZED, 'send $hello first');
    } else if (event !== SystemEvent.ACK) {
      socket.sendError({ code: ErrorCode.UNKNOWN_EVENT, message: `unknown system event "${event}"`, ref: id });
    }
  }
}

function resolveRuntime(app: INestApplicationContext): ReliableWsRuntime {
  try {
    return app.get(ReliableWsRuntime, { strict: false });
  } catch {
    throw new Error(
      'ReliableWsAdapter needs ReliableWsModule: add ReliableWsModule.forRoot() to the imports of your root module',
    );
  }
}
