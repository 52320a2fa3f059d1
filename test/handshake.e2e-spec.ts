import { Body, Controller, Get, Post } from '@nestjs/common';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { ReliableGateway, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { getHealth } from './support/health.js';
import { waitUntil } from './support/wait.js';
import { TestClient, upgradeStatus } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }

  @SubscribeMessage('push')
  push(@ConnectedSocket() socket: ReliableSocket) {
    socket.send('pushed', 'a');
    socket.send('pushed', 'b');
  }
}

const EVIL = 'https://evil.example';
const SESSION_ID = /^[A-Za-z0-9_-]{22,}$/;

/** Runs `body` against a fresh app with the given options, closing it afterwards. */
async function withApp(options: ReliableWsOptions, body: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await startApp(options, [EchoGateway]);
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

/** An app still serves a well-behaved client after whatever a test did to it. */
async function expectWorking(t: TestApp): Promise<void> {
  const c = await TestClient.ready(t.wsUrl('/ws'));
  expect(await c.request('echo', 'still here', 'check')).toEqual({ event: 'echo', data: 'still here', ref: 'check' });
  c.close();
}

describe('handshake: Origin validation', () => {
  it('same-origin by default: accepts an Origin matching Host and requests without Origin, refuses others with 403', async () => {
    await withApp({}, async (t) => {
      const self = `http://127.0.0.1:${t.port}`;
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: self })).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(403);
      // Same host, other port or scheme is another origin.
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: `http://127.0.0.1:${t.port + 1}` })).toBe(403);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: `https://localhost:${t.port}` })).toBe(403);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: 'null' })).toBe(403);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: 'not a url' })).toBe(403);
    });
  });

  it('a refused Origin gets no WebSocket: the 403 is a plain HTTP answer and the app keeps working', async () => {
    await withApp({}, async (t) => {
      const c = new TestClient(t.wsUrl('/ws'), undefined, { origin: EVIL });
      await expect(c.open()).rejects.toThrow('HTTP 403');
      expect(await getHealth(t.httpUrl('/health/ws'))).toEqual({ status: 200, body: { status: 'ok', connections: 0 } });
      await expectWorking(t);
    });
  });

  it('requireOrigin: true refuses a missing Origin with 403 but still accepts the same origin', async () => {
    await withApp({ requireOrigin: true }, async (t) => {
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(403);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: `http://127.0.0.1:${t.port}` })).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(403);
    });
  });

  it("allowedOrigins: '*' accepts any Origin", async () => {
    await withApp({ allowedOrigins: '*' }, async (t) => {
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: 'null' })).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(101);
    });
  });

  it('allowedOrigins as an array of exact origins and RegExps', async () => {
    await withApp({ allowedOrigins: ['https://app.example', /^https:\/\/[a-z]+\.trusted\.example$/] }, async (t) => {
      const status = (origin: string) => upgradeStatus(t.wsUrl('/ws'), { origin });
      expect(await status('https://app.example')).toBe(101);
      expect(await status('https://a.trusted.example')).toBe(101);
      expect(await status('https://b.trusted.example')).toBe(101);
      expect(await status('http://app.example')).toBe(403);
      expect(await status('https://app.example:8443')).toBe(403);
      expect(await status('https://app.example.evil.example')).toBe(403);
      expect(await status('https://trusted.example')).toBe(403);
      expect(await status('https://a.trusted.example.evil.example')).toBe(403);
      expect(await status(EVIL)).toBe(403);
      // The same origin is not implied once an explicit list is given.
      expect(await status(`http://127.0.0.1:${t.port}`)).toBe(403);
      // No Origin (non-browser client) is still allowed.
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(101);
    });
  });

  it('allowedOrigins as a function gets the origin and the upgrade request', async () => {
    const calls: Array<{ origin: string; url: string | undefined; marker: unknown }> = [];
    const check = (origin: string, req: IncomingMessage): boolean => {
      calls.push({ origin, url: req.url, marker: req.headers['x-marker'] });
      return origin === 'https://fn.example';
    };
    await withApp({ allowedOrigins: check }, async (t) => {
      expect(await upgradeStatus(t.wsUrl('/ws?x=1'), { origin: 'https://fn.example', headers: { 'X-Marker': 'm1' } })).toBe(
        101,
      );
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(403);
      expect(calls).toEqual([
        { origin: 'https://fn.example', url: '/ws?x=1', marker: 'm1' },
        { origin: EVIL, url: '/ws', marker: undefined },
      ]);
    });
  });

  it('a throwing origin function refuses with 403 and the app keeps working', async () => {
    const check = (origin: string): boolean => {
      if (origin === EVIL) throw new Error('origin check exploded');
      return true;
    };
    await withApp({ allowedOrigins: check }, async (t) => {
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(403);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(403);
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: 'https://fine.example' })).toBe(101);
      await expectWorking(t);
    });
  });

  it('a function returning a truthy non-boolean does not let the request through', async () => {
    const check = ((): unknown => 'yes') as unknown as (origin: string) => boolean;
    await withApp({ allowedOrigins: check }, async (t) => {
      expect(await upgradeStatus(t.wsUrl('/ws'), { origin: EVIL })).toBe(403);
    });
  });
});

