import { ErrorCode, errorText, type ErrorData } from '../protocol/index.js';
import { ClientErrorCode, RequestError } from './errors.js';
import type { OutgoingMessage } from './outgoing-message.js';
import { ReliableConnection } from './reliable-connection.js';
import type { RequestFailure, SharedConnectionOptions, TabMessage, WorkerMessage } from './shared-connection.messages.js';

/** The part of `MessagePort` the hub uses. */
export interface TabPort {
  postMessage(message: WorkerMessage): void;
}

interface Tab {
  port: TabPort;
  tokenFromTab: boolean;
  /** The tab's uploads in progress, to cancel when it asks (or goes). */
  uploads: Map<number, AbortController>;
}

interface TokenAsk {
  tabId: string;
  settle(outcome: { token?: string; error?: string }): void;
}

/** How long a tab may take to hand over a token before another tab is asked. */
const TOKEN_TIMEOUT_MS = 10000;
/** Each tab bounds its own queue; the shared connection holds the sum. */
const UNBOUNDED_QUEUE = { maxMessages: Number.POSITIVE_INFINITY, maxBytes: Number.POSITIVE_INFINITY };

/**
 * Runs in the shared worker: one `ReliableConnection` for every tab attached with the same url.
 * Every event goes to every tab; a send's answer goes to the tab that sent it; the token comes
 * from a live tab; the last tab to leave closes the connection with 1000.
 */
export class ConnectionHub {
  private readonly tabs = new Map<string, Tab>();
  private readonly connection: ReliableConnection;
  private nextAskId = 0;
  private readonly tokenAsks = new Map<number, TokenAsk>();

  constructor(
    url: string,
    options: SharedConnectionOptions,
    private readonly onEmpty: () => void,
  ) {
    const staticToken = options.token;
    this.connection = new ReliableConnection(url, {
      ...options,
      queue: UNBOUNDED_QUEUE,
      token: () => (this.tokenFromTabs() ? this.askToken() : staticToken),
    });
    this.connection.emitter.relayTo((event, payload) =>
      this.toAll({ type: 'event', event, data: event === '$failed' ? (payload as Error).message : payload }),
    );
  }

  get stopped(): boolean {
    return this.connection.state === 'closed' || this.connection.state === 'failed';
  }

  attach(tabId: string, port: TabPort, tokenFromTab: boolean): void {
    const tab: Tab = { port, tokenFromTab, uploads: new Map() };
    this.tabs.set(tabId, tab);
    const { state, sessionId } = this.connection;
    this.post(tab, { type: 'attached', state, sessionId, tabs: this.tabs.size });
    this.toAll({ type: 'event', event: '$tabs', data: this.tabs.size }, tabId);
  }

  /** The tab is gone: what it waited for is dropped, what it sent still goes out; its uploads are cancelled. */
  detach(tabId: string): void {
    const tab = this.tabs.get(tabId);
    if (!tab || !this.tabs.delete(tabId)) return;
    for (const controller of tab.uploads.values()) controller.abort();
    for (const ask of [...this.tokenAsks.values()]) {
      if (ask.tabId === tabId) ask.settle({ error: 'the tab closed' });
    }
    if (this.tabs.size > 0) return this.toAll({ type: 'event', event: '$tabs', data: this.tabs.size });
    this.connection.close();
    this.onEmpty();
  }

  handle(tabId: string, message: TabMessage): void {
    const tab = this.tabs.get(tabId);
    if (!tab) return;
    switch (message.type) {
      case 'send':
        return this.send(tab, message.callId, message.message);
      case 'request':
        return this.request(tab, message.callId, message.message, message.timeoutMs);
      case 'upload':
        return this.upload(tab, message);
      case 'cancel-upload':
        return tab.uploads.get(message.callId)?.abort();
      case 'token':
        return this.tokenAsks.get(message.askId)?.settle(message);
      case 'detach':
        return this.detach(tabId);
    }
  }

  private send(tab: Tab, callId: number, message: OutgoingMessage): void {
    const settled = (): void => this.post(tab, { type: 'settled', callId });
    try {
      this.connection.submit(message, {
        onSettled: settled,
        onError: (error: ErrorData) => this.post(tab, { type: 'event', event: '$error', data: error }),
      });
    } catch {
      settled();
    }
  }

