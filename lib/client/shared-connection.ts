import type { ClientConnection } from './client-connection.js';
import { ConnectionState } from './connection-state.js';
import { ClientErrorCode, RequestError, requestTimeoutError } from './errors.js';
import {
  checkEventName,
  DEFAULT_QUEUE,
  DEFAULT_REQUEST_TIMEOUT_MS,
  encodeOutgoing,
  encodeSystem,
  QueueBudget,
  type OutgoingMessage,
} from './outgoing-message.js';
import type { ClientState, ReliableWsClientOptions, RequestOptions, ShareOptions, UploadOptions } from './reliable-ws-client.interfaces.js';
import { errorText, isBinaryData, SystemEvent } from '../protocol/index.js';
import { tabLockName, type SharedConnectionOptions, type TabMessage, type WorkerMessage } from './shared-connection.messages.js';

interface PendingRequest {
  resolve(data: unknown): void;
  reject(error: RequestError): void;
  /** An upload's progress callback, which stays in the tab. */
  onProgress?: (sent: number, total: number) => void;
  /** A request's own timeout: it settles even when the worker's answer never comes. */
  timer?: ReturnType<typeof setTimeout>;
}

interface LockManager {
  request(name: string, callback: () => Promise<void>): Promise<void>;
}

/**
 * A tab's share of a connection that a SharedWorker holds for every tab with the same url and
 * `share.name`. The worker sends, resumes and acknowledges; the tab keeps its own queue budget
 * and its requests, and hears every push and `$`-event.
 */
export class SharedConnection extends ConnectionState implements ClientConnection {
  private session: string | undefined;
  private nextCallId = 0;
  private readonly budget: QueueBudget;
  private readonly bytesByCall = new Map<number, number>();
  private readonly requests = new Map<number, PendingRequest>();
  private releaseLock: (() => void) | undefined;
  /**
   * A page that is going away detaches its tab itself: when it is the worker's last, the worker
   * ends with it, and the lock it waits for would come too late to close the socket with 1000.
   */
  private readonly onPageHide = (event: { persisted?: boolean }): void => {
    if (!event.persisted) this.close(); // a page kept in the back/forward cache may come back
  };

  /** The shared connection, or undefined where this context has no SharedWorker. */
  static open(url: string, options: ReliableWsClientOptions & { share: ShareOptions }): SharedConnection | undefined {
    const SharedWorkerImpl = (globalThis as { SharedWorker?: typeof SharedWorker }).SharedWorker;
    if (!SharedWorkerImpl) return undefined;
    const absoluteUrl = new URL(url, (globalThis as { location?: { href: string } }).location?.href).href;
    const worker = new SharedWorkerImpl(options.share.workerUrl, { name: `nestjs-reliable-ws:${options.share.name ?? absoluteUrl}` });
    return new SharedConnection(worker.port, worker, absoluteUrl, options);
  }

  private constructor(
    private readonly port: MessagePort,
    worker: SharedWorker,
    url: string,
    private readonly options: ReliableWsClientOptions,
  ) {
    super();
    this.budget = new QueueBudget({ ...DEFAULT_QUEUE, ...options.queue });
    port.onmessage = (event: MessageEvent<WorkerMessage>) => this.receive(event.data);
    worker.onerror = () => {
      if (this.currentState === 'connecting') this.fail(new Error(`the shared worker at ${String(options.share?.workerUrl)} failed`));
    };
    const tabId = randomId();
    const attach = (): void =>
      this.post({ type: 'attach', tabId, url, options: sharedOptions(options), tokenFromTab: typeof options.token === 'function' });
    pageEvents()?.addEventListener('pagehide', this.onPageHide);
    queueMicrotask(() => {
      if (this.isStopped()) return;
      this.emitter.emit('$state', this.currentState);
      const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
      if (!locks) return attach();
      // The worker asks for the same lock: it is granted when this tab is gone, however it went.
      void locks.request(tabLockName(tabId), () => {
        attach();
        return new Promise<void>((resolve) => (this.releaseLock = resolve));
      });
    });
  }

  get sessionId(): string | undefined {
    return this.session;
  }

  get queueLength(): number {
    return this.budget.size;
  }

  send(event: string, data: unknown): void {
    const message = this.take(event, data);
    this.post({ type: 'send', callId: this.track(message), message });
  }

