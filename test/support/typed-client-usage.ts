/**
 * Type-level fixture for `ReliableWsClient`'s generic event maps: compiled (never run) by
 * test/client.e2e-spec.ts with the TypeScript compiler, which must report no error. Each
 * `@ts-expect-error` line must really be an error, or the compiler reports the unused directive.
 */
import { WebSocket } from 'ws';
import { ReliableWsClient, type ReadyInfo, type WebSocketConstructor } from '../../lib/client/index.js';

interface ServerEvents {
  said: { text: string };
}
interface ClientEvents {
  say: { text: string };
}

export function typedUsage(url: string): ReliableWsClient<ServerEvents, ClientEvents> {
  // (whether `ws`'s class is accepted as is: see ws-constructor-usage.ts)
  const client = new ReliableWsClient<ServerEvents, ClientEvents>(url, { WebSocket: WebSocket as unknown as WebSocketConstructor });

  client.on('said', (data) => {
    const text: string = data.text;
    void text;
  });
  client.on('$ready', (info) => {
    const ready: ReadyInfo = info;
    const resumed: boolean = info.resumed;
    void ready;
    void resumed;
  });
  client.on('$reconnecting', ({ attempt, delayMs }) => void (attempt + delayMs));
  client.on('$state', (state) => {
    const s: 'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed' = state;
    void s;
  });
  client.send('say', { text: 'hi' });
  const reply: Promise<{ ok: boolean }> = client.request<{ ok: boolean }>('say', { text: 'hi' }, { timeoutMs: 100 });
  void reply;

  // @ts-expect-error: "shout" is not a client event
  client.send('shout', { text: 'hi' });
  // @ts-expect-error: the payload of "say" has a string text
  client.send('say', { text: 1 });
  // @ts-expect-error: the payload of "say" needs text
  client.send('say', { words: 'hi' });
  client.on('said', (data) => {
    // @ts-expect-error: "said" carries a string, not a number
    const n: number = data.text;
    void n;
  });
  client.on('$ready', (info) => {
    // @ts-expect-error: ReadyInfo has no such field
    void info.nope;
  });
  // @ts-expect-error: "shout" is not a client event
  void client.request('shout', { text: 'hi' });
  return client;
}

export function typedUsageUnknownServerEvent(client: ReliableWsClient<ServerEvents, ClientEvents>): void {
  // @ts-expect-error: "shouted" is not a server event
  client.on('shouted', () => undefined);
}
