/**
 * The browser bundle (`nestjs-reliable-ws/client/browser`, dist/browser/reliable-ws-client.js) in
 * real headless Chromium, against the sample app: a page imports the bundle with
 * `<script type="module">` and the tests drive its ReliableWsClient with page.evaluate; the
 * sample page itself (sample/public/app.js on the same bundle) is checked through its UI.
 *
 * Needs Debian's chromium at /usr/bin/chromium (.ci/run installs it); playwright-core brings no
 * browser of its own. Set SAMPLE_SCREENSHOT=/path.png to keep a screenshot of the sample page.
 */
import type { INestApplication } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createSampleApp } from '../sample/app.js';
import { ensureBrowserBundles, launchChromium } from './support/chromium.js';
import { sleep, within } from './support/wait.js';

const WAIT_MS = 8000;

/** The test page: imports the bundle and keeps what each client reported. */
const TEST_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>client test</title>
<script type="module">
  import * as rws from '/client/reliable-ws-client.js';
  const clients = {};
  window.harness = {
    rws,
    clients,
    online: 0,
    create(name, options) {
      const client = new rws.ReliableWsClient('ws://' + location.host + '/ws', options);
      const seen = { states: [], ready: [], reconnecting: [], closes: [], said: [], failed: [] };
      client.on('$state', (state) => seen.states.push({ state, at: performance.now() }));
      client.on('$ready', (info) => seen.ready.push({ ...info, at: performance.now() }));
      client.on('$reconnecting', (info) => seen.reconnecting.push({ ...info, at: performance.now() }));
      client.on('$close', (info) => seen.closes.push(info));
      client.on('$failed', (error) => seen.failed.push(String(error && error.message)));
      client.on('said', (data) => seen.said.push(data.text));
      clients[name] = { client, seen };
    },
  };
  addEventListener('online', () => window.harness.online++);
