import type { OutgoingMessage } from './outgoing-message.js';
import type { ClientState, ReliableWsClientOptions } from './reliable-ws-client.interfaces.js';

/** The options a tab hands to the shared worker: what survives structured cloning. */
export type SharedConnectionOptions = Omit<ReliableWsClientOptions, 'WebSocket' | 'share' | 'token' | 'queue'> & {
  token?: string;
};

/** What a tab posts to the shared worker. */
export type TabMessage =
  | { type: 'attach'; tabId: string; url: string; options: SharedConnectionOptions; tokenFromTab: boolean }
  | { type: 'send'; callId: number; message: OutgoingMessage }
  | { type: 'request'; callId: number; message: OutgoingMessage; timeoutMs?: number }
  | { type: 'upload'; callId: number; event: string; data: Uint8Array; timeoutMs?: number; progress: boolean }
  | { type: 'cancel-upload'; callId: number }
  | { type: 'token'; askId: number; token?: string; error?: string }
  | { type: 'detach' };

export interface RequestFailure {
  code: string;
  message: string;
  details?: unknown;
  retryAfterMs?: number;
}

/** What the shared worker posts to a tab. */
export type WorkerMessage =
  | { type: 'attached'; state: ClientState; sessionId?: string; tabs: number }
  | { type: 'event'; event: string; data: unknown }
  | { type: 'settled'; callId: number }
  | { type: 'answer'; callId: number; data: unknown }
  | { type: 'failure'; callId: number; error: RequestFailure }
  | { type: 'progress'; callId: number; sent: number; total: number }
  | { type: 'token'; askId: number };

/** The name of the Web Lock a tab holds while it lives: the worker learns of its end when it gets it. */
export function tabLockName(tabId: string): string {
  return `nestjs-reliable-ws:tab:${tabId}`;
}
