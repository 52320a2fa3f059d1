import type { ErrorData, TransferProgress } from '../protocol/index.js';
import type { ReconnectOptions } from './backoff.js';

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed';

/** The part of the WebSocket API the client uses: the browser's, Node 22's, or `ws`'s. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  // Event parameters are loosely typed so that every implementation's own event types fit.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  /** Set to `'arraybuffer'` by the client, so that binary frames arrive as ArrayBuffers. */
  binaryType?: string;
  send(data: string | Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols: string) => WebSocketLike;

export interface ClientHeartbeatOptions {
  /** How often the client sends `$ping`. */
  intervalMs: number;
  /** How long it waits for any frame after a `$ping` before it reconnects. */
  timeoutMs: number;
}

export interface QueueOptions {
  /** Unanswered sends kept (queued or in flight). */
  maxMessages: number;
  /** Their total size in bytes. */
  maxBytes: number;
}

export interface ReliableWsClientOptions {
  /** Sent in `$hello`; a function is called again on every (re)connect. */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  reconnect?: Partial<ReconnectOptions>;
  heartbeat?: Partial<ClientHeartbeatOptions> | false;
  queue?: Partial<QueueOptions>;
  /** Resume the session after a reconnect (replay of missed pushes, no duplicate handling). */
  resume?: boolean;
  /** Bound on opening a connection, up to `$ready`. */
  connectTimeoutMs?: number;
  /** Socket `bufferedAmount` above which sends wait in the queue. */
  maxBufferedBytes?: number;
  /**
   * Period of the cumulative `$ack` of the pushes received since the last one: about one per
   * period, each push acked within 1.25 periods. An ack falls due at a point of the period drawn
   * at random per client, so that the clients of one broadcast do not ack at once, and goes out
   * with the first push from then on (when the server is awake anyway), else a quarter period
   * later. Default: 1000. A shorter period frees the server's replay buffer sooner and costs it
   * more acks to receive.
   */
  ackDelayMs?: number;
  /**
   * Bytes of streams from the server (`socket.stream`) received at once; a larger stream is
   * refused (`$cancel`) and reported as a `$error` event with code `PAYLOAD_TOO_LARGE`. Default: 16 MiB.
   */
  maxTransferBytes?: number;
  /**
   * Share one connection (one session, one WebSocket) among every tab of the origin that uses the
   * same url and `name`, through a SharedWorker. Ignored where SharedWorker is missing.
   */
  share?: ShareOptions;
}

export interface ShareOptions {
  /** URL of `nestjs-reliable-ws/client/shared-worker` (dist/browser/reliable-ws-shared-worker.js) as served to the page. */
  workerUrl: string | URL;
  /** Tabs with the same url and name share a connection; default: the url. */
  name?: string;
}

export interface ReadyInfo {
  sessionId: string;
  resumed: boolean;
  missed: boolean;
}

/** Payloads of the client's own events. */
export interface ClientSystemEvents {
  $state: ClientState;
  $ready: ReadyInfo;
  $reconnecting: { attempt: number; delayMs: number };
  $close: { code: number; reason: string };
  $failed: Error;
  /** A `$error` answering a `send()` (a `request()` rejects instead) or no message at all. */
  $error: ErrorData;
  /** How many tabs share the connection (with `share`; 1 otherwise, never emitted). */
  $tabs: number;
  /** Progress of a chunked transfer: an upload (`'up'`, acknowledged bytes) or a stream from the server (`'down'`). */
  $progress: TransferProgress;
}

export interface RequestOptions {
  timeoutMs?: number;
}

export interface UploadOptions {
  /** Called as the server acknowledges bytes: `sent` grows to `total` (it restarts at 0 only if the session was lost). */
  onProgress?: (sent: number, total: number) => void;
  /** Aborting cancels the upload: the server frees it, the promise rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** Gives up (and cancels) after this long; default: no limit. */
  timeoutMs?: number;
}
