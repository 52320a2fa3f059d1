import type { ClientConnection } from './client-connection.js';
import { checkClientOptions, checkTimeout } from './client-options.js';
import { ReliableConnection } from './reliable-connection.js';
import type {
  ClientSystemEvents,
  ClientState,
  ReliableWsClientOptions,
  RequestOptions,
  ShareOptions,
  UploadOptions,
} from './reliable-ws-client.interfaces.js';
import { SharedConnection } from './shared-connection.js';

type EventMap = Record<string, any>;

/**
 * A WebSocket client for `ReliableWsModule` servers: reconnects with exponential backoff and
 * jitter, queues sends while offline, checks liveness with `$ping`, fetches a fresh token on
 * every connect, correlates requests with replies, and resumes its session. With `share`, every
 * tab of the origin uses one connection held by a SharedWorker.
 */
export class ReliableWsClient<ServerEvents extends EventMap = EventMap, ClientEvents extends EventMap = EventMap> {
  /** Whether this client is a tab's share of a SharedWorker's connection (`share` where SharedWorker exists). */
  readonly shared: boolean;
  private readonly connection: ClientConnection;

  constructor(url: string, options: ReliableWsClientOptions = {}) {
    checkClientOptions(options);
    const shared = options.share ? SharedConnection.open(url, options as ReliableWsClientOptions & { share: ShareOptions }) : undefined;
    this.shared = shared !== undefined;
    this.connection = shared ?? new ReliableConnection(url, options);
  }

  get state(): ClientState {
    return this.connection.state;
  }

  get sessionId(): string | undefined {
    return this.connection.sessionId;
  }

  /** Sends (or queues) whose answer has not arrived yet; with `share`, this tab's. */
  get queueLength(): number {
    return this.connection.queueLength;
  }

  on<K extends keyof ClientSystemEvents>(event: K, listener: (data: ClientSystemEvents[K]) => void): () => void;
  on<K extends keyof ServerEvents & string>(event: K, listener: (data: ServerEvents[K]) => void): () => void;
  on(event: string, listener: (data: any) => void): () => void {
    return this.connection.emitter.on(event, listener);
  }

  off(event: string, listener: (data: any) => void): void {
    this.connection.emitter.off(event, listener);
  }

  /**
   * Sends an event; queued while offline and sent again after a reconnect until answered. A
   * `Uint8Array` as data goes as one binary frame (within the server's `maxPayloadBytes`; larger
   * payloads: `upload`).
   */
  send<K extends keyof ClientEvents & string>(event: K, data?: ClientEvents[K]): void {
    this.connection.send(event, data);
  }

  /** Sends an event and resolves with the handler's reply, or rejects with a `RequestError`. */
  request<R = unknown, K extends keyof ClientEvents & string = keyof ClientEvents & string>(
    event: K,
    data?: ClientEvents[K],
    options: RequestOptions = {},
  ): Promise<R> {
    const badTimeout = checkTimeout(options.timeoutMs);
    if (badTimeout) return Promise.reject(badTimeout);
    return this.connection.request(event, data, options) as Promise<R>;
  }

  /**
   * Sends bytes of any size up to the server's `maxTransferBytes` as a chunked upload: the
   * handler of `event` gets them as one `Buffer` and its reply resolves the promise (or it
   * rejects with a `RequestError`: the server's code, `ABORTED`, `TIMEOUT`, `CLOSED`). Survives
   * reconnects: a resumed session continues where the server's acknowledgements stopped.
   */
  upload<R = unknown, K extends keyof ClientEvents & string = keyof ClientEvents & string>(
    event: K,
    data: Uint8Array,
    options: UploadOptions = {},
  ): Promise<R> {
    const badTimeout = checkTimeout(options.timeoutMs);
    if (badTimeout) return Promise.reject(badTimeout);
    return this.connection.upload(event, data, options) as Promise<R>;
  }

  /**
   * Closes with 1000 and stops for good: no reconnect; pending requests reject. With `share`,
   * detaches this tab only; the last tab's `close()` closes the shared connection.
   */
  close(): void {
    this.connection.close();
  }
}