  private request(tab: Tab, callId: number, message: OutgoingMessage, timeoutMs: number | undefined): void {
    const settled = (): void => this.post(tab, { type: 'settled', callId });
    let answer: Promise<unknown>;
    try {
      answer = this.connection.submitRequest(message, timeoutMs, { onSettled: settled });
    } catch (error) {
      settled();
      answer = Promise.reject(error);
    }
    answer.then(
      (data) => this.post(tab, { type: 'answer', callId, data }),
      (error: unknown) => this.post(tab, { type: 'failure', callId, error: failure(error) }),
    );
  }

  /** An upload from a tab: its progress and its answer go to that tab only. */
  private upload(tab: Tab, message: Extract<TabMessage, { type: 'upload' }>): void {
    const { callId, event, data, timeoutMs, progress } = message;
    const controller = new AbortController();
    tab.uploads.set(callId, controller);
    let answer: Promise<unknown>;
    try {
      answer = this.connection.upload(event, data, {
        timeoutMs,
        signal: controller.signal,
        onProgress: progress ? (sent, total) => this.post(tab, { type: 'progress', callId, sent, total }) : undefined,
      });
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer
      .then(
        (data) => this.post(tab, { type: 'answer', callId, data }),
        (error: unknown) => this.post(tab, { type: 'failure', callId, error: failure(error) }),
      )
      .finally(() => {
        tab.uploads.delete(callId);
        this.post(tab, { type: 'settled', callId });
      });
  }

  private tokenFromTabs(): boolean {
    for (const tab of this.tabs.values()) if (tab.tokenFromTab) return true;
    return false;
  }

  /** Asks the live tabs for a token, one after the other, until one hands one over. */
  private async askToken(): Promise<string | undefined> {
    let lastError = 'no tab could provide a token';
    for (const [tabId, tab] of [...this.tabs]) {
      if (!tab.tokenFromTab || !this.tabs.has(tabId)) continue;
      const outcome = await this.askTab(tabId, tab);
      if (outcome.error === undefined) return outcome.token;
      lastError = outcome.error;
    }
    throw new Error(lastError);
  }

  private askTab(tabId: string, tab: Tab): Promise<{ token?: string; error?: string }> {
    const askId = ++this.nextAskId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle({ error: 'the tab did not provide a token in time' }), TOKEN_TIMEOUT_MS);
      const settle = (outcome: { token?: string; error?: string }): void => {
        clearTimeout(timer);
        this.tokenAsks.delete(askId);
        resolve(outcome);
      };
      this.tokenAsks.set(askId, { tabId, settle });
      this.post(tab, { type: 'token', askId });
    });
  }

  private toAll(message: WorkerMessage, exceptTabId?: string): void {
    for (const [tabId, tab] of this.tabs) if (tabId !== exceptTabId) this.post(tab, message);
  }

  /**
   * Posts to one tab. A message that cannot be cloned to it (data nested too deep, say) reaches
   * it as what it stands for, a `BAD_MESSAGE` failure of its request or a `$error` event, and
   * never throws into the connection or keeps it from the other tabs.
   */
  private post(tab: Tab, message: WorkerMessage): void {
    try {
      tab.port.postMessage(message);
    } catch (error) {
      try {
        tab.port.postMessage(undeliverable(message, errorText(error)));
      } catch (fallbackError) {
        console.error('ReliableWsClient: a message could not be posted to a tab', fallbackError);
      }
    }
  }
}

/** What a tab gets instead of a message that could not be cloned to it. */
function undeliverable(message: WorkerMessage, reason: string): WorkerMessage {
  const code = ErrorCode.BAD_MESSAGE;
  if (message.type === 'answer' || message.type === 'failure') {
    return { type: 'failure', callId: message.callId, error: { code, message: `the answer could not be passed to this tab: ${reason}` } };
  }
  const event = message.type === 'event' ? message.event : message.type;
  return { type: 'event', event: '$error', data: { code, message: `a "${event}" could not be passed to this tab: ${reason}`, details: { event } } };
}

function failure(error: unknown): RequestFailure {
  if (error instanceof RequestError) {
    return { code: error.code, message: error.message, details: error.details, retryAfterMs: error.retryAfterMs };
  }
  return { code: ClientErrorCode.CLOSED, message: errorText(error) };
}
