import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * What a connection keeps of its upgrade request once upgraded: the URL, the headers and the
 * peer's address. `auth.verify` gets it for a `$hello` or `$auth` token, `handleConnection` as
 * its second argument; the `IncomingMessage` itself (with its stream state) is let go.
 */
export interface HandshakeRequest {
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string };
}

export function handshakeRequestOf(request: IncomingMessage): HandshakeRequest {
  return { url: request.url, headers: request.headers, socket: { remoteAddress: request.socket.remoteAddress } };
}