  request(event: string, data: unknown, options: RequestOptions = {}): Promise<unknown> {
    const message = this.take(event, data);
    const callId = this.track(message);
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.answer(callId)?.reject(requestTimeoutError(event, timeoutMs)), timeoutMs);
      this.requests.set(callId, { resolve, reject, timer });
      this.post({ type: 'request', callId, message, timeoutMs: options.timeoutMs });
    });
  }

  /** An upload run by the worker's connection; the bytes are copied to the worker once, progress comes back to this tab. */
  upload(event: string, data: Uint8Array, options: UploadOptions = {}): Promise<unknown> {
    checkEventName(event);
    if (!isBinaryData(data)) return Promise.reject(new TypeError('ReliableWsClient: upload data must be a Uint8Array'));
    if (options.signal?.aborted) return Promise.reject(new RequestError(ClientErrorCode.ABORTED, `the upload of "${event}" was aborted`));
    // The tab's queue counts the announcement, as the worker's does; the bytes are the caller's.
    const announcement = encodeSystem(SystemEvent.UPLOAD, { transfer: 0, event, size: data.byteLength });
    const callId = this.track(this.take(announcement));
    const { signal, onProgress, timeoutMs } = options;
    const onAbort = (): void => this.post({ type: 'cancel-upload', callId });
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<unknown>((resolve, reject) => {
      this.requests.set(callId, { resolve, reject, onProgress });
      this.post({ type: 'upload', callId, event, data, timeoutMs, progress: onProgress !== undefined });
    }).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /** Detaches this tab: the connection goes on for the others; the last tab's detach closes it with 1000. */
  close(): void {
    if (this.isStopped()) return;
    this.stop('closed', new RequestError(ClientErrorCode.CLOSED, 'the client was closed'));
  }

  private take(event: string | OutgoingMessage, data?: unknown): OutgoingMessage {
    const message = typeof event === 'string' ? encodeOutgoing(event, data) : event;
    if (this.isStopped()) throw new Error(`ReliableWsClient: cannot send on a ${this.currentState} client`);
    this.budget.reserve(message.bytes);
    return message;
  }

  private track(message: OutgoingMessage): number {
    const callId = ++this.nextCallId;
    this.bytesByCall.set(callId, message.bytes);
    return callId;
  }

  private receive(message: WorkerMessage): void {
    switch (message.type) {
      case 'attached':
        this.session = message.sessionId;
        this.emitter.emit('$tabs', message.tabs);
        return this.setState(message.state);
      case 'event':
        return this.onEvent(message.event, message.data);
      case 'settled':
        return this.release(message.callId);
      case 'answer':
        return this.answer(message.callId)?.resolve(message.data);
      case 'failure': {
        const { code, message: text, details, retryAfterMs } = message.error;
        return this.answer(message.callId)?.reject(new RequestError(code, text, details, retryAfterMs));
      }
      case 'progress':
        return this.progress(message.callId, message.sent, message.total);
      case 'token':
        return void this.provideToken(message.askId);
    }
  }

  private onEvent(event: string, data: unknown): void {
    if (this.isStopped()) return;
    // A failed connection says so again with `$failed`, which stops this tab.
    if (event === '$state') return data === 'failed' ? undefined : this.setState(data as ClientState);
    if (event === '$ready') this.session = (data as { sessionId: string }).sessionId;
    if (event === '$failed') return this.fail(new Error(String(data)));
    this.emitter.emit(event, data);
  }

  private progress(callId: number, sent: number, total: number): void {
    try {
      this.requests.get(callId)?.onProgress?.(sent, total);
    } catch (error) {
      console.error('ReliableWsClient: an upload onProgress callback threw', error);
    }
  }

  private answer(callId: number): PendingRequest | undefined {
    const request = this.requests.get(callId);
    this.requests.delete(callId);
    clearTimeout(request?.timer);
    return request;
  }

  private release(callId: number): void {
    const bytes = this.bytesByCall.get(callId);
    if (bytes === undefined) return;
    this.bytesByCall.delete(callId);
    this.budget.release(bytes);
  }

  private async provideToken(askId: number): Promise<void> {
    try {
      const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
      this.post({ type: 'token', askId, token });
    } catch (error) {
      this.post({ type: 'token', askId, error: errorText(error) });
    }
  }

  private fail(error: Error): void {
    this.stop('failed', new RequestError(ClientErrorCode.CLOSED, `the client failed: ${error.message}`));
    this.emitter.emit('$failed', error);
  }

  private stop(state: 'closed' | 'failed', reason: RequestError): void {
    this.setState(state);
    for (const request of this.requests.values()) {
      clearTimeout(request.timer);
      request.reject(reason);
    }
    this.requests.clear();
    this.bytesByCall.clear();
    this.budget.clear();
    this.post({ type: 'detach' });
    this.port.close();
    this.releaseLock?.();
    pageEvents()?.removeEventListener('pagehide', this.onPageHide);
  }

  private post(message: TabMessage): void {
    this.port.postMessage(message);
  }

}

interface PageEvents {
  addEventListener(type: 'pagehide', listener: (event: { persisted?: boolean }) => void): void;
  removeEventListener(type: 'pagehide', listener: (event: { persisted?: boolean }) => void): void;
}

/** The window's page lifecycle events, where there is a window. */
function pageEvents(): PageEvents | undefined {
  const target = globalThis as Partial<PageEvents>;
  return typeof target.addEventListener === 'function' && typeof target.removeEventListener === 'function' ? (target as PageEvents) : undefined;
}

function sharedOptions(options: ReliableWsClientOptions): SharedConnectionOptions {
  const { WebSocket: _socket, share: _share, queue: _queue, token, ...rest } = options;
  return { ...rest, token: typeof token === 'string' ? token : undefined };
}

/** 128 random bits in hex: `crypto.randomUUID` needs a secure context, `getRandomValues` does not. */
function randomId(): string {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}
