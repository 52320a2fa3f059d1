import type { IncomingMessage } from 'node:http';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token of an upgrade request: `?token=`, then `Authorization: Bearer`, then the cookie. */
export function handshakeToken(request: IncomingMessage, cookieName: string | undefined): string | undefined {
  return queryToken(request) ?? bearerToken(request) ?? (cookieName ? cookieValue(request, cookieName) : undefined);
}

function queryToken(request: IncomingMessage): string | undefined {
  try {
    return new URL(request.url ?? '/', 'ws://localhost').searchParams.get('token') || undefined;
  } catch {
    return undefined;
  }
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
  return (url ?? '').replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/** Removes a token from a text (e.g. an error message) before it is logged. */
export function redactToken(text: string, token: string): string {
  return token ? text.split(token).join('[redacted]') : text;
}