</script></head><body>client test</body></html>`;

interface Seen {
  states: Array<{ state: string; at: number }>;
  ready: Array<{ sessionId: string; resumed: boolean; missed: boolean; at: number }>;
  reconnecting: Array<{ attempt: number; delayMs: number; at: number }>;
  closes: Array<{ code: number; reason: string }>;
  said: string[];
  failed: string[];
}

interface Harness {
  rws: any;
  clients: Record<string, { client: any; seen: Seen }>;
  online: number;
  create(name: string, options?: unknown): void;
}

declare global {
  interface Window {
    harness: Harness;
  }
}

describe('browser bundle in headless Chromium', () => {
  let app: INestApplication | undefined;
  let port = 0;
  let base = '';
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;

  /** Starts the sample app on `port` (0: any); retries briefly while the old one lets go of it. */
  const startApp = async (onPort: number): Promise<void> => {
    for (let tries = 0; ; tries++) {
      // In memory whatever the environment says: a restarted app must know no sessions.
      const next = await createSampleApp({ logger: false }, { channelPrefix: 'browser-test' });
      // The test page, from the app itself: same origin for the gateway, and a page that came
      // from a loopback address may open loopback sockets (Chromium's local network access checks).
      next.use('/client-test.html', (_request: unknown, response: { type(t: string): { send(b: string): void } }) =>
        response.type('html').send(TEST_PAGE),
      );
      try {
        await next.listen(onPort, '127.0.0.1');
        app = next;
        port = (next.getHttpServer().address() as AddressInfo).port;
        base = `http://127.0.0.1:${port}`;
        return;
      } catch (error) {
        await next.close();
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries >= 20) throw error;
        await sleep(100);
      }
    }
  };

  const stopApp = async (): Promise<void> => {
    const running = app;
    app = undefined;
    await within(running!.close(), WAIT_MS, 'app.close()');
  };

  const seen = (name: string): Promise<Seen> =>
    page.evaluate((n) => JSON.parse(JSON.stringify(window.harness.clients[n].seen)) as Seen, name);

  const waitForState = (name: string, state: string, timeout = WAIT_MS): Promise<unknown> =>
    page.waitForFunction(([n, s]) => window.harness.clients[n].client.state === s, [name, state] as const, {
      timeout,
      polling: 20,
    });

  /** Closes the named page clients for good (state 'closed'), so they stop reconnecting. */
  const closeClients = (...names: string[]): Promise<string[]> =>
    page.evaluate((list) => list.map((n) => (window.harness.clients[n].client.close(), window.harness.clients[n].client.state)), names);

  beforeAll(async () => {
    ensureBrowserBundles();
    await startApp(0);
    browser = await launchChromium();
    context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    page = await context.newPage();
    await page.goto(`${base}/client-test.html`);
    await page.waitForFunction(() => window.harness !== undefined, null, { timeout: WAIT_MS });
  }, 60000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (app) await app.close().catch(() => undefined);
  });

  it('imports the bundle as an ES module, connects and answers requests', async () => {
    expect(await page.evaluate(() => Object.keys(window.harness.rws).sort())).toEqual(
      expect.arrayContaining(['QueueFullError', 'ReliableWsClient', 'RequestError', 'reconnectDelay']),
    );
    await page.evaluate(() => window.harness.create('a'));
    await waitForState('a', 'open');
    const first = await seen('a');
    expect(first.states.map((s) => s.state)).toEqual(['connecting', 'open']); // heard right after construction
    expect(first.ready).toEqual([{ sessionId: expect.any(String), resumed: false, missed: false, at: expect.any(Number) }]);

    const reply = await page.evaluate(() => window.harness.clients.a.client.request('say', { room: 'lobby', text: 'hi from chromium' }));
    expect(reply).toEqual({ ok: true });
    await page.waitForFunction(() => window.harness.clients.a.seen.said.includes('hi from chromium'));

    const rejected = await page.evaluate(() =>
      window.harness.clients.a.client.request('say', { room: 'lobby', text: '' }).then(
        () => ({ resolved: true }),
        (error: any) => ({
          isRequestError: error instanceof window.harness.rws.RequestError,
          code: error.code,
          details: error.details,
        }),
      ),
    );
    expect(rejected).toEqual({
      isRequestError: true,
      code: 'VALIDATION_FAILED',
      details: [{ property: 'text', constraints: { isNotEmpty: 'text should not be empty' } }],
    });
    expect(await page.evaluate(() => window.harness.clients.a.client.queueLength)).toBe(0);
  });

  it('survives a server restart on the same port and delivers what was queued meanwhile', async () => {
    await page.evaluate(() => window.harness.create('r', { reconnect: { initialDelayMs: 100, maxDelayMs: 400 } }));
    await waitForState('r', 'open');
    const sessionBefore = await page.evaluate(() => window.harness.clients.r.client.sessionId);
    const samePort = port;

    await stopApp();
    await waitForState('r', 'reconnecting');
    // Sent while the server is away: kept in the queue, not lost.
    const queued = await page.evaluate(() => {
      const { client } = window.harness.clients.r;
      client.send('say', { room: 'lobby', text: 'queued send' });
      (window as any).queuedReply = client.request('say', { room: 'lobby', text: 'queued request' }, { timeoutMs: 20000 });
      return client.queueLength;
    });
    expect(queued).toBe(2);
    await page.waitForFunction(() => window.harness.clients.r.seen.reconnecting.length >= 3, null, { timeout: WAIT_MS });

    await startApp(samePort);
    expect(port).toBe(samePort);
    await waitForState('r', 'open');
    expect(await page.evaluate(() => (window as any).queuedReply)).toEqual({ ok: true });
    await page.waitForFunction(() =>
      ['queued send', 'queued request'].every((text) => window.harness.clients.r.seen.said.includes(text)),
    );
    expect(await page.evaluate(() => window.harness.clients.r.client.queueLength)).toBe(0);

    const after = await seen('r');
    expect(after.closes[0]).toMatchObject({ code: 1001 }); // the drain's "going away"
    expect(after.reconnecting.map((r) => r.attempt).slice(0, 3)).toEqual([1, 2, 3]);
    expect(after.ready).toHaveLength(2);
    expect(after.ready[1]).toMatchObject({ resumed: false }); // a new server process knows no sessions
    expect(after.ready[1].sessionId).not.toBe(sessionBefore);
    expect(after.failed).toEqual([]);
    // The first client (default backoff) comes back too.
    await waitForState('a', 'open', 20000);
    expect(await closeClients('a', 'r')).toEqual(['closed', 'closed']);
  }, 40000);

  it('reconnects at once when the browser goes back online, without sitting out the backoff', async () => {
    const slow = { reconnect: { initialDelayMs: 10000, maxDelayMs: 10000, jitter: 0.5 } }; // waits 5–15 s
    await page.evaluate((options) => {
      window.harness.create('net', options);
      window.harness.create('evt', options);
    }, slow);
    await waitForState('net', 'open');
    await waitForState('evt', 'open');

    // 1. The network goes away (Chromium fires `offline`) and the server drops the connection;
    //    it comes back (`online`): the client reconnects without waiting its 5–15 s.
    await context.setOffline(true);
    await stopApp();
    await waitForState('net', 'reconnecting');
    await waitForState('evt', 'reconnecting');
    await startApp(port);
    const onlineBefore = await page.evaluate(() => window.harness.online);
    const wentOnlineAt = await page.evaluate(() => performance.now());
    await context.setOffline(false);
    await page.waitForFunction((n) => window.harness.online > n, onlineBefore, { timeout: WAIT_MS });
    await waitForState('net', 'open', 4000);
    const net = await seen('net');
    const netReady = net.ready[net.ready.length - 1];
    expect(net.reconnecting.at(-1)!.delayMs).toBeGreaterThanOrEqual(5000);
    expect(netReady.at - wentOnlineAt).toBeLessThan(3000);

    // 2. The same with an `online` event dispatched by hand (the other client, still waiting).
    await waitForState('evt', 'open', 4000); // it heard `online` too
    await stopApp();
    await waitForState('evt', 'reconnecting');
    await startApp(port);
    const dispatchedAt = await page.evaluate(() => {
      window.dispatchEvent(new Event('online'));
      return performance.now();
    });
    await waitForState('evt', 'open', 4000);
    const evt = await seen('evt');
    expect(evt.reconnecting.at(-1)!.delayMs).toBeGreaterThanOrEqual(5000);
    expect(evt.ready.at(-1)!.at - dispatchedAt).toBeLessThan(3000);
    expect(evt.failed).toEqual([]);
    expect(await closeClients('net', 'evt')).toEqual(['closed', 'closed']);
  }, 40000);

  it('runs the sample page on the bundle: state, rooms, chat, and $error codes inline', async () => {
    const sample = await context.newPage();
    const errors: string[] = [];
    sample.on('pageerror', (error) => errors.push(error.message));
    try {
      await sample.goto(`${base}/`);
      await sample.waitForSelector('#state[data-state="open"]');
      expect(await sample.textContent('#session')).toMatch(/^[\w-]{8,}$/);
      // A new session starts in the lobby, which is the current room.
      await sample.waitForSelector('#rooms li[data-room="lobby"] .select[aria-current="true"]');
      expect(await sample.textContent('#say-room')).toBe('#lobby');

      await sample.fill('#text', 'hello from the sample page');
      await sample.press('#text', 'Enter');
      await sample.waitForSelector('li.said[data-room="lobby"]:has-text("hello from the sample page")');

      await sample.fill('#text', '');
      await sample.press('#text', 'Enter');
      const error = await sample.waitForSelector('li.error[data-code="VALIDATION_FAILED"]');
      expect(await error.textContent()).toContain('text should not be empty');

      // Join a room: it becomes the current one, and lines go there.
      await sample.fill('#room', 'ui-room');
      await sample.press('#room', 'Enter');
      await sample.waitForSelector('#rooms li[data-room="ui-room"]:not(.pending) .select[aria-current="true"]');
      expect(await sample.textContent('#say-room')).toBe('#ui-room');
      await sample.fill('#text', 'in the ui room');
      await sample.press('#text', 'Enter');
      await sample.waitForSelector('li.said[data-room="ui-room"]:has-text("in the ui room")');

      // A bad room name comes back as VALIDATION_FAILED, and is not listed.
      await sample.fill('#room', 'Bad Room');
      await sample.press('#room', 'Enter');
      const roomError = await sample.waitForSelector('li.error[data-code="VALIDATION_FAILED"]:has-text("join rejected")');
      expect(await roomError.textContent()).toContain('room may contain only a-z, 0-9 and -');
      await sample.waitForSelector('#rooms li[data-room="Bad Room"]', { state: 'detached' });

      // Leave the lobby: the list shows ui-room only.
      await sample.click('#rooms li[data-room="lobby"] .leave');
      await sample.waitForSelector('#rooms li[data-room="lobby"]', { state: 'detached' });
      expect(await sample.$$eval('#rooms li', (items) => items.map((item) => (item as HTMLElement).dataset.room))).toEqual(['ui-room']);

      await sample.fill('#nick', 'chromium');
      await sample.press('#nick', 'Enter');
      await sample.waitForSelector('li.system:has-text("You are now chromium")');
      expect(await sample.textContent('#name')).toBe('chromium');
      expect(await sample.textContent('#queue')).toBe('');

      if (process.env.SAMPLE_SCREENSHOT) await sample.screenshot({ path: process.env.SAMPLE_SCREENSHOT });
      expect(errors).toEqual([]);
    } finally {
      await sample.close();
    }
  });

  it('shares one connection among sample pages opened with ?share=1', async () => {
    const pages = [await context.newPage(), await context.newPage()];
    const errors: string[] = [];
    try {
      for (const page of pages) {
        page.on('pageerror', (error) => errors.push(error.message));
        await page.goto(`${base}/?share=1`);
        await page.waitForSelector('#state[data-state="open"]');
      }
      for (const page of pages) await page.waitForSelector('#tabs:has-text("shared by 2 tabs")');
      expect(await pages[1]!.isChecked('#share')).toBe(true);
      // The second tab asked who it is: same session, same rooms.
      await pages[1]!.waitForSelector('#rooms li[data-room="lobby"]:not(.pending)');
      expect(await pages[1]!.textContent('#session')).toBe(await pages[0]!.textContent('#session'));
      await pages[1]!.fill('#text', 'one connection, two tabs');
      await pages[1]!.press('#text', 'Enter');
      for (const page of pages) await page.waitForSelector('li.said:has-text("one connection, two tabs")');
      await pages[0]!.close();
      await pages[1]!.waitForSelector('#tabs:has-text("shared by 1 tab")');
      expect(errors).toEqual([]);
    } finally {
      for (const page of pages) if (!page.isClosed()) await page.close();
    }
  });

  it('shares a file in the sample page: picked or dropped, shown to the room, downloaded intact with progress', async () => {
    const pages = [await context.newPage(), await context.newPage()];
    const errors: string[] = [];
    try {
      for (const page of pages) {
        page.on('pageerror', (error) => errors.push(error.message));
        await page.goto(`${base}/`);
        await page.waitForSelector('#rooms li[data-room="lobby"]:not(.pending) .select[aria-current="true"]');
      }
      const [ann, ben] = pages as [Page, Page];
      const bytes = randomBytes(1024 * 1024 + 123);
      await ann.setInputFiles('#file', { name: 'photo.bin', mimeType: 'application/octet-stream', buffer: bytes });
      for (const page of pages) await page.waitForSelector('li.file[data-room="lobby"]:has-text("photo.bin (1.0 MiB)")');
      await ann.waitForSelector('li.outgoing', { state: 'detached' });

      await ben.click('li.file button.download:has-text("photo.bin")');
      const link = await ben.waitForSelector('li.file a.save[download="photo.bin"]');
      expect(await ben.$eval('li.file progress', (bar) => [(bar as HTMLProgressElement).value, (bar as HTMLProgressElement).max])).toEqual([bytes.length, bytes.length]);
      const downloaded = await link.evaluate(async (a) => {
        const body = await (await fetch((a as HTMLAnchorElement).href)).arrayBuffer();
        const hash = await crypto.subtle.digest('SHA-256', body);
        return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, '0')).join('');
      });
      expect(downloaded).toBe(createHash('sha256').update(bytes).digest('hex'));

      // Dropped on the messages: the same path as a picked file.
      const dropped = await ben.evaluateHandle(() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(['dropped text'], 'note.txt', { type: 'text/plain' }));
        return transfer;
      });
      await ben.dispatchEvent('#messages', 'drop', { dataTransfer: dropped });
      await ann.waitForSelector('li.file:has-text("note.txt (1 KiB)")');

      // A file the server refuses (its name) comes back as VALIDATION_FAILED, inline.
      await ann.setInputFiles('#file', { name: 'bad\u0001name.txt', mimeType: 'text/plain', buffer: Buffer.from('x') });
      await ann.waitForSelector('li.error[data-code="VALIDATION_FAILED"]:has-text("offer rejected")');
      await ann.waitForSelector('li.outgoing', { state: 'detached' });
      expect(errors).toEqual([]);
    } finally {
      for (const page of pages) await page.close();
    }
  });

  it('resyncs the sample page on a new session: rooms and nick first, then the lines queued meanwhile', async () => {
    const sample = await context.newPage();
    const errors: string[] = [];
    sample.on('pageerror', (error) => errors.push(error.message));
    try {
      await sample.goto(`${base}/`);
      await sample.waitForSelector('#rooms li[data-room="lobby"]');
      const sessionBefore = await sample.textContent('#session');
      await sample.fill('#room', 'resync-room');
      await sample.press('#room', 'Enter');
      await sample.waitForSelector('#rooms li[data-room="resync-room"]:not(.pending) .select[aria-current="true"]');
      await sample.fill('#nick', 'phoenix');
      await sample.press('#nick', 'Enter');
      await sample.waitForSelector('li.system:has-text("You are now phoenix")');

      // The server restarts: a new process knows no sessions. A line typed meanwhile waits.
      await stopApp();
      await sample.waitForSelector('#state[data-state="reconnecting"]');
      await sample.fill('#text', 'typed while away');
      await sample.press('#text', 'Enter');
      expect(await sample.textContent('#queue')).toBe('1 unsent');
      // Shown as pending, in its room, until answered.
      await sample.waitForSelector('li.outgoing[data-room="resync-room"]:has-text("typed while away")');
      await startApp(port);

      await sample.waitForSelector('#state[data-state="open"]', { timeout: 20000 });
      await sample.waitForSelector('li.system:has-text("Reconnected with a new session")');
      expect(await sample.textContent('#session')).not.toBe(sessionBefore);
      // The selected room stays selected through the rejoin.
      expect(await sample.getAttribute('#rooms li[data-room="resync-room"] .select', 'aria-current')).toBe('true');
      // The queued line went to the room after the resync's join (else FORBIDDEN), under the old nick.
      const line = await sample.waitForSelector('li.said[data-room="resync-room"]:has-text("typed while away")');
      expect(await line.textContent()).toContain('phoenix');
      await sample.waitForSelector('#rooms li[data-room="resync-room"]:not(.pending) .select[aria-current="true"]');
      await sample.waitForSelector('li.outgoing', { state: 'detached' });
      expect(await sample.$$eval('li.error', (items) => items.map((item) => item.textContent))).toEqual([]);
      expect(await sample.textContent('#queue')).toBe('');
      // A quiet rejoin: one welcome, one rename, as before the restart.
      const system = await sample.$$eval('li.system', (items) => items.map((item) => item.textContent ?? ''));
      expect(system.filter((text) => text.startsWith('Welcome'))).toHaveLength(1);
      expect(system.filter((text) => text.includes('You are now phoenix'))).toHaveLength(1);
      expect(errors).toEqual([]);
    } finally {
      await sample.close();
    }
  }, 40000);
});
