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
