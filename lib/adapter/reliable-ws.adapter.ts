import { Logger, type INestApplicationContext } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { handshakeToken } from '../auth/index.js';
import { SUBPROTOCOL } from '../protocol/index.js';
import { missingModuleError } from '../missing-module.js';
import type { ResolvedReliableWsOptions } from '../reliable-ws.options.js';
import { ReliableWsRuntime } from '../reliable-ws.runtime.js';
import type { ReliableSocket } from '../session/index.js';
import { ConnectionLog, quote } from '../telemetry/index.js';
import { ConnectionLimiter } from './connection-limiter.js';
import {
  clientIp,
  describeAllowedOrigins,
  isOriginAllowed,
  normalizeGatewayPath,
  refuseUpgrade,
  requestPath,
} from './handshake.js';
import { ConnectionProtocol, type HandshakeCredentials } from './connection-protocol.js';
import { DirectHandlers } from './direct-handlers.js';
import { assertOneHandlerPerEvent } from './gateway-events.js';
import { offersWebSocket, serveAsHttp } from './http-fallback.js';
import { containGatewayLifecycles } from './gateway-lifecycle.js';
import { ReliableWsServer } from './gateway-server.js';
import { MessageDispatcher } from './message-dispatcher.js';

const SHARED_HTTP_SERVER_PORT = 0;

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
  private readonly dispatcher: MessageDispatcher;
  private readonly protocol: ConnectionProtocol;
  private readonly connectionLog = new ConnectionLog();
  private readonly gatewaysByHttpServer = new Map<HttpServer, ReliableWsServer[]>();
  private readonly upgradeListeners = new Map<HttpServer, (...args: [IncomingMessage, Duplex, Buffer]) => void>();
  /** HTTP servers this adapter started for gateways on a port of their own. */
  private readonly ownHttpServers = new Map<number, HttpServer>();
  /** Settles once each of them listens; rejects, naming the gateway and port, if one cannot. */
  private readonly ownHttpServersListening: Array<Promise<void>> = [];
  /** Upgrades whose handshake `verify` still runs, with their client's address. */
  private readonly verifying = new Map<Duplex, string>();

  constructor(private readonly app: INestApplicationContext) {
    super(app);
    this.runtime = resolveRuntime(app);
    this.options = this.runtime.options;
    this.limiter = new ConnectionLimiter(this.options.maxConnectionsPerIp);
    this.dispatcher = new MessageDispatcher(new DirectHandlers(app));
    this.protocol = new ConnectionProtocol(this.runtime, this.dispatcher, this.connectionLog);
    containGatewayLifecycles(app);
    this.runtime.shutdown.onDrain(() => this.refuseVerifying());
  }

  override create(port: number, options: Record<string, unknown> = {}): ReliableWsServer {
    const { server, path, namespace, ...wsOptions } = options;
    if (namespace) throw new Error('ReliableWsAdapter does not support namespaces; use a separate path instead');
    if (server) throw new Error('ReliableWsAdapter creates its own WebSocket servers; remove the "server" gateway option');
    const gatewayPath = normalizeGatewayPath(path as string | undefined);
    const httpServer = port === SHARED_HTTP_SERVER_PORT ? this.sharedHttpServer() : this.ownHttpServer(port, gatewayPath);
    const wss = new ReliableWsServer(gatewayPath, {
      ...wsOptions,
      maxPayload: this.options.maxPayloadBytes,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
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

  override async close(server: ReliableWsServer): Promise<void> {
    for (const socket of this.runtime.sessions) socket.raw.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * @internal Awaited by the module's init, once Nest created the gateways' servers: `app.listen()`
   * fails when two gateways of one path handle the same event or a gateway's own port is taken.
   */
  async verifyGateways(): Promise<void> {
    assertOneHandlerPerEvent(this.app);
    await Promise.all(this.ownHttpServersListening);
  }

  override async dispose(): Promise<void> {
    for (const [httpServer, listener] of this.upgradeListeners) httpServer.off('upgrade', listener);
    if (this.httpServer && this.upgradeListeners.has(this.httpServer as HttpServer)) this.cutLingeringConnections(this.httpServer as HttpServer);
    this.upgradeListeners.clear();
    this.gatewaysByHttpServer.clear();
    await Promise.all(
      [...this.ownHttpServers.values()].map(
        (httpServer) =>
          new Promise((resolve) => {
            httpServer.close(resolve);
            httpServer.closeAllConnections(); // a connection that never finishes a request would hold close() forever
          }),
      ),
    );
    this.ownHttpServers.clear();
    this.connectionLog.dispose();
  }

  /**
   * The application's HTTP server, which Nest closes next, waits for its connections to end: one
   * whose request never ends (an upgrade whose headers trickle in) would hold `app.close()`
   * forever. What is still open `shutdown.timeoutMs` from now is cut.
   */
  private cutLingeringConnections(httpServer: HttpServer): void {
    const timer = setTimeout(() => httpServer.closeAllConnections(), this.options.shutdown.timeoutMs).unref();
    httpServer.once('close', () => clearTimeout(timer));
  }

  private sharedHttpServer(): HttpServer {
    if (!this.httpServer) throw new Error('ReliableWsAdapter needs an HTTP application (NestFactory.create)');
    return this.httpServer as HttpServer;
  }

  private ownHttpServer(port: number, gatewayPath: string): HttpServer {
    let httpServer = this.ownHttpServers.get(port);
    if (!httpServer) {
      httpServer = createServer(answerPlainRequest);
      this.ownHttpServersListening.push(this.listenOn(httpServer, port, gatewayPath));
      this.ownHttpServers.set(port, httpServer);
    }
    return httpServer;
  }

  /** Listens; an error before listening rejects (and is thereby no uncaught exception), a later one is logged. */
  private listenOn(httpServer: HttpServer, port: number, gatewayPath: string): Promise<void> {
    const listening = new Promise<void>((resolve, reject) => {
      httpServer.once('listening', resolve);
      httpServer.on('error', (error) => {
        const message = `the WebSocket gateway at ${gatewayPath} cannot listen on port ${port}: ${error.message}`;
        if (httpServer.listening) this.log.error(message);
        else reject(new Error(message, { cause: error }));
      });
    });
    listening.catch(() => undefined); // awaited later, by the module's init
    httpServer.listen(port);
    return listening;
  }

  private register(httpServer: HttpServer, wss: ReliableWsServer): void {
    const gateways = this.gatewaysByHttpServer.get(httpServer) ?? [];
    gateways.push(wss);
    this.gatewaysByHttpServer.set(httpServer, gateways);
    if (this.upgradeListeners.has(httpServer)) return;
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (offersWebSocket(request)) this.handleUpgrade(gateways, request, socket, head);
      else serveAsHttp(httpServer, request, socket as Socket, head);
    };
    httpServer.on('upgrade', listener);
    this.upgradeListeners.set(httpServer, listener);
  }

  private handleUpgrade(gateways: ReliableWsServer[], request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    const path = requestPath(request);
    const gatewayPath = path === undefined ? undefined : normalizeGatewayPath(path);
    const wss = gateways.find((gateway) => gateway.path === gatewayPath);
    const ip = clientIp(request, this.options.trustProxy);
    if (!wss) {
      const paths = gateways.map((gateway) => gateway.path).join(', ');
      return this.refuse(socket, 404, 'no WebSocket endpoint at this path', `path ${quote(request.url)} from ${ip}; gateways here: ${paths}`);
    }
    if (this.runtime.shutdown.draining) return this.refuse(socket, 503, 'server is shutting down', `from ${ip}`);
    if (!isOriginAllowed(request, this.options)) return this.refuse(socket, 403, 'origin not allowed', this.describeOrigin(request, ip));
    if (!this.limiter.tryAcquire(ip)) {
      return this.refuse(socket, 429, 'too many connections from this address', this.describeCap(ip));
    }
    releaseOnClose(socket, this.limiter, ip);
    const credentials = this.authenticateHandshake(request, ip);
    if (credentials instanceof Promise) {
      this.verifying.set(socket, ip);
      void credentials.then((checked) => {
        this.verifying.delete(socket);
        this.upgrade(wss, request, socket, head, ip, checked);
      });
    } else {
      this.upgrade(wss, request, socket, head, ip, credentials);
    }
  }

  private upgrade(
    wss: ReliableWsServer,
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    ip: string,
    credentials: HandshakeCredentials,
  ): void {
    if (!socket.writable) return; // gone, or refused while `verify` ran
    // The drain may have begun while `verify` ran; it closes the connections it found then, not this one.
    if (this.runtime.shutdown.draining) return this.refuse(socket, 503, 'server is shutting down', `from ${ip}`);
    wss.handleUpgrade(request, socket, head, (ws) => this.protocol.accept(wss, ws, request, ip, credentials));
  }

  /** The drain began: upgrades still in `verify` are refused now, not once it answers (`auth.timeoutMs` at most). */
  private refuseVerifying(): void {
    for (const [socket, ip] of this.verifying) this.refuse(socket, 503, 'server is shutting down', `from ${ip}`);
    this.verifying.clear();
  }

  /** Answers an upgrade with an HTTP error (`message` is the client's), counted and logged with `detail`. */
  private refuse(socket: Duplex, status: number, message: string, detail: string): void {
    refuseUpgrade(socket, status, message);
    this.runtime.metrics.handshakeRefused.add(status);
    this.connectionLog.refused(status, `${message}: ${detail}`);
  }

  private describeOrigin(request: IncomingMessage, ip: string): string {
    const { allowedOrigins, requireOrigin } = this.options;
    const { origin, host } = request.headers;
    const compared = `Origin ${quote(origin)} vs Host ${quote(host)} from ${ip}; allowedOrigins: ${describeAllowedOrigins(allowedOrigins)}`;
    if (origin === undefined) return `${compared} (requireOrigin: true)`;
    if (allowedOrigins !== 'same-origin') return compared;
    return `${compared} (behind a proxy, pass the browser's Host on: proxy_set_header Host $http_host)`;
  }

  private describeCap(ip: string): string {
    const { maxConnectionsPerIp, trustProxy } = this.options;
    const cap = `${ip} holds maxConnectionsPerIp (${maxConnectionsPerIp}); trustProxy: ${trustProxy}`;
    return trustProxy === false ? `${cap} (behind a proxy every client has the proxy's address: set trustProxy)` : cap;
  }

  /**
   * Verifies a token carried by the upgrade request, where the auth mode reads one there: at once
   * unless the application's `verify` answers with a promise.
   */
  private authenticateHandshake(request: IncomingMessage, ip: string): HandshakeCredentials | Promise<HandshakeCredentials> {
    const auth = this.runtime.authenticator;
    if (!auth || auth.options.mode === 'first-message') return NO_CREDENTIALS;
    const token = handshakeToken(request, auth.options.cookieName);
    if (token === undefined) return auth.options.mode === 'handshake' ? MISSING_CREDENTIALS : NO_CREDENTIALS;
    const principal = auth.verify(token, request, ip);
    return principal instanceof Promise ? withinDeadline(principal.then(credentialsOf), auth.options.timeoutMs) : credentialsOf(principal);
  }
}

/** The credentials, or `TIMED_OUT_CREDENTIALS` once `verify` has taken `timeoutMs` (`auth.timeoutMs`) without answering. */
function withinDeadline(credentials: Promise<HandshakeCredentials>, timeoutMs: number): Promise<HandshakeCredentials> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<HandshakeCredentials>((resolve) => {
    // unref: the socket keeps the process alive while the deadline matters; after app.close() it must not
    timer = setTimeout(() => resolve(TIMED_OUT_CREDENTIALS), timeoutMs).unref();
  });
  return Promise.race([credentials, deadline]).finally(() => clearTimeout(timer));
}

const NO_CREDENTIALS: HandshakeCredentials = { rejected: false };
const MISSING_CREDENTIALS: HandshakeCredentials = { rejected: true };
const TIMED_OUT_CREDENTIALS: HandshakeCredentials = { rejected: true, timedOut: true };

function credentialsOf(principal: unknown): HandshakeCredentials {
  return { rejected: principal === undefined, principal };
}

/** A gateway's own port serves WebSocket upgrades only. */
function answerPlainRequest(_request: IncomingMessage, response: ServerResponse): void {
  response.writeHead(426, { Connection: 'close', Upgrade: 'websocket', 'Content-Type': 'text/plain' });
  response.end('a WebSocket endpoint: upgrade required');
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

/** Gives the address's slot back once the socket closes (in a closure of its own, holding nothing else of the upgrade). */
function releaseOnClose(socket: Duplex, limiter: ConnectionLimiter, ip: string): void {
  socket.on('close', () => limiter.release(ip));
}

function resolveRuntime(app: INestApplicationContext): ReliableWsRuntime {
  try {
    return app.get(ModuleRef).get(ReliableWsRuntime, { strict: false });
  } catch {
    throw missingModuleError(ReliableWsAdapter.name);
  }
}
