/**
 * Binary messages and chunked transfers in real headless Chromium, on the browser bundle
 * (dist/browser/reliable-ws-client.js) and the SharedWorker bundle: a page served by the app
 * imports the client, and its WebSockets go through a TCP proxy that cuts them at random
 * (test/support/chaos-proxy.ts) or holds pushes back (test/support/tcp-proxy.ts). The page makes
 * its own random bytes and hashes what it gets with crypto.subtle; the gateway hashes what its
 * handler got. Every wait is bounded.
 */
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { createHash, randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { BroadcastService, ReliableGateway, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { MiB, TRANSFER_OPTIONS } from './support/transfer-options.js';
import { startApp, type TestApp } from './support/app.js';
import { ChaosProxy } from './support/chaos-proxy.js';
import { ensureBrowserBundles, launchChromium, testPageController } from './support/chromium.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';

const WAIT_MS = 30_000;
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** What every `file` handler run got. */
const uploads: Array<{ size: number; hash: string }> = [];
const sockets = new Map<string, ReliableSocket>();

@ReliableGateway({ path: '/ws' })
class TransferGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  handleConnection(socket: ReliableSocket): void {
    sockets.set(socket.id, socket);
  }

  @SubscribeMessage('file')
  file(@MessageBody() data: Buffer): { size: number; hash: string } {
    const received = { size: data.length, hash: sha(data) };
    uploads.push(received);
    return received;
  }

  @SubscribeMessage('note')
  note(@MessageBody() n: number): number {
    return n;
  }

  /** Streams `size` random bytes to the caller as `file`; answers their hash at once. */
  @SubscribeMessage('download')
  download(@MessageBody() size: number, @ConnectedSocket() socket: ReliableSocket): string {
    const bytes = randomBytes(size);
    socket.stream('file', bytes).catch(() => undefined);
    return sha(bytes);
  }

  @SubscribeMessage('join')
  async join(@MessageBody() room: string, @ConnectedSocket() socket: ReliableSocket): Promise<void> {
    await this.broadcast.join(socket.id, room);
  }
}

/** The test page: one or more clients, each recording what it heard; helpers for bytes and hashes. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>transfer test</title>
<script type="module">
  import * as rws from '/client/reliable-ws-client.js';
  const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
  const sha = async (bytes) => hex(await crypto.subtle.digest('SHA-256', bytes));
  const clients = {};
  window.page = {
    clients,
    open(name, port, options = {}) {
      const client = new rws.ReliableWsClient('ws://127.0.0.1:' + port + '/ws', {
        reconnect: { initialDelayMs: 10, maxDelayMs: 100, maxRetries: 1000 },
        heartbeat: { intervalMs: 500, timeoutMs: 2000 },
        ...options,
      });
      const seen = { ready: [], closes: [], errors: [], down: [], files: [], bin: [], heard: [] };
      client.on('$ready', ({ resumed, missed }) => seen.ready.push({ resumed, missed }));
      client.on('$close', ({ code }) => seen.closes.push(code));
      client.on('$error', ({ code }) => seen.errors.push(code));
      client.on('$progress', (p) => {
        if (p.direction === 'down') seen.down.push(p.received);
      });
      client.on('file', async (bytes) => seen.files.push({ size: bytes.byteLength, hash: await sha(bytes) }));
      client.on('bin', (bytes) => seen.bin.push(hex(bytes)));
      client.on('heard', async (bytes) => seen.heard.push({ size: bytes.byteLength, hash: await sha(bytes) }));
      clients[name] = { client, seen };
    },
    /** Random bytes (getRandomValues fills at most 64 KiB at a time). */
    random(size) {
      const bytes = new Uint8Array(size);
      for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
      return bytes;
    },
    /** Uploads \`size\` random bytes, recording the progress. */
    async upload(name, size) {
      const bytes = this.random(size);
      const hash = await sha(bytes);
      const progress = [];
      const onProgress = (sent, total) => progress.push({ sent, total });
      try {
        const reply = await clients[name].client.upload('file', bytes, { onProgress });
        return { hash, reply, progress };
      } catch (error) {
        return { hash, error: { code: error.code, isRequestError: error instanceof rws.RequestError }, progress };
      }
    },
  };
