/**
 * `share`: one connection for all tabs, through the SharedWorker bundle
 * (dist/browser/reliable-ws-shared-worker.js), in real headless Chromium with several pages of
 * one context. Two instances of the chat gateway share Redis; the pages reach them through a TCP
 * proxy (one origin), so that the instance behind it can change while the tabs stay.
 */
import { WebSocket } from 'ws';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ReliableWsClient } from '../lib/client/index.js';
import { SessionRegistry, type ReliableWsOptions } from '../lib/index.js';
import { ChatGateway } from '../sample/chat.gateway.js';
import { startApp, type TestApp } from './support/app.js';
import { ensureBrowserBundles, launchChromium, testPageController } from './support/chromium.js';
import { REDIS_URL } from './support/redis.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';

const WAIT_MS = 10000;
const WORKER_URL = '/client/reliable-ws-shared-worker.js';

/** Each tab: one shared client; its token comes from `window.tokenKind` and is counted. */
const TABS_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>tabs</title>
<script type="module">
  import * as rws from '/client/reliable-ws-client.js';
  window.tokenKind = 'tok';
  window.tokenCalls = 0;
  const seen = { said: [], states: [], tabs: [], errors: [], closes: [], ready: [] };
  window.tabs = {
    seen,
    client: undefined,
    open() {
      const client = new rws.ReliableWsClient('ws://' + location.host + '/ws', {
        share: { workerUrl: '${WORKER_URL}' },
        token: () => window.tokenKind + '-' + ++window.tokenCalls,
        reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
      });
      client.on('said', (data) => seen.said.push(data.text));
      client.on('$state', (state) => seen.states.push(state));
      client.on('$tabs', (count) => seen.tabs.push(count));
      client.on('$error', (error) => seen.errors.push(error.code));
      client.on('$close', (close) => seen.closes.push(close.code));
      client.on('$ready', (ready) => seen.ready.push(ready));
      this.client = client;
      return client.shared;
    },
  };