describe('handshake: per-IP connection cap', () => {
  it('maxConnectionsPerIp: 3 refuses the 4th upgrade with 429 and releases the slot when one closes', async () => {
    await withApp({ maxConnectionsPerIp: 3 }, async (t) => {
      const clients = [
        await TestClient.ready(t.wsUrl('/ws')),
        await TestClient.ready(t.wsUrl('/ws')),
        await TestClient.ready(t.wsUrl('/ws')),
      ];
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(429);
      // Refusals do not leak slots either way.
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(429);

      clients[0].close();
      expect((await clients[0].closed()).code).toBe(1000);
      const fourth = await waitUntil(
        async () => {
          const c = new TestClient(t.wsUrl('/ws'));
          try {
            await c.open();
            return c;
          } catch {
            return undefined;
          }
        }, { timeoutMs: 3000, what: 'a freed slot' });
      await fourth.next((f) => f.event === '$ready');
      expect(await fourth.request('echo', 4, 1)).toEqual({ event: 'echo', data: 4, ref: 1 });
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(429);

      // A connection that just drops (no close handshake) also gives its slot back.
      clients[1].terminate();
      await waitUntil(async () => (await upgradeStatus(t.wsUrl('/ws'))) === 101, { timeoutMs: 3000, what: 'the dropped slot' });
      clients[2].close();
      fourth.close();
    });
  });

  it('without trustProxy, X-Forwarded-For is ignored and cannot be used to dodge the cap', async () => {
    await withApp({ maxConnectionsPerIp: 2 }, async (t) => {
      const a = await TestClient.ready(t.wsUrl('/ws'), undefined, { headers: { 'X-Forwarded-For': '10.0.0.1' } });
      const b = await TestClient.ready(t.wsUrl('/ws'), undefined, { headers: { 'X-Forwarded-For': '10.0.0.2' } });
      expect(await upgradeStatus(t.wsUrl('/ws'), { headers: { 'X-Forwarded-For': '10.0.0.3' } })).toBe(429);
      a.close();
      b.close();
    });
  });

  it('trustProxy: 1 counts the cap per forwarded IP', async () => {
    await withApp({ maxConnectionsPerIp: 3, trustProxy: 1 }, async (t) => {
      const from = (ip: string) => ({ headers: { 'X-Forwarded-For': ip } });
      const open: TestClient[] = [];
      for (const ip of ['10.0.0.1', '10.0.0.2']) {
        for (let i = 0; i < 3; i++) open.push(await TestClient.ready(t.wsUrl('/ws'), undefined, from(ip)));
      }
      expect(open).toHaveLength(6);
      expect(await upgradeStatus(t.wsUrl('/ws'), from('10.0.0.1'))).toBe(429);
      expect(await upgradeStatus(t.wsUrl('/ws'), from('10.0.0.2'))).toBe(429);
      // With one trusted hop, only the rightmost entry counts: a client cannot spoof its way around.
      expect(await upgradeStatus(t.wsUrl('/ws'), from('192.168.7.7, 10.0.0.1'))).toBe(429);
      // A third forwarded address has its own budget; so does the proxy itself (no header).
      expect(await upgradeStatus(t.wsUrl('/ws'), from('10.0.0.3'))).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(101);

      open[0].close();
      await waitUntil(async () => (await upgradeStatus(t.wsUrl('/ws'), from('10.0.0.1'))) === 101, { timeoutMs: 3000, what: 'a freed slot' });
      expect(await upgradeStatus(t.wsUrl('/ws'), from('10.0.0.2'))).toBe(429);
      for (const c of open) c.close();
    });
  });
});

