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
