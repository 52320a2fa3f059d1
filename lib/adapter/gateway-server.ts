import type { WebSocketServer } from 'ws';

/** A `ws` server in no-server mode, answering upgrades for one gateway path. */
export interface GatewayServer extends WebSocketServer {
  path: string;
}
