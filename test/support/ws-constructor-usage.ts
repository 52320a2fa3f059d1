/**
 * Type-level fixture, compiled (never run) by test/client.e2e-spec.ts: DESIGN §4 says the client
 * takes a `WebSocket` option "e.g. from `ws`" and defaults to the browser's; both constructors
 * must be accepted without a cast.
 */
import { WebSocket } from 'ws';
import { ReliableWsClient } from '../../lib/client/index.js';

export const withWs = (url: string) => new ReliableWsClient(url, { WebSocket });
export const withBrowserWebSocket = (url: string) => new ReliableWsClient(url, { WebSocket: globalThis.WebSocket });
