import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { ResolvedReliableWsOptions } from '../reliable-ws.options.js';

/** The client's address: the socket's, or the one `trustProxy` hops back in X-Forwarded-For. */
export function clientIp(request: IncomingMessage, trustProxy: false | number): string {
  const direct = request.socket.remoteAddress ?? 'unknown';
  if (trustProxy === false) return direct;
  const header = request.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : header ?? '')
    .split(',')
    .map((hop) => hop.trim())
    .filter(Boolean);
  const chain = [...forwarded, direct];
  return chain[Math.max(0, chain.length - 1 - trustProxy)];
}

/** Whether the request's Origin is allowed; a request without one is a non-browser client. */
export function isOriginAllowed(
  request: IncomingMessage,
  options: Pick<ResolvedReliableWsOptions, 'allowedOrigins' | 'requireOrigin'>,
): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return !options.requireOrigin;
  const allowed = options.allowedOrigins;
  if (allowed === '*') return true;
  if (allowed === 'same-origin') return isSameOrigin(origin, request.headers.host);
  if (typeof allowed === 'function') return safeCheck(() => allowed(origin, request));
  const normalized = origin.toLowerCase();
  return allowed.some((entry) => (typeof entry === 'string' ? entry === normalized : matches(entry, origin)));
}

/** Entries of an `allowedOrigins` list named in a log line, at most. */
const MAX_DESCRIBED_ORIGINS = 5;

/** `allowedOrigins` in a log line: the mode, or the first entries of the list. */
export function describeAllowedOrigins(allowed: ResolvedReliableWsOptions['allowedOrigins']): string {
  if (typeof allowed === 'string') return allowed;
  if (typeof allowed === 'function') return 'a function';
  const shown = allowed.slice(0, MAX_DESCRIBED_ORIGINS).map(String).join(', ');
  return `[${shown}${allowed.length > MAX_DESCRIBED_ORIGINS ? `, … ${allowed.length - MAX_DESCRIBED_ORIGINS} more` : ''}]`;
}

/** Tests a pattern from the start every time, whatever its `g` or `y` flag left behind. */
function matches(pattern: RegExp, text: string): boolean {
  pattern.lastIndex = 0;
  return pattern.test(text);
}

function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

function safeCheck(check: () => boolean): boolean {
  try {
    return check() === true;
  } catch {
    return false;
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  // The server's HTTP sockets allow half-open connections: without this, a client that never
  // closes its side would keep the socket, and hold the HTTP server's close, forever.
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      '\r\n' +
      body,
  );
}

/** A path the URL parser would leave as it is (no dot segments, escapes or other characters), up to its query. */
const PLAIN_PATH = /^(?=\/)(?:\/[\w~-]+)*\/?(?=[?#]|$)/;

/** The request's path without query string, or undefined when the URL cannot be parsed. */
export function requestPath(request: IncomingMessage): string | undefined {
  const url = request.url ?? '/';
  const plain = PLAIN_PATH.exec(url);
  if (plain) return plain[0];
  try {
    return new URL(url, 'ws://localhost').pathname;
  } catch {
    return undefined;
  }
}

export function normalizeGatewayPath(path: string | undefined): string {
  const withSlash = path ? (path.startsWith('/') ? path : `/${path}`) : '/';
  return withSlash.replace(/\/+$/, '') || '/';
}
