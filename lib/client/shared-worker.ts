/**
 * The SharedWorker script of `ReliableWsClient`'s `share` option, bundled on its own as
 * dist/browser/reliable-ws-shared-worker.js (`nestjs-reliable-ws/client/shared-worker`).
 */
import { ConnectionHub } from './connection-hub.js';
import { tabLockName, tabMessageOf, type TabMessage, type WorkerMessage } from './shared-connection.messages.js';
import { errorText } from '../protocol/index.js';

interface WorkerPort {
  onmessage: ((event: { data: unknown }) => void) | null;
  postMessage(message: WorkerMessage): void;
  close(): void;
}

interface SharedWorkerScope {
  onconnect: ((event: { ports: readonly WorkerPort[] }) => void) | null;
  navigator: { locks?: { request(name: string, callback: () => void): Promise<void> } };
}

const scope = globalThis as unknown as SharedWorkerScope;
const hubs = new Map<string, ConnectionHub>();

scope.onconnect = ({ ports: [port] }) => {
  let attached: { hub: ConnectionHub; tabId: string } | undefined;
  port.onmessage = ({ data }) => {
    const message = tabMessageOf(data);
    if (!message) return;
    if (attached) {
      attached.hub.handle(attached.tabId, message);
      if (message.type === 'detach') port.close();
    } else if (message.type === 'attach') {
      let hub: ConnectionHub;
      try {
        hub = hubFor(message.url, message);
      } catch (error) {
        // Options the connection refuses: the tab fails as it would with a connection of its own.
        return port.postMessage({ type: 'event', event: '$failed', data: errorText(error) });
      }
      const { tabId } = message;
      attached = { hub, tabId };
      hub.attach(tabId, port, message.tokenFromTab);
      void scope.navigator.locks?.request(tabLockName(tabId), () => hub.detach(tabId));
    }
  };
};

/** The url's hub; the first tab's options configure its connection. */
function hubFor(url: string, attach: Extract<TabMessage, { type: 'attach' }>): ConnectionHub {
  const existing = hubs.get(url);
  if (existing && !existing.stopped) return existing;
  const hub = new ConnectionHub(url, attach.options, () => {
    if (hubs.get(url) === hub) hubs.delete(url);
  });
  hubs.set(url, hub);
  return hub;
}
