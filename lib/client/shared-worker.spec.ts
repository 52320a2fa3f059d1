import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { FakeWebSocket } from '../../test/support/fake-web-socket.js';
import type { WorkerMessage } from './shared-connection.messages.js';

interface Port {
  onmessage: ((event: { data: unknown }) => void) | null;
  postMessage(message: WorkerMessage): void;
  close(): void;
  got: WorkerMessage[];
}

type OnConnect = (event: { ports: Port[] }) => void;
const scope = globalThis as unknown as { onconnect: OnConnect | null };
const navigatorBefore = Object.getOwnPropertyDescriptor(globalThis, 'navigator');

beforeAll(async () => {
  // A worker without Web Locks (the hub then never learns of a tab's end but by its detach).
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true });
  await import('./shared-worker.js');
});

afterAll(() => {
  if (navigatorBefore) Object.defineProperty(globalThis, 'navigator', navigatorBefore);
  else delete (globalThis as { navigator?: unknown }).navigator;
  scope.onconnect = null;
  jest.useRealTimers();
});

function connectTab(): Port {
  const got: WorkerMessage[] = [];
  const port: Port = { onmessage: null, got, postMessage: (message) => got.push(message), close: () => undefined };
  scope.onconnect!({ ports: [port] });
  return port;
}

const post = (port: Port, data: unknown) => port.onmessage!({ data });

const MALFORMED: unknown[] = [
  null,
  undefined,
  42,
  'send',
  [],
  {},
  { type: 'nope' },
  { type: 'send', callId: 1, message: { event: 'x', dataJson: '', payload: {}, bytes: 10 } },
  { type: 'send', callId: 2, message: null },
  { type: 'send', callId: 3, message: { event: '$ready', dataJson: '1', bytes: 1 } },
  { type: 'send', callId: 4, message: { event: 'x', dataJson: 7, bytes: 1 } },
  { type: 'send', callId: 'x', message: { event: 'x', dataJson: '1', bytes: 1 } },
  { type: 'request', callId: 5, message: { event: 'x', dataJson: '1', bytes: 1 }, timeoutMs: -1 },
  { type: 'upload', callId: 6, event: 'f', data: 'not bytes', progress: false },
  { type: 'cancel-upload', callId: {} },
  { type: 'token', askId: 1, token: 12 },
  { type: 'attach', tabId: 1, url: 'ws://example.test/ws', options: {}, tokenFromTab: false },
];

describe('the shared worker script', () => {
  it('ignores malformed tab messages, before and after attach, and the queue goes on: the next send takes id 1', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const tab = connectTab();
    for (const data of MALFORMED) expect(() => post(tab, data)).not.toThrow();
    expect(tab.got).toEqual([]);
    post(tab, { type: 'attach', tabId: 'tab-a', url: 'ws://example.test/ws', options: { WebSocket: FakeWebSocket, heartbeat: false }, tokenFromTab: false });
    await jest.advanceTimersByTimeAsync(0); // the connection connects once it has the token
    const socket = FakeWebSocket.last;
    socket.accept();
    for (const data of MALFORMED) expect(() => post(tab, data)).not.toThrow();
    post(tab, { type: 'send', callId: 7, message: { event: 'note', dataJson: '"hi"', bytes: 40 } });
    expect(socket.sentJson().slice(1)).toEqual([{ event: 'note', data: 'hi', id: 1 }]);
    socket.receive({ event: '$ack', data: { ref: 1 } });
    expect(tab.got.filter((message) => message.type !== 'event' && message.type !== 'attached')).toEqual([{ type: 'settled', callId: 7 }]);
    post(tab, { type: 'detach' });
  });

  it('a tab whose options the connection refuses is told with $failed, and the worker goes on', () => {
    const tab = connectTab();
    expect(() => post(tab, { type: 'attach', tabId: 'tab-b', url: 'ws://example.test/other', options: { WebSocket: FakeWebSocket, reconnect: { jitter: 5 } }, tokenFromTab: false })).not.toThrow();
    expect(tab.got).toEqual([{ type: 'event', event: '$failed', data: expect.stringContaining('reconnect.jitter') }]);
  });
});