describe('handshake: paths and payload size', () => {
  it('an unknown path gets 404; the gateway path matches with a query string and with a trailing slash', async () => {
    await withApp({}, async (t) => {
      expect(await upgradeStatus(t.wsUrl('/nope'))).toBe(404);
      expect(await upgradeStatus(t.wsUrl('/'))).toBe(404);
      expect(await upgradeStatus(t.wsUrl('/ws/deeper'))).toBe(404);
      expect(await upgradeStatus(t.wsUrl('/wsx'))).toBe(404);
      expect(await upgradeStatus(t.wsUrl('/ws?token=abc'))).toBe(101);
      // declared as '/ws', as '/ws/' would be too: one gateway path, with or without the slash
      expect(await upgradeStatus(t.wsUrl('/ws/'))).toBe(101);
      expect(await upgradeStatus(t.wsUrl('/ws/?token=abc'))).toBe(101);
    });
  });

  it('maxPayloadBytes: 1024 accepts 1000 and exactly 1024 bytes, closes a 2000-byte frame with 1009', async () => {
    await withApp({ maxPayloadBytes: 1024 }, async (t) => {
      const frameOf = (bytes: number, id: number): string => {
        const head = JSON.stringify({ event: 'echo', id, data: '' });
        const frame = JSON.stringify({ event: 'echo', id, data: 'x'.repeat(bytes - head.length) });
        expect(Buffer.byteLength(frame)).toBe(bytes);
        return frame;
      };
      const c = await TestClient.ready(t.wsUrl('/ws'));
      c.send(frameOf(1000, 1));
      expect(await c.next((f) => f.ref === 1)).toMatchObject({ event: 'echo', ref: 1 });
      c.send(frameOf(1024, 2));
      expect(await c.next((f) => f.ref === 2)).toMatchObject({ event: 'echo', ref: 2 });
      c.send(frameOf(2000, 3));
      expect((await c.closed()).code).toBe(1009);
      expect(c.frames.filter((f) => f.ref === 3)).toEqual([]);

      const d = await TestClient.ready(t.wsUrl('/ws'));
      d.send(frameOf(1025, 4));
      expect((await d.closed()).code).toBe(1009);
      await expectWorking(t);
    });
  });
});

