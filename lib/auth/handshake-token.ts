import type { IncomingMessage } from 'node:http';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token of an upgrade request: `?token=`, then `Authorization: Bearer`, then the cookie. */
export function handshakeToken(request: IncomingMessage, cookieName: string | undefined): string | undefined {
  return queryToken(request) ?? bearerToken(request) ?? (cookieName ? cookieValue(request, cookieName) : undefined);
}

/** A query the URL parser reads as it is: no escapes, `+`, fragment or other characters. */
const PLAIN_QUERY = /^[\w.~=&-]*$/;

function queryToken(request: IncomingMessage): string | undefined {
  const url = request.url ?? '';
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return undefined;
  const query = url.slice(queryStart + 1);
  if (PLAIN_QUERY.test(query)) return plainQueryToken(query);
  try {
    return new URL(url, 'ws://localhost').searchParams.get('token') || undefined;
  } catch {
    return undefined;
  }
}

/** `searchParams.get('token') || undefined` of a plain query. */
function plainQueryToken(query: string): string | undefined {
  for (const pair of query.split('&')) {
    const separator = pair.indexOf('=');
    if ((separator === -1 ? pair : pair.slice(0, separator)) !== 'token') continue;
    return separator === -1 ? undefined : pair.slice(separator + 1) || undefined;
  }
  return undefined;
}

function bearerToken(request: IncomingMessage): string | undefined {
  return BEARER.exec(request.headers.authorization ?? '')?.[1];
}

function cookieValue(request: IncomingMessage, name: string): string | undefined {
  for (const pair of (request.headers.cookie ?? '').split(';')) {
    const separator = pair.indexOf('=');
    if (separator === -1 || pair.slice(0, separator).trim() !== name) continue;
    const value = pair.slice(separator + 1).trim();
    try {
      return decodeURIComponent(value) || undefined;
    } catch {
      return value || undefined;
    }
  }
  return undefined;
}

/** The request URL with the value of every `token` query parameter replaced, for logs. */
export function redactUrl(url: string | undefined): string {
  const text = url ?? '';
  const queryStart = text.indexOf('?');
  if (queryStart === -1) return text;
  const hashStart = text.indexOf('#', queryStart);
  const queryEnd = hashStart === -1 ? text.length : hashStart;
  const query = text
    .slice(queryStart + 1, queryEnd)
    .split('&')
    .map((pair) => (isTokenParameter(pair) ? `${pair.split('=', 1)[0]}=[redacted]` : pair))
    .join('&');
  return `${text.slice(0, queryStart)}?${query}${text.slice(queryEnd)}`;
}

/** Whether a raw `name=value` pair names `token` once decoded, as `URLSearchParams` reads it. */
function isTokenParameter(pair: string): boolean {
  const [name] = new URLSearchParams(pair).keys();
  return name?.toLowerCase() === 'token';
}

/** Removes a token from a text (e.g. an error message) before it is logged. */
export function redactToken(text: string, token: string): string {
  return token ? text.split(token).join('[redacted]') : text;
}
