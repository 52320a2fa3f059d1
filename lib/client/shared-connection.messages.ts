import { isAppEventName, isBinaryData, isCount, isRecord } from '../protocol/index.js';
import { checkTimeout } from './client-options.js';
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

/**
 * A message from a tab with the shape of a `TabMessage`, else undefined: the worker takes nothing
 * else (a tab may run another version of the client than the worker).
 */
export function tabMessageOf(data: unknown): TabMessage | undefined {
  if (!isRecord(data)) return undefined;
  const valid = ((): boolean => {
    switch (data.type) {
      case 'attach':
        return typeof data.tabId === 'string' && typeof data.url === 'string' && isRecord(data.options) && typeof data.tokenFromTab === 'boolean';
      case 'send':
        return isCount(data.callId) && isOutgoingMessage(data.message);
      case 'request':
        return isCount(data.callId) && isOutgoingMessage(data.message) && checkTimeout(data.timeoutMs as number | undefined) === undefined;
      case 'upload':
        return (
          isCount(data.callId) &&
          typeof data.event === 'string' &&
          isBinaryData(data.data) &&
          checkTimeout(data.timeoutMs as number | undefined) === undefined &&
          typeof data.progress === 'boolean'
        );
      case 'cancel-upload':
        return isCount(data.callId);
      case 'token':
        return isCount(data.askId) && isOptionalString(data.token) && isOptionalString(data.error);
      case 'detach':
        return true;
      default:
        return false;
    }
  })();
  return valid ? (data as TabMessage) : undefined;
}

function isOutgoingMessage(value: unknown): value is OutgoingMessage {
  if (!isRecord(value)) return false;
  const { event, dataJson, payload, bytes } = value;
  return (
    isAppEventName(event) &&
    typeof dataJson === 'string' &&
    (payload === undefined || isBinaryData(payload)) &&
    isCount(bytes)
  );
}

function isOptionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

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