describe('handshake: subprotocol and $hello / $ready', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ heartbeat: { intervalMs: 12345 } }, [EchoGateway]);
  });
  afterAll(() => t.close());

  it('an rws.v1 client negotiates the subprotocol and gets $ready only after $hello', async () => {
    const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
    await c.open();
    expect(c.raw.protocol).toBe('rws.v1');
    // $ping is answered before $hello; had $ready been sent at open, it would precede the $pong.
    c.send({ event: '$ping', data: { n: 1 } });
    expect(await c.next()).toEqual({ event: '$pong', data: { n: 1 } });
    expect(c.frames).toEqual([]);

    c.send({ event: '$hello', data: {} });
    const ready = await c.next();
    expect(ready.event).toBe('$ready');
    expect(ready).not.toHaveProperty('seq');
    expect(ready).not.toHaveProperty('ref');
    expect(ready.data).toEqual({
      sessionId: expect.stringMatching(SESSION_ID),
      resumeToken: expect.stringMatching(SESSION_ID),
      resumed: false,
      missed: false,
      lastId: 0,
      heartbeatMs: 12345,
      maxPayloadBytes: 65536,
    });
    expect(ready.data.resumeToken).not.toBe(ready.data.sessionId);
    expect(await c.request('echo', 'hi', 1)).toEqual({ event: 'echo', data: 'hi', ref: 1 });
    c.close();
  });

  it('an application message before $hello closes the connection with 4001', async () => {
    const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
    await c.open();
    c.send({ event: 'echo', data: 'too early', id: 1 });
    expect((await c.closed()).code).toBe(4001);
    expect(c.frames.filter((f) => f.event === 'echo' || f.event === '$ready')).toEqual([]);
  });

  it('an rws.v1 client that never sends $hello is closed with 4008 after the default 5 s ($ping does not extend it)', async () => {
    const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
    await c.open();
    const openedAt = Date.now();
    c.send({ event: '$ping', data: 1 });
    expect(await c.next()).toEqual({ event: '$pong', data: 1 });
    const closed = await c.closed(8000);
    const after = Date.now() - openedAt;
    expect(closed.code).toBe(4008);
    expect(after).toBeGreaterThanOrEqual(4500);
    expect(after).toBeLessThan(7000);
    expect(c.frames.filter((f) => f.event === '$ready')).toEqual([]);
  }, 10_000);

  it('an rws.v1 client offered among other subprotocols still gets rws.v1', async () => {
    const c = new TestClient(t.wsUrl('/ws'), ['chat.other', 'rws.v1']);
    await c.open();
    expect(c.raw.protocol).toBe('rws.v1');
    c.send({ event: '$hello', data: {} });
    expect((await c.next()).event).toBe('$ready');
    c.close();
  });

  it('a plain client gets $ready at once, with a fresh session', async () => {
    const c = new TestClient(t.wsUrl('/ws'));
    await c.open();
    expect(c.raw.protocol).toBe('');
    const ready = await c.next();
    expect(ready).toEqual({
      event: '$ready',
      data: {
        sessionId: expect.stringMatching(SESSION_ID),
        resumeToken: expect.stringMatching(SESSION_ID),
        resumed: false,
        missed: false,
        lastId: 0,
        heartbeatMs: 12345,
        maxPayloadBytes: 65536,
      },
    });
    c.close();
  });

  it('two sessions get different ids and tokens', async () => {
    const a = new TestClient(t.wsUrl('/ws'));
    const b = new TestClient(t.wsUrl('/ws'), 'rws.v1');
    await b.open();
    b.send({ event: '$hello', data: {} });
    const ra = (await a.next((f) => f.event === '$ready')).data;
    const rb = (await b.next((f) => f.event === '$ready')).data;
    const secrets = [ra.sessionId, ra.resumeToken, rb.sessionId, rb.resumeToken];
    expect(new Set(secrets).size).toBe(4);
    for (const s of secrets) expect(Buffer.from(s, 'base64url').length).toBeGreaterThanOrEqual(16);
    a.close();
    b.close();
  });

  it('pushes are sequenced per session (seq 1, 2, …) while replies are not', async () => {
    const c = await TestClient.ready(t.wsUrl('/ws'));
    c.send({ event: 'push', id: 1 });
    expect(await c.next((f) => f.event === '$ack')).toEqual({ event: '$ack', data: { ref: 1 } });
    expect(await c.next((f) => f.event === 'pushed')).toEqual({ event: 'pushed', data: 'a', seq: 1 });
    expect(await c.next((f) => f.event === 'pushed')).toEqual({ event: 'pushed', data: 'b', seq: 2 });
    c.close();
  });

  it('$hello twice is answered with $error BAD_MESSAGE and the connection stays usable', async () => {
    const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
    await c.open();
    c.send({ event: '$hello', data: {} });
    const ready = await c.next((f) => f.event === '$ready');
    c.send({ event: '$hello', data: {}, id: 7 });
    const error = await c.next((f) => f.event === '$error');
    expect(error.data).toMatchObject({ code: 'BAD_MESSAGE', ref: 7 });
    expect(typeof error.data.message).toBe('string');
    // The session did not change.
    expect(c.frames.filter((f) => f.event === '$ready')).toEqual([]);
    expect(await c.request('echo', ready.data.sessionId, 8)).toEqual({ event: 'echo', data: ready.data.sessionId, ref: 8 });
    // A plain client that already has its session gets the same answer.
    const p = await TestClient.ready(t.wsUrl('/ws'));
    p.send({ event: '$hello', data: {} });
    expect((await p.next((f) => f.event === '$error')).data.code).toBe('BAD_MESSAGE');
    expect(await p.request('echo', 1, 1)).toEqual({ event: 'echo', data: 1, ref: 1 });
    c.close();
    p.close();
  });
});