</script></head><body>transfer test</body></html>`;

const PageController = testPageController('transfer.html', PAGE);

interface Seen {
  ready: Array<{ resumed: boolean; missed: boolean }>;
  closes: number[];
  errors: string[];
  down: number[];
  files: Array<{ size: number; hash: string }>;
  bin: string[];
  heard: Array<{ size: number; hash: string }>;
}

interface UploadOutcome {
  hash: string;
  reply?: { size: number; hash: string };
  error?: { code: string; isRequestError: boolean };
  progress: Array<{ sent: number; total: number }>;
}

declare global {
  interface Window {
    page: {
      clients: Record<string, { client: any; seen: Seen }>;
      open(name: string, port: number, options?: unknown): void;
      upload(name: string, size: number): Promise<UploadOutcome>;
    };
  }
}

/** Uploads fit (5 MiB, and a 5 MiB stream beside); 7 MiB does not. */
const OPTIONS: ReliableWsOptions = { ...TRANSFER_OPTIONS, maxTransferBytes: 6 * MiB };

function expectMonotonic(values: number[], last: number): void {
  expect(values.at(-1)).toBe(last);
  for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]);
}

describe('binary messages and chunked transfers in Chromium', () => {
  let app: TestApp;
  let chaos: ChaosProxy;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    ensureBrowserBundles();
    app = await startApp(OPTIONS, [TransferGateway], { controllers: [PageController] });
    chaos = await ChaosProxy.start(app.port);
    browser = await launchChromium();
  }, 60_000);

  beforeEach(async () => {
    context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
  });

  afterEach(async () => {
    chaos.stopChaos();
    await context.close().catch(() => undefined);
    uploads.length = 0;
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await chaos?.close();
    await app?.close();
  });

  async function openPage(): Promise<Page> {
    const page = await context.newPage();
    await page.goto(app.httpUrl('/transfer.html'));
    await page.waitForFunction(() => window.page !== undefined);
    return page;
  }

  async function openClient(page: Page, name: string, port: number, options: unknown = {}): Promise<void> {
    await page.evaluate(([n, p, o]) => window.page.open(n, p, o), [name, port, options] as const);
    await page.waitForFunction((n) => window.page.clients[n].client.state === 'open', name);
  }

  const seen = (page: Page, name: string): Promise<Seen> =>
    page.evaluate((n) => JSON.parse(JSON.stringify(window.page.clients[n].seen)) as Seen, name);

  it('uploads 5 MiB through random cuts: every byte once to the handler, progress monotonic', async () => {
    const page = await openPage();
    await openClient(page, 'up', chaos.port);
    // Four cuts the upload cannot outrun (by bytes through the proxy, each a megabyte or more after the one before), and more at random.
    chaos.cutAfterBytes('up', [1, 2.25, 3.5, 4.5].map((n) => n * MiB));
    chaos.startChaos(40, 200);
    const outcome = await within(
      page.evaluate(() => window.page.upload('up', 5 * 1024 * 1024)),
      WAIT_MS,
      'the upload',
    );
    chaos.stopChaos();
    expect(outcome.error).toBeUndefined();
    expect(outcome.reply).toEqual({ size: 5 * MiB, hash: outcome.hash });
    expect(uploads).toEqual([{ size: 5 * MiB, hash: outcome.hash }]);
    expect(outcome.progress.every(({ total }) => total === 5 * MiB)).toBe(true);
    expectMonotonic(
      outcome.progress.map(({ sent }) => sent),
      5 * MiB,
    );
    const ready = (await seen(page, 'up')).ready;
    expect(ready.filter((r) => r.resumed).length).toBeGreaterThanOrEqual(4);
    expect(ready.some((r) => r.missed)).toBe(false);
    await sleep(200);
    expect(uploads).toHaveLength(1);
  }, 60_000);

  it('an over-budget upload fails with PAYLOAD_TOO_LARGE; the page’s other messages still work', async () => {
    const page = await openPage();
    await openClient(page, 'big', app.port);
    const outcome = await page.evaluate(async () => {
      const { client } = window.page.clients.big;
      const before = client.request('note', 1);
      const upload = window.page.upload('big', 7 * 1024 * 1024);
      const during = client.request('note', 2);
      return { before: await before, upload: await upload, during: await during, after: await client.request('note', 3) };
    });
    expect(outcome.upload.error).toEqual({ code: 'PAYLOAD_TOO_LARGE', isRequestError: true });
    expect(outcome.upload.progress).toEqual([]);
    expect([outcome.before, outcome.during, outcome.after]).toEqual([1, 2, 3]);
    expect(uploads).toEqual([]);
    const { closes, errors } = await seen(page, 'big');
    expect(closes).toEqual([]);
    expect(errors).toEqual([]);
    // The refused budget was never held: an upload that fits goes through on the same connection.
    const fits = await page.evaluate(() => window.page.upload('big', 1024 * 1024));
    expect(fits.reply).toEqual({ size: MiB, hash: fits.hash });
  });

  it('a binary push held back when the connection drops is replayed once after the resume', async () => {
    const proxy = await TcpProxy.start(app.port);
    try {
      const page = await openPage();
      await openClient(page, 'push', proxy.port);
      const sessionId = await page.evaluate(() => window.page.clients.push.client.sessionId as string);
      const socket = sockets.get(sessionId)!;
      socket.send('bin', Buffer.from([1, 2]));
      await page.waitForFunction(() => window.page.clients.push.seen.bin.length === 1);
      proxy.stall('down'); // what the server sends now never reaches this connection
      const held = randomBytes(20_000);
      socket.send('bin', held);
      await waitUntil(() => proxy.heldDownBytes >= held.length, { what: 'the push to be held back' });
      proxy.cutAll();
      proxy.resume();
      await page.waitForFunction(() => window.page.clients.push.seen.bin.length === 2);
      await sleep(200);
      const { bin, ready } = await seen(page, 'push');
      expect(bin).toEqual(['0102', held.toString('hex')]);
      expect(ready).toEqual([
        { resumed: false, missed: false },
        { resumed: true, missed: false },
      ]);
    } finally {
      await proxy.close();
    }
  });

  it('a 5 MiB stream from the server reaches the tab intact through random cuts', async () => {
    const page = await openPage();
    await openClient(page, 'down', chaos.port);
    chaos.cutAfterBytes('down', [1.25, 2.5, 3.75].map((n) => n * MiB));
    const hash = await page.evaluate(() => window.page.clients.down.client.request('download', 5 * 1024 * 1024) as Promise<string>);
    chaos.startChaos(40, 200);
    await page.waitForFunction(() => window.page.clients.down.seen.files.length === 1);
    chaos.stopChaos();
    const { files, down, ready } = await seen(page, 'down');
    expect(files).toEqual([{ size: 5 * MiB, hash }]);
    expectMonotonic(down, 5 * MiB);
    expect(ready.filter((r) => r.resumed).length).toBeGreaterThanOrEqual(3);
    expect(ready.some((r) => r.missed)).toBe(false);
    await sleep(200);
    expect((await seen(page, 'down')).files).toHaveLength(1);
  }, 60_000);

  it('binary broadcasts (header and shared payload as two fragments) reach every member intact', async () => {
    const page = await openPage();
    const members = ['m1', 'm2', 'm3'];
    for (const name of members) {
      await openClient(page, name, app.port);
      await page.evaluate((n) => window.page.clients[n].client.request('join', 'fans'), name);
    }
    const payloads = [0, 1, 1000, 30_000].map((size) => randomBytes(size));
    for (const payload of payloads) await app.app.get(BroadcastService).toRoom('fans', 'heard', payload);
    const expected = payloads.map((payload) => ({ size: payload.length, hash: sha(payload) }));
    for (const name of members) {
      await page.waitForFunction((n) => window.page.clients[n].seen.heard.length === 4, name);
      expect((await seen(page, name)).heard).toEqual(expected);
    }
  });

  it('through the SharedWorker: the uploading tab gets its progress and reply; a stream reaches both tabs', async () => {
    const share = { share: { workerUrl: '/client/reliable-ws-shared-worker.js' } };
    const tabs = [await openPage(), await openPage()];
    for (const tab of tabs) await openClient(tab, 'shared', chaos.port, share);
    const sessionIds = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.page.clients.shared.client.sessionId)));
    expect(new Set(sessionIds).size).toBe(1);

    // Cut by the proxy at byte counts: a cut the page would ask for, through the worker, the tab
    // and Playwright, could land after the transfer has ended.
    chaos.cutAfterBytes('up', [1.5 * MiB, 3 * MiB]);
    const outcome = await within(
      tabs[0]!.evaluate(() => window.page.upload('shared', 5 * 1024 * 1024)),
      WAIT_MS,
      'the upload',
    );
    expect(outcome.reply).toEqual({ size: 5 * MiB, hash: outcome.hash });
    expect(uploads).toEqual([{ size: 5 * MiB, hash: outcome.hash }]);
    expectMonotonic(
      outcome.progress.map(({ sent }) => sent),
      5 * MiB,
    );
    expect((await seen(tabs[0]!, 'shared')).ready.filter((r) => r.resumed).length).toBeGreaterThanOrEqual(2);

    const resumedBefore = (await seen(tabs[1]!, 'shared')).ready.filter((r) => r.resumed).length;
    chaos.cutAfterBytes('down', [2.5 * MiB]);
    const hash = await tabs[1]!.evaluate(() => window.page.clients.shared.client.request('download', 5 * 1024 * 1024) as Promise<string>);
    for (const tab of tabs) {
      await tab.waitForFunction(() => window.page.clients.shared.seen.files.length === 1);
      const { files, down } = await seen(tab, 'shared');
      expect(files).toEqual([{ size: 5 * MiB, hash }]);
      expectMonotonic(down, 5 * MiB);
    }
    expect((await seen(tabs[1]!, 'shared')).ready.filter((r) => r.resumed).length).toBeGreaterThan(resumedBefore);
  }, 60_000);
});
