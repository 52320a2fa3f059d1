import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { SharedConnection } from './shared-connection.js';
import type { TabMessage, WorkerMessage } from './shared-connection.messages.js';

/** A shared worker that takes what the tab posts and answers nothing (a worker that hangs or lost the answer). */
class SilentSharedWorker {
  static last: SilentSharedWorker;
  onerror: (() => void) | null = null;
  readonly got: TabMessage[] = [];
  readonly port = {
    onmessage: null as ((event: { data: WorkerMessage }) => void) | null,
    postMessage: (message: TabMessage) => this.got.push(message),
    close: () => undefined,
  };

  constructor() {
    SilentSharedWorker.last = this;
  }
}

const scope = globalThis as { SharedWorker?: unknown };

beforeEach(() => {
  jest.useFakeTimers({ now: 1_000_000 });
  scope.SharedWorker = SilentSharedWorker;
});

afterEach(() => {
  delete scope.SharedWorker;
  jest.useRealTimers();
});

function open(): SharedConnection {
  const connection = SharedConnection.open('ws://example.test/ws', { share: { workerUrl: '/worker.js' } })!;
  jest.runAllTicks(); // attaches in a microtask
  return connection;
}

describe('SharedConnection: a request in a tab', () => {
  it.each([
    ['its timeoutMs', 500],
    ['the default 10000 ms', undefined],
  ])('settles with TIMEOUT after %s when the worker never answers', async (_, timeoutMs) => {
    const connection = open();
    let outcome: unknown;
    void connection.request('q', 1, { timeoutMs }).then(
      (data) => (outcome = { data }),
      (error: unknown) => (outcome = error),
    );
    expect(SilentSharedWorker.last.got.map((message) => message.type)).toEqual(['attach', 'request']);
    await jest.advanceTimersByTimeAsync((timeoutMs ?? 10000) - 1);
    expect(outcome).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);
    expect(outcome).toMatchObject({ name: 'RequestError', code: 'TIMEOUT' });
  });

  it('an answer in time clears its timer; close() clears those still running', async () => {
    const connection = open();
    const answered = connection.request('q', 1, { timeoutMs: 500 });
    void connection.request('q', 2, { timeoutMs: 500 }).catch(() => undefined);
    SilentSharedWorker.last.port.onmessage!({ data: { type: 'answer', callId: 1, data: 'ok' } });
    await expect(answered).resolves.toBe('ok');
    expect(jest.getTimerCount()).toBe(1);
    connection.close();
    expect(jest.getTimerCount()).toBe(0);
  });
});
