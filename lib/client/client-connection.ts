import type { Emitter } from './emitter.js';
import type { ClientState, RequestOptions, UploadOptions } from './reliable-ws-client.interfaces.js';

/** What `ReliableWsClient` drives: a connection of its own, or a tab's share of a worker's. */
export interface ClientConnection {
  readonly emitter: Emitter;
  readonly state: ClientState;
  readonly sessionId: string | undefined;
  readonly queueLength: number;
  send(event: string, data: unknown): void;
  request(event: string, data: unknown, options?: RequestOptions): Promise<unknown>;
  upload(event: string, data: Uint8Array, options?: UploadOptions): Promise<unknown>;
  close(): void;
}