describe('handshake: resume: false', () => {
  it('$ready has no resumeToken and pushes carry no seq', async () => {
    await withApp({ resume: false }, async (t) => {
      const c = new TestClient(t.wsUrl('/ws'));
      const ready = await c.next((f) => f.event === '$ready');
      expect(ready.data).toEqual({
        sessionId: expect.stringMatching(SESSION_ID),
        resumed: false,
        missed: false,
        lastId: 0,
        heartbeatMs: 30000,
        maxPayloadBytes: 65536,
      });
      expect(ready.data).not.toHaveProperty('resumeToken');
      c.send({ event: 'push', id: 1 });
      expect(await c.next((f) => f.event === 'pushed')).toEqual({ event: 'pushed', data: 'a' });
      expect(await c.next((f) => f.event === 'pushed')).toEqual({ event: 'pushed', data: 'b' });

      const v1 = new TestClient(t.wsUrl('/ws'), 'rws.v1');
      await v1.open();
      v1.send({ event: '$hello', data: {} });
      const ready1 = await v1.next((f) => f.event === '$ready');
      expect(ready1.data).not.toHaveProperty('resumeToken');
      expect(ready1.data.sessionId).not.toBe(ready.data.sessionId);
      c.close();
      v1.close();
    });
  });
});

@Controller('api')
class HelloController {
  @Get('hello')
  hello() {
    return { hello: 'world' };
  }

  @Post('echo')
  echo(@Body() body: unknown) {
    return { echoed: body };
  }
}

/** A plain HTTP GET with the given headers: its status and body (or "upgraded"). */
function httpGet(url: string, headers: Record<string, string>): Promise<string> {
  return httpPost(url, headers, undefined);
}

/** A plain HTTP request (POST when it has a JSON body) with the given headers: its status and body (or "upgraded"). */
function httpPost(url: string, headers: Record<string, string>, body: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const method = body === undefined ? 'GET' : 'POST';
    const json = body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) };
    const request = httpRequest(url, { method, headers: { ...headers, ...json } });
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(`${response.statusCode} ${body.trim()}`));
    });
    request.on('upgrade', (response) => resolve(`upgraded ${response.statusCode}`));
    request.on('error', reject);
    request.setTimeout(5000, () => request.destroy(new Error(`no answer from ${url}`)));
    request.end(body);
  });
}

