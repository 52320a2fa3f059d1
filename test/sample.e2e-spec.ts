import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { createSampleApp } from '../sample/app.js';
import { TestClient } from './support/ws-client.js';

describe('sample chat app', () => {
  let app: INestApplication;
  let base: string;
  const clients: TestClient[] = [];

  const connect = async (): Promise<TestClient> => {
    const client = new TestClient(`${base.replace('http', 'ws')}/ws`, 'rws.v1');
    clients.push(client);
    await client.open();
    client.send({ event: '$hello', data: {} });
    await client.next((frame) => frame.event === '$ready');
    return client;
  };

  beforeAll(async () => {
    app = await createSampleApp({ logger: false });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const client of clients) client.terminate();
    await app?.close();
  });

  it('serves the page and its script', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<title>Reliable WS chat</title>');

    const script = await fetch(`${base}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    // The page runs on the library's client, imported as an ES module from the browser bundle.
    expect(await script.text()).toContain("from '/client/reliable-ws-client.js'");

    const bundle = await fetch(`${base}/client/reliable-ws-client.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    const bundleText = await bundle.text();
    expect(bundleText).toMatch(/export\s*\{[^}]*\bReliableWsClient\b/);
    expect(bundleText).not.toMatch(/^\s*(import|export .* from)\b/m); // self-contained: no imports left
    expect((await fetch(`${base}/client/nothing-here.js`)).status).toBe(404);

    const style = await fetch(`${base}/style.css`);
    expect(style.headers.get('content-type')).toMatch(/^text\/css/);

    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
  });

  it('lets two clients chat', async () => {
    const alice = await connect();
    const aliceWelcome = await alice.next((frame) => frame.event === 'welcome');
    expect(aliceWelcome.data).toMatchObject({ online: 1 });
    expect(typeof aliceWelcome.data.sessionId).toBe('string');

    const bob = await connect();
    expect((await bob.next((frame) => frame.event === 'welcome')).data).toMatchObject({ online: 2 });
    expect((await alice.next((frame) => frame.event === 'joined')).data).toMatchObject({ online: 2 });

    expect(await alice.request('nick', { name: 'alice' }, 1)).toEqual({
      event: 'nick',
      data: { ok: true, name: 'alice' },
      ref: 1,
    });
    expect((await bob.next((frame) => frame.event === 'renamed')).data).toEqual({
      from: aliceWelcome.data.name,
      to: 'alice',
    });

    expect(await alice.request('say', { text: 'hello bob' }, 2)).toEqual({ event: 'say', data: { ok: true }, ref: 2 });
    for (const client of [alice, bob]) {
      const said = await client.next((frame) => frame.event === 'said');
      expect(said.data).toEqual({ from: 'alice', text: 'hello bob', at: expect.any(String) });
      expect(typeof said.seq).toBe('number');
      expect(Number.isNaN(Date.parse(said.data.at))).toBe(false);
    }

    bob.close();
    expect((await alice.next((frame) => frame.event === 'left')).data).toMatchObject({ online: 1 });
  });

  it('answers an invalid say with VALIDATION_FAILED and its details', async () => {
    const client = await connect();

    const empty = await client.request('say', { text: '' }, 1);
    expect(empty.event).toBe('$error');
    expect(empty.data).toMatchObject({ code: 'VALIDATION_FAILED', ref: 1 });
    expect(empty.data.details).toEqual([
      { property: 'text', constraints: { isNotEmpty: 'text should not be empty' } },
    ]);

    const extra = await client.request('say', { text: 'hi', admin: true }, 2);
    expect(extra.data).toMatchObject({ code: 'VALIDATION_FAILED', ref: 2 });
    expect(extra.data.details).toEqual([
      { property: 'admin', constraints: { whitelistValidation: 'property admin should not exist' } },
    ]);

    const tooLong = await client.request('say', { text: 'x'.repeat(501) }, 3);
    expect(tooLong.data).toMatchObject({ code: 'VALIDATION_FAILED', ref: 3 });

    expect((await client.request('nick', { name: 42 }, 4)).data).toMatchObject({ code: 'VALIDATION_FAILED', ref: 4 });

    // Nothing was broadcast, and the connection is still usable.
    expect(client.frames.filter((frame) => frame.event === 'said')).toEqual([]);
    expect(await client.request('say', { text: 'still here' }, 5)).toEqual({ event: 'say', data: { ok: true }, ref: 5 });
  });

  it('serves the health endpoint', async () => {
    const health = await fetch(`${base}/health/ws`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', connections: expect.any(Number) });
  });
});