</script></head><body>tabs</body></html>`;

const TabsPageController = testPageController('tabs.html', TABS_PAGE);

interface Seen {
  said: string[];
  states: string[];
  tabs: number[];
  errors: string[];
  closes: number[];
  ready: Array<{ sessionId: string; resumed: boolean; missed: boolean }>;
}

declare global {
  interface Window {
    tokenKind: string;
    tokenCalls: number;
    tabs: { seen: Seen; client: any; open(): boolean };
  }
}

/** Tokens `tok-n` last an hour, `short-n` 1.5 s; the user is always ann. */
function verify(token: string): { id: string; until: number } | null {
  const [kind] = token.split('-');
  if (kind === 'tok') return { id: 'ann', until: Date.now() + 3_600_000 };
  if (kind === 'short') return { id: 'ann', until: Date.now() + 1500 };
  return null;
}

describe('one connection for all tabs (SharedWorker, Chromium)', () => {
  const prefix = `share-${process.pid}-${Date.now()}`;
  const options: ReliableWsOptions = {
    broadcast: { redis: REDIS_URL, channelPrefix: prefix },
    auth: { verify, expiresAt: (principal: { until: number }) => principal.until },
    allowedOrigins: '*',
    // The tabs share one connection, so one bucket: three tabs sending 33 lines a second, and the
    // burst of what they queued during a move, are over the default 50/s (answered RATE_LIMITED).
    rateLimit: { points: 500, durationMs: 1000, maxViolations: 20 },
  };
  let a: TestApp;
  let b: TestApp;
  let proxy: TcpProxy;
  let browser: Browser;
  let context: BrowserContext;
  const observers: ReliableWsClient[] = [];
  const upgrades = new Map<TestApp, number>();

  const count = (app: TestApp): void => {
    upgrades.set(app, 0);
    app.app.getHttpServer().on('upgrade', () => upgrades.set(app, upgrades.get(app)! + 1));
  };
  const connections = (app: TestApp): number => app.app.get(SessionRegistry).connectionCount;

  beforeAll(async () => {
    ensureBrowserBundles();
    a = await startApp(options, [ChatGateway], { controllers: [TabsPageController] });
    b = await startApp(options, [ChatGateway], { controllers: [TabsPageController] });
    count(a);
    count(b);
    proxy = await TcpProxy.start(a.port);
    browser = await launchChromium();
  }, 60000);

  beforeEach(async () => {
    context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
  });

  afterEach(async () => {
    await context.close().catch(() => undefined);
    for (const observer of observers.splice(0)) observer.close();
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await proxy?.close();
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
  });

  async function openTabs(n: number): Promise<Page[]> {
    const pages: Page[] = [];
    for (let i = 0; i < n; i++) {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}/tabs.html`);
      await page.waitForFunction(() => window.tabs !== undefined);
      expect(await page.evaluate(() => window.tabs.open())).toBe(true);
      await page.waitForFunction(() => window.tabs.client.state === 'open');
      pages.push(page);
    }
    return pages;
  }

  const seen = (page: Page): Promise<Seen> => page.evaluate(() => JSON.parse(JSON.stringify(window.tabs.seen)) as Seen);

  /** Waits for a tab to hear every line; on timeout, says what it missed and how its connection went. */
  async function waitForLines(tab: Page, lines: string[]): Promise<void> {
    try {
      await tab.waitForFunction((n) => window.tabs.seen.said.length >= n, lines.length, { timeout: 20000 });
    } catch (error) {
      const { said, ready, closes, states, errors } = await seen(tab);
      const missing = lines.filter((line) => !said.includes(line));
      throw new Error(
        `a tab heard ${said.length} of ${lines.length} lines, missing ${JSON.stringify(missing)}; ` +
          `$ready ${JSON.stringify(ready)}, closes [${closes}], states [${states}], errors [${errors}] (${String(error)})`,
      );
    }
  }

  /** A Node client straight at an instance, in `room`, that hears what the tabs say. */
  async function observer(app: TestApp, room: string): Promise<{ client: ReliableWsClient; said: string[] }> {
    const client = new ReliableWsClient(app.wsUrl('/ws'), { WebSocket: WebSocket as never, token: 'tok-observer' });
    observers.push(client);
    const said: string[] = [];
    client.on('said', (data: { text: string }) => said.push(data.text));
    await client.request('join', { room });
    return { client, said };
  }

  it('three tabs: one upgrade, one session; every push reaches every tab; answers go to their own tab', async () => {
    const before = upgrades.get(a)!;
    const tabs = await openTabs(3);
    expect(upgrades.get(a)! - before).toBe(1);
    expect(connections(a)).toBe(1);
    const sessions = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.tabs.client.sessionId)));
    expect(new Set(sessions).size).toBe(1);
    await tabs[2]!.waitForFunction(() => window.tabs.seen.tabs.at(-1) === 3);
    expect((await seen(tabs[0]!)).tabs.at(-1)).toBe(3);
    // 'connecting' was heard in every tab, before 'open'.
    for (const tab of tabs) expect((await seen(tab)).states.slice(0, 2)).toEqual(['connecting', 'open']);

    expect(await tabs[0]!.evaluate(() => window.tabs.client.request('join', { room: 'r' }))).toMatchObject({ ok: true });
    const outside = await observer(b, 'r');
    await outside.client.request('say', { room: 'r', text: 'hello tabs' });
    for (const tab of tabs) await tab.waitForFunction(() => window.tabs.seen.said.includes('hello tabs'));

    // A request from tab 2 resolves there; a failing send's $error reaches tab 2 only.
    expect(await tabs[1]!.evaluate(() => window.tabs.client.request('say', { room: 'r', text: 'from tab 2' }))).toEqual({ ok: true });
    await tabs[1]!.evaluate(() => window.tabs.client.send('say', { room: 'r', text: '' }));
    await tabs[1]!.waitForFunction(() => window.tabs.seen.errors.length === 1);
    await waitUntil(() => outside.said.includes('from tab 2'), { timeoutMs: WAIT_MS, what: 'the observer to hear tab 2' });
    await sleep(200);
    expect((await seen(tabs[1]!)).errors).toEqual(['VALIDATION_FAILED']);
    expect((await seen(tabs[0]!)).errors).toEqual([]);
    expect((await seen(tabs[2]!)).errors).toEqual([]);
    for (const tab of tabs) {
      expect((await seen(tab)).said).toEqual(['hello tabs', 'from tab 2']);
      expect(await tab.evaluate(() => window.tabs.client.queueLength)).toBe(0);
    }
    expect(outside.said.filter((text) => text === 'from tab 2')).toHaveLength(1);
  });

  it('a tab closing mid-request takes nothing else with it; the last tab closes the socket with 1000', async () => {
    const tabs = await openTabs(3);
    expect(await tabs[0]!.evaluate(() => window.tabs.client.request('join', { room: 'c' }))).toMatchObject({ ok: true });
    const outside = await observer(b, 'c');
    await tabs[0]!.evaluate(() => void window.tabs.client.request('say', { room: 'c', text: 'last words' }));
    await tabs[0]!.close();
    // The page's goodbye (pagehide) detaches its tab; what it sent still goes out.
    await tabs[1]!.waitForFunction(() => window.tabs.seen.tabs.at(-1) === 2);
    expect(await tabs[1]!.evaluate(() => window.tabs.client.request('say', { room: 'c', text: 'still here' }))).toEqual({ ok: true });
    await tabs[2]!.waitForFunction(() => window.tabs.seen.said.includes('still here'));
    await waitUntil(() => outside.said.includes('still here'), { timeoutMs: WAIT_MS, what: 'the observer' });
    expect(outside.said.filter((text) => text === 'last words').length).toBeLessThanOrEqual(1);
    expect(connections(a)).toBe(1);

    // close() in one tab detaches that tab only.
    expect(await tabs[1]!.evaluate(() => (window.tabs.client.close(), window.tabs.client.state))).toBe('closed');
    await tabs[2]!.waitForFunction(() => window.tabs.seen.tabs.at(-1) === 1);
    expect(await tabs[2]!.evaluate(() => window.tabs.client.request('say', { room: 'c', text: 'alone' }))).toEqual({ ok: true });

    const detachedBefore = a.app.get(SessionRegistry).detachedCount;
    await tabs[2]!.close();
    await waitUntil(() => connections(a) === 0, { timeoutMs: WAIT_MS, what: 'the shared socket to close' });
    // 1000 ends the session; any other code would have kept it for a resume.
    await sleep(100);
    expect(a.app.get(SessionRegistry).detachedCount).toBe(detachedBefore);
  });

  it('closing the last page (the worker goes with it) closes the socket with 1000, ending the session, every time', async () => {
    const registry = a.app.get(SessionRegistry);
    const detachedBefore = registry.detachedCount;
    for (let round = 0; round < 3; round++) {
      const [only] = await openTabs(1);
      await only!.close();
      await waitUntil(() => connections(a) === 0, { timeoutMs: WAIT_MS, what: 'the shared socket to close' });
    }
    await sleep(100);
    expect(registry.detachedCount).toBe(detachedBefore);
  });

  it('the worker asks a live tab for the token: after the tab that gave it closes, and when it expires (4001)', async () => {
    const tabs = await openTabs(2);
    const calls = async (): Promise<number[]> => Promise.all(tabs.filter((tab) => !tab.isClosed()).map((tab) => tab.evaluate(() => window.tokenCalls)));
    expect((await calls()).reduce((sum, n) => sum + n, 0)).toBe(1);
    const first = (await calls())[0] === 1 ? 0 : 1;
    await tabs[first]!.close();
    const other = tabs[1 - first]!;
    await other.waitForFunction(() => window.tabs.seen.tabs.at(-1) === 1);
    const sessionId = await other.evaluate(() => window.tabs.client.sessionId);
    const readyBefore = (await seen(other)).ready.length;
    proxy.cutAll();
    await other.waitForFunction((n) => window.tokenCalls === 1 && window.tabs.seen.ready.length > n, readyBefore);
    expect(await other.evaluate(() => window.tabs.client.sessionId)).toBe(sessionId);

    // A token that expires: the server closes 4001, the worker fetches a fresh one from the tab.
    await other.evaluate(() => (window.tokenKind = 'short'));
    proxy.cutAll();
    await other.waitForFunction(() => window.tokenCalls === 2 && window.tabs.client.state === 'open');
    await other.evaluate(() => (window.tokenKind = 'tok'));
    await other.waitForFunction(() => window.tabs.seen.closes.includes(4001), null, { timeout: WAIT_MS });
    await other.waitForFunction(() => window.tokenCalls === 3 && window.tabs.client.state === 'open');
    const reply = await other.evaluate(() => window.tabs.client.request('join', { room: 'after-expiry' }));
    expect(reply).toMatchObject({ ok: true });
  });

  it('the instance behind the tabs shuts down: the session moves, nothing lost or doubled in any tab or at the server', async () => {
    const tabs = await openTabs(3);
    expect(await tabs[0]!.evaluate(() => window.tabs.client.request('join', { room: 'm' }))).toMatchObject({ ok: true });
    const outside = await observer(b, 'm');
    const LINES = 30;
    const tabLines = tabs.map((_, t) => Array.from({ length: LINES }, (__, i) => `t${t}-${i}`));
    const outsideLines = Array.from({ length: LINES }, (_, i) => `o-${i}`);

    const sending = tabs.map((tab, t) =>
      tab.evaluate(
        async ([lines]) => {
          for (const text of lines) {
            window.tabs.client.send('say', { room: 'm', text });
            await new Promise((resolve) => setTimeout(resolve, 30));
          }
        },
        [tabLines[t]!] as const,
      ),
    );
    const speaking = (async () => {
      for (const text of outsideLines) {
        outside.client.send('say', { room: 'm', text });
        await sleep(30);
      }
    })();
    await sleep(300);
    proxy.targetPort = b.port;
    await within(a.close(), WAIT_MS, 'instance A shutting down');
    await Promise.all([...sending, speaking]);

    const everyLine = [...tabLines.flat(), ...outsideLines];
    for (const tab of tabs) await waitForLines(tab, everyLine);
    await waitUntil(() => outside.said.length >= everyLine.length, { timeoutMs: 20000, what: 'the observer to hear every line' });
    await sleep(300);
    const inOrder = (said: string[], lines: string[]): string[] => said.filter((text) => lines.includes(text));
    for (const tab of tabs) {
      const { said, ready } = await seen(tab);
      expect([...said].sort()).toEqual([...everyLine].sort());
      for (const lines of [...tabLines, outsideLines]) expect(inOrder(said, lines)).toEqual(lines);
      expect(ready.at(-1)).toMatchObject({ resumed: true, missed: false });
    }
    expect([...outside.said].sort()).toEqual([...everyLine].sort());
    expect(connections(b)).toBe(2); // the tabs' one socket and the observer
  }, 60000);
});
