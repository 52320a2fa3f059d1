import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const WEBSOCKET = 'websocket';

/** Whether the request's `Upgrade` header offers WebSocket (perhaps among other protocols). */
export function offersWebSocket(request: IncomingMessage): boolean {
  const offer = request.headers.upgrade;
  if (offer === undefined) return false;
  // A list as long as the one name cannot hold it with another: what every WebSocket client sends needs no split.
  if (offer.length === WEBSOCKET.length) return offer.toLowerCase() === WEBSOCKET;
  return offer.split(',').some((protocol) => protocol.trim().toLowerCase() === WEBSOCKET);
}

/**
 * Serves a request that offered another protocol (`Upgrade: h2c`) as the plain HTTP/1.1 request
 * it also is, as Node does when nothing listens for upgrades: its head, without the offer, goes
 * back in front of what the socket still holds, and the server parses it again as a request of
 * its own (body, keep-alive and all) for the application to answer.
 */
export function serveAsHttp(httpServer: HttpServer, request: IncomingMessage, socket: Socket, head: Buffer): void {
  socket.unshift(Buffer.concat([Buffer.from(headWithoutUpgrade(request), 'latin1'), head]));
  whenAnswered(socket, () => {
    socket.setTimeout(0); // the last response's parser may have left its keep-alive timeout on the socket
    httpServer.emit('connection', socket);
  });
}

/**
 * Runs `then` once the socket has no response of the requests before this one left to write
 * (Node's `_httpMessage`, each taking the socket in turn and letting go of it before its `close`):
 * a second parser on the socket meanwhile would never get its turn to answer.
 */
function whenAnswered(socket: Socket, then: () => void): void {
  if (socket.destroyed) return;
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!inFlight) return then();
  inFlight.once('close', () => whenAnswered(socket, then));
}

const UPGRADE_HEADERS = new Set(['upgrade', 'http2-settings']);

function headWithoutUpgrade(request: IncomingMessage): string {
  let text = `${request.method} ${request.url} HTTP/${request.httpVersion}\r\n`;
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    let value = raw[i + 1];
    if (UPGRADE_HEADERS.has(name)) continue;
    if (name === 'connection') {
      value = value
        .split(',')
        .filter((option) => !UPGRADE_HEADERS.has(option.trim().toLowerCase()))
        .join(',');
      if (value.trim() === '') continue;
    }
    text += `${raw[i]}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}