describe('handshake: an HTTP request that offers another protocol than WebSocket', () => {
  // curl --http2 on http:// and Java's HttpClient offer h2c this way; HTTP/1.1 servers answer normally
  const H2C = { Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' };

  it("is the application's: its routes and the health endpoint answer as HTTP/1.1, on any path", async () => {
    const t = await startApp({}, [EchoGateway], { controllers: [HelloController] });
    try {
      expect(await httpGet(t.httpUrl('/api/hello'), H2C)).toBe('200 {"hello":"world"}');
      expect(await httpGet(t.httpUrl('/health/ws'), H2C)).toMatch(/^200 \{"status":"ok"/);
      expect(await httpGet(t.httpUrl('/ws'), H2C)).toMatch(/^404 /); // no HTTP route there
      // one that offers WebSocket is a handshake, answered as one
      expect(await httpGet(t.httpUrl('/api/hello'), { Connection: 'Upgrade', Upgrade: 'h2c, WebSocket' })).toBe('404 no WebSocket endpoint at this path');
      expect(await httpPost(t.httpUrl('/api/echo'), H2C, JSON.stringify({ n: 1 }))).toBe('201 {"echoed":{"n":1}}');
      await expectWorking(t);
    } finally {
      await t.close();
    }
  });

  it('keeps its connection: a chunked body, then the next request on the same socket, are both answered', async () => {
    const t = await startApp({}, [EchoGateway], { controllers: [HelloController] });
    const socket = connect(t.port, '127.0.0.1');
    try {
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.write(
        'POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n' +
          'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"n":2}\r\n0\r\n\r\n' +
          'GET /api/hello HTTP/1.1\r\nHost: x\r\n\r\n',
      );
      await waitUntil(() => received.includes('{"hello":"world"}'), { timeoutMs: 5000, what: 'both answers' });
      expect(received.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 201', 'HTTP/1.1 200']);
      expect(received).toContain('{"echoed":{"n":2}}');
    } finally {
      socket.destroy();
      await t.close();
    }
  });

  it('property: requests with and without the offer, bodies whole or chunked, pipelined and cut anywhere, each get their own answer in order', async () => {
    const t = await startApp({}, [EchoGateway], { controllers: [HelloController] });
    const request = fc.record({
      offer: fc.boolean(),
      body: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
      chunks: fc.integer({ min: 0, max: 3 }), // 0: Content-Length, else that many chunks
    });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 4 }), async (requests, cuts) => {
          const bytes = Buffer.concat(requests.map(rawRequest));
          const expected = requests.map(({ body }) => (body === undefined ? [200, { hello: 'world' }] : [201, { echoed: JSON.parse(JSON.stringify({ v: body })) }]));
          const answers = await exchange(t.port, bytes, cuts, expected.length);
          expect(answers).toEqual(expected);
        }),
        { numRuns: 60 },
      );
      await expectWorking(t);
    } finally {
      await t.close();
    }
  });
});

/** One HTTP/1.1 request as bytes: a GET of /api/hello, or a POST of `{ v: body }` to /api/echo, whole or in chunks. */
function rawRequest({ offer, body, chunks }: { offer: boolean; body: unknown; chunks: number }): Buffer {
  const head = ['Host: x'];
  if (offer) head.push('Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABk');
  if (body === undefined) return Buffer.from(`GET /api/hello HTTP/1.1\r\n${head.join('\r\n')}\r\n\r\n`);
  const json = Buffer.from(JSON.stringify({ v: body }));
  head.push('Content-Type: application/json');
  if (chunks === 0) {
    head.push(`Content-Length: ${json.length}`);
    return Buffer.concat([Buffer.from(`POST /api/echo HTTP/1.1\r\n${head.join('\r\n')}\r\n\r\n`), json]);
  }
  head.push('Transfer-Encoding: chunked');
  const size = Math.ceil(json.length / chunks);
  const parts: Buffer[] = [Buffer.from(`POST /api/echo HTTP/1.1\r\n${head.join('\r\n')}\r\n\r\n`)];
  for (let at = 0; at < json.length; at += size) {
    const chunk = json.subarray(at, at + size);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Writes `bytes` in pieces cut at `cuts` (modulo its length), and reads `count` responses: [status, JSON body] each. */
async function exchange(port: number, bytes: Buffer, cuts: number[], count: number): Promise<Array<[number, unknown]>> {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  socket.on('error', () => undefined);
  try {
    await new Promise((resolve) => socket.once('connect', resolve));
    const at = [...new Set(cuts.map((cut) => cut % bytes.length))].sort((a, b) => a - b);
    let from = 0;
    for (const to of [...at, bytes.length]) {
      socket.write(bytes.subarray(from, to));
      from = to;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return await waitUntil(() => responses(received, count), { timeoutMs: 2000, what: `${count} responses` });
  } finally {
    socket.destroy();
  }
}

/** The first `count` responses in `data` (each with a Content-Length), or undefined while they are not all in. */
function responses(data: Buffer, count: number): Array<[number, unknown]> | undefined {
  const found: Array<[number, unknown]> = [];
  let at = 0;
  while (found.length < count) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end === -1) return undefined;
    const head = data.subarray(at, end).toString('latin1');
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
    if (data.length < end + 4 + length) return undefined;
    found.push([Number(head.split(' ')[1]), JSON.parse(data.subarray(end + 4, end + 4 + length).toString())]);
    at = end + 4 + length;
  }
  return found;
}
