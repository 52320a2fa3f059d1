import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { FakeWebSocket } from '../../test/support/fake-web-socket.js';
import { ConnectionHub, type TabPort } from './connection-hub.js';
import type { SharedConnectionOptions, WorkerMessage } from './shared-connection.messages.js';

/** A tab's port: what the worker posted to it. */
function tabPort(): TabPort & { got: WorkerMessage[] } {
  const got: WorkerMessage[] = [];
  return { got, postMessage: (message) => got.push(message) };
}

async function setup() {
  jest.useFakeTimers({ now: 1_000_000 });
  const options = { WebSocket: FakeWebSocket, heartbeat: false } as SharedConnectionOptions;
  const hub = new ConnectionHub('ws://example.test/ws', options, () => undefined);
  const tabs = [tabPort(), tabPort()];
  tabs.forEach((port, i) => hub.attach(`tab${i}`, port, false));
  await jest.advanceTimersByTimeAsync(0); // the connection connects once it has the token
  return { hub, tabs, sockets: FakeWebSocket.instances };
}

afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
  FakeWebSocket.instances = [];
});

describe('ConnectionHub', () => {
  it('relays no server push named like a client event ($failed, $state, $tabs) to the tabs', async () => {
    const { tabs, sockets } = await setup();
    sockets[0]!.accept();
    const relayed = (port: (typeof tabs)[number]) =>
      port.got.flatMap((message) => (message.type === 'event' && message.event !== '$tabs' ? [[message.event, message.data]] : []));
    const before = tabs.map(relayed);
    expect(before[0]!.at(-1)).toEqual(['$ready', { sessionId: 's1', resumed: false, missed: false }]);
    sockets[0]!.receive({ event: '$failed', data: 'from the server', seq: 1 });
    sockets[0]!.receive({ event: '$state', data: 'closed', seq: 2 });
    sockets[0]!.receive({ event: '$tabs', data: 0, seq: 3 });
    sockets[0]!.receive({ event: 'news', data: 1, seq: 4 });
    for (const [i, port] of tabs.entries()) expect(relayed(port)).toEqual([...before[i]!, ['news', 1]]);
  });
});

describe('ConnectionHub: a send that cannot be encoded', () => {
  it('is settled with a BAD_MESSAGE $error to its tab, takes no id and does not stop the queue behind it, now or after a reconnect', async () => {
    const { hub, tabs, sockets } = await setup();
    const [tab] = tabs;
    hub.handle('tab0', { type: 'send', callId: 1, message: { event: 'x', dataJson: '', payload: {} as Uint8Array, bytes: 10 } });
    hub.handle('tab0', { type: 'send', callId: 2, message: { event: 'note', dataJson: '1', bytes: 40 } });
    sockets[0]!.accept();
    expect(sockets[0]!.sentJson().slice(1)).toEqual([{ event: 'note', data: 1, id: 1 }]);
    const toTab = tab!.got.filter((message) => message.type === 'settled' || (message.type === 'event' && message.event === '$error'));
    expect(toTab).toEqual([
      { type: 'settled', callId: 1 },
      { type: 'event', event: '$error', data: expect.objectContaining({ code: 'BAD_MESSAGE' }) },
    ]);
    sockets[0]!.fireClose(1006);
    await jest.advanceTimersByTimeAsync(5000);
    sockets[1]!.accept({ resumed: true, lastId: 0 });
    expect(sockets[1]!.sentJson().slice(1)).toEqual([{ event: 'note', data: 1, id: 1 }]);
  });
});

describe('ConnectionHub: what cannot be passed to a tab', () => {
  /** A tab's port that clones what it is given, as `postMessage` does: a value nested too deep throws. */
  function clonePort(): TabPort & { got: WorkerMessage[] } {
    const got: WorkerMessage[] = [];
    return { got, postMessage: (message) => got.push(structuredClone(message)) };
  }
  const DEEP = '['.repeat(6000) + ']'.repeat(6000);

  async function setupCloning() {
    jest.useFakeTimers({ now: 1_000_000 });
    const options = { WebSocket: FakeWebSocket, heartbeat: false } as SharedConnectionOptions;
    const hub = new ConnectionHub('ws://example.test/ws', options, () => undefined);
    const tabs = [clonePort(), clonePort()];
    tabs.forEach((port, i) => hub.attach(`tab${i}`, port, false));
    await jest.advanceTimersByTimeAsync(0);
    FakeWebSocket.instances[0]!.accept();
    return { hub, tabs, socket: FakeWebSocket.instances[0]! };
  }

  it('a push that cannot be cloned is reported to every tab as a BAD_MESSAGE $error; the connection and later pushes go on', async () => {
    const { tabs, socket } = await setupCloning();
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    socket.receive({ event: 'p', data: 'before', seq: 1 });
    socket.receive(`{"event":"p","data":${DEEP},"seq":2}`);
    socket.receive({ event: 'p', data: 'after', seq: 3 });
    for (const tab of tabs) {
      const events = tab.got.flatMap((message) => (message.type === 'event' && ['p', '$error', '$close'].includes(message.event) ? [[message.event, message.data]] : []));
      expect(events).toEqual([
        ['p', 'before'],
        ['$error', expect.objectContaining({ code: 'BAD_MESSAGE', details: { event: 'p' } })],
        ['p', 'after'],
      ]);
    }
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(logged).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1250);
    expect(socket.sentJson().filter((frame) => frame.event === '$ack')).toEqual([{ event: '$ack', data: { seq: 3 } }]);
  });

  it('a tab whose port throws on everything takes nothing from the other tab', async () => {
    const { hub, tabs, socket } = await setupCloning();
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const broken: TabPort = {
      postMessage: () => {
        throw new Error('port gone');
      },
    };
    hub.attach('broken', broken, false);
    socket.receive({ event: 'p', data: 'news', seq: 1 });
    expect(tabs[0]!.got.at(-1)).toEqual({ type: 'event', event: 'p', data: 'news' });
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(logged).toHaveBeenCalled();
  });

  it('a reply that cannot be cloned settles the tab\'s request as a BAD_MESSAGE failure', async () => {
    const { hub, tabs, socket } = await setupCloning();
    hub.handle('tab0', { type: 'request', callId: 7, message: { event: 'q', dataJson: '1', bytes: 40 }, timeoutMs: 500 });
    const sent = socket.sentJson().at(-1)!;
    socket.receive(`{"event":"q","data":${DEEP},"ref":${sent.id}}`);
    await jest.advanceTimersByTimeAsync(0);
    expect(tabs[0]!.got.filter((message) => message.type === 'failure' || message.type === 'answer')).toEqual([
      { type: 'failure', callId: 7, error: expect.objectContaining({ code: 'BAD_MESSAGE' }) },
    ]);
  });
});
