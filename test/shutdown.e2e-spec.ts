import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import type { Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReliableGateway } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { buildLibrary, type BuiltLibrary } from './support/build-lib.js';
import { getHealth } from './support/health.js';
import { RawWsPeer } from './support/raw-ws.js';
import { Swarm } from './support/swarm.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient, upgradeStatus } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

/**
 * A TCP client that sends a WebSocket upgrade for `path` and never closes its side of the
 * connection; `response` resolves with the status line.
 */
function stubbornUpgrade(port: number, path: string): { socket: Socket; response: Promise<string> } {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => undefined);
  const response = new Promise<string>((done) => socket.once('data', (data: Buffer) => done(data.toString().split('\r\n')[0])));
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  return { socket, response };
}

/** How many connections the app's HTTP server holds. */
function openHttpConnections(t: TestApp): Promise<number> {
  const server = t.app.getHttpServer() as HttpServer;
  return new Promise((done, fail) => server.getConnections((error, count) => (error ? fail(error) : done(count))));
}

const SUPPORT = resolve(dirname(fileURLToPath(import.meta.url)), 'support');

describe('graceful shutdown', () => {
  const apps: TestApp[] = [];
  const clients: TestClient[] = [];

  async function start(options: Parameters<typeof startApp>[0]): Promise<TestApp> {
    const t = await startApp(options, [EchoGateway]);
    apps.push(t);
    return t;
  }

  async function connectMany(t: TestApp, n: number): Promise<TestClient[]> {
    const opened = await TestClient.readyMany(t.wsUrl('/ws'), n);
    clients.push(...opened);
    return opened;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    // every app is closed, even when a test failed half-way (close() is idempotent in startApp)
    await Promise.all(apps.splice(0).map((t) => within(t.close(), 20000, 'app.close() in cleanup')));
  });

  it('app.close() sends 1001 to every connected client and resolves', async () => {
    const t = await start({});
    const three = await connectMany(t, 3);
    const closing = t.close();
    const closes = await Promise.all(three.map((c) => c.closed(5000)));
    expect(closes.map((c) => c.code)).toEqual([1001, 1001, 1001]);
    await within(closing, 10000, 'app.close()');
    // and the server is gone
    await expect(upgradeStatus(t.wsUrl('/ws'))).rejects.toThrow(/ECONNREFUSED/);
  });

  it('while draining: health answers 503 draining, new upgrades get 503, closes are spread over spreadMs', async () => {
    const N = 20;
    const SPREAD_MS = 1000;
    const t = await start({ shutdown: { spreadMs: SPREAD_MS, timeoutMs: 3000 } });
    const many = await connectMany(t, N);
    const closedAt: number[] = [];
    const codes: number[] = [];
    for (const c of many) {
      c.raw.once('close', (code) => {
        closedAt.push(Date.now());
        codes.push(code);
      });
    }
    expect((await getHealth(t.httpUrl('/health/ws'))).body).toEqual({ status: 'ok', connections: N });

    const closing = t.close(); // not awaited: probe during the drain
    await waitUntil(() => closedAt.length > 0, { timeoutMs: 2000, what: 'the first close' });

    const health = await getHealth(t.httpUrl('/health/ws'));
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'draining' });
    expect(health.body.connections).toBeGreaterThan(0);
    expect(await upgradeStatus(t.wsUrl('/ws'))).toBe(503);
    expect(closedAt.length).toBeLessThan(N); // still in the middle of the drain

    await within(closing, 10000, 'app.close()');
    await waitUntil(() => closedAt.length === N, { timeoutMs: 2000, what: 'all clients to see their close' });
    expect(codes).toEqual(Array(N).fill(1001));

    const first = Math.min(...closedAt);
    const offsets = closedAt.map((at) => at - first).sort((a, b) => a - b);
    expect(offsets[N - 1]).toBeGreaterThanOrEqual(SPREAD_MS / 2);
    expect(offsets[N - 1]).toBeLessThanOrEqual(SPREAD_MS + 1000);
    // roughly even: the i-th close at about i/n × spreadMs
    offsets.forEach((offset, i) => {
      expect(Math.abs(offset - (i / N) * SPREAD_MS)).toBeLessThanOrEqual(300);
    });
  });

  it('an upgrade still in an asynchronous handshake verify when the drain starts gets 503, and does not hold app.close()', async () => {
    const verify = (token: string) => new Promise((resolve) => setTimeout(() => resolve({ id: token }), 300));
    const t = await start({ auth: { verify, mode: 'handshake' }, shutdown: { spreadMs: 1000, timeoutMs: 5000 } });
    const present: TestClient[] = [];
    for (let k = 0; k < 4; k++) present.push(await TestClient.ready(t.wsUrl(`/ws?token=present${k}`)));
    clients.push(...present);
    const late = upgradeStatus(t.wsUrl('/ws?token=late'));
    await new Promise((resolve) => setTimeout(resolve, 100)); // the late one's verify is running
    const startedAt = Date.now();
    const closing = t.close(); // the drain spreads its closes over a second: the verify ends during it
    expect(await within(late, 2000, 'the late upgrade')).toBe(503);
    expect((await Promise.all(present.map((c) => c.closed(3000)))).map((c) => c.code)).toEqual([1001, 1001, 1001, 1001]);
    await within(closing, 10000, 'app.close()');
    expect(Date.now() - startedAt).toBeLessThan(3000); // not shutdown.timeoutMs
  });

  it('an upgrade whose handshake verify never answers gets 503 at the drain, and does not hold app.close() for auth.timeoutMs', async () => {
    const AUTH_TIMEOUT_MS = 60000;
    const verify = () => new Promise<never>(() => undefined);
    const t = await start({ auth: { verify, mode: 'handshake', timeoutMs: AUTH_TIMEOUT_MS }, shutdown: { timeoutMs: 1000 } });
    const pending = stubbornUpgrade(t.port, '/ws?token=never');
    try {
      await sleep(200); // its verify is running
      await within(t.close(), 10000, 'app.close() with an upgrade in verify'); // README: 2 × shutdown.timeoutMs at most
      expect(await within(pending.response, 1000, 'the pending upgrade to be answered')).toBe('HTTP/1.1 503 Service Unavailable');
    } finally {
      pending.socket.destroy();
    }
  });

  it('a client that never closes its side after a refused upgrade (404, or 503 while draining) is disconnected and does not hold app.close()', async () => {
    const t = await start({ shutdown: { spreadMs: 500, timeoutMs: 2000 } });
    const notFound = stubbornUpgrade(t.port, '/nowhere');
    let draining: ReturnType<typeof stubbornUpgrade> | undefined;
    try {
      expect(await within(notFound.response, 2000, 'the 404')).toBe('HTTP/1.1 404 Not Found');
      await waitUntil(async () => (await openHttpConnections(t)) === 0, { what: 'the server to let go of the refused connection' });
      await connectMany(t, 2); // keeps the drain going for spreadMs
      const closing = t.close();
      await waitUntil(async () => (await getHealth(t.httpUrl('/health/ws'))).status === 503, { what: 'the drain' });
      draining = stubbornUpgrade(t.port, '/ws');
      expect(await within(draining.response, 2000, 'the 503')).toBe('HTTP/1.1 503 Service Unavailable');
      await within(closing, 10000, 'app.close() with a refused client that keeps its side open');
    } finally {
      notFound.socket.destroy();
      draining?.socket.destroy();
    }
  });

  it('a client whose upgrade request never ends (headers sent slowly) is cut after shutdown.timeoutMs and does not hold app.close()', async () => {
    const t = await start({ shutdown: { timeoutMs: 500 } });
    const slow = connect({ port: t.port, host: '127.0.0.1' });
    slow.on('error', () => undefined);
    const cut = new Promise<void>((done) => slow.once('close', () => done()));
    try {
      slow.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${t.port}\r\nUpgrade: websocket\r\n`); // and the rest never comes
      await waitUntil(async () => (await openHttpConnections(t)) === 1, { what: 'the server to hold the slow connection' });
      await within(t.close(), 10000, 'app.close() with an upgrade request that never ends'); // README: 3 × shutdown.timeoutMs at most
      await within(cut, 2000, 'the slow connection to be cut');
    } finally {
      slow.destroy();
    }
  });

  it('terminates clients that never answer the close after timeoutMs, and app.close() still resolves', async () => {
    const TIMEOUT_MS = 500;
    const t = await start({ shutdown: { timeoutMs: TIMEOUT_MS } });
    const [polite, pausedA, pausedB] = await connectMany(t, 3);
    pausedA.raw.pause(); // reads nothing, so never answers the close frame
    pausedB.raw.pause();
    const raw = await RawWsPeer.open(t.port, '/ws'); // reads everything, answers nothing
    try {
      await waitUntil(() => raw.frames.length > 0, { timeoutMs: 2000, what: 'the raw peer to get $ready' });
      expect((await getHealth(t.httpUrl('/health/ws'))).body.connections).toBe(4);

      const startedAt = Date.now();
      const closing = t.close();
      expect((await polite.closed(5000)).code).toBe(1001);

      await within(raw.closed, 5000, 'the raw peer to be cut');
      expect(raw.closeCode).toBe(1001); // it was asked to go away first…
      // …and cut only after it had timeoutMs to answer (a lower bound, not a speed check)
      expect(raw.closedAt! - startedAt).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);

      await within(closing, 5000, 'app.close()');
      pausedA.raw.resume();
      pausedB.raw.resume();
      const closes = await Promise.all([pausedA.closed(3000), pausedB.closed(3000)]);
      // they find the 1001 close frame in their receive buffer, followed by the cut connection
      expect(closes.map((c) => c.code)).toEqual([1001, 1001]);
    } finally {
      raw.destroy();
    }
  });

  it(
    'closes 10,000 connections (clients in 4 child processes) with 1001 and app.close() resolves',
    async () => {
      const TOTAL = 10000;
      const PER_CHILD = 2500;
      // budget: this process holds TOTAL server-side sockets, each child PER_CHILD client sockets
      const limit = Number(execFileSync('/bin/sh', ['-c', 'ulimit -n']).toString().trim());
      expect(limit).toBeGreaterThanOrEqual(TOTAL + 2000);

      const t = await start({ maxConnectionsPerIp: TOTAL + 100 });
      const swarms = Array.from({ length: TOTAL / PER_CHILD }, () => new Swarm(t.wsUrl('/ws'), PER_CHILD, { concurrency: 100 }));
      try {
        const opened = await Promise.all(swarms.map((s) => s.waitFor('opened', 90000)));
        expect(opened.map((o) => ({ opened: o.opened, failed: o.failed, errors: o.errors }))).toEqual(
          swarms.map(() => ({ opened: PER_CHILD, failed: 0, errors: [] })),
        );
        expect((await getHealth(t.httpUrl('/health/ws'), 10000)).body).toEqual({ status: 'ok', connections: TOTAL });

        await within(t.close(), 60000, 'app.close() with 10,000 connections');

        const closed = await Promise.all(swarms.map((s) => s.waitFor('all-closed', 30000)));
        const codes: Record<string, number> = {};
        for (const report of closed) {
          for (const [code, n] of Object.entries(report.codes ?? {})) codes[code] = (codes[code] ?? 0) + n;
        }
        expect(codes).toEqual({ 1001: TOTAL });
      } finally {
        await Promise.all(swarms.map((s) => s.stop()));
      }
    },
    180000,
  );

  describe('SIGTERM with enableShutdownHooks (child process on the compiled library)', () => {
    let lib: BuiltLibrary;
    let child: ChildProcess | undefined;

    beforeAll(async () => {
      lib = await buildLibrary();
    }, 180000);

    afterAll(() => lib?.remove());

    afterEach(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child = undefined;
    });

    async function runChild(env: Record<string, string>): Promise<{
      port: number;
      exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
      output: () => string;
    }> {
      const proc = spawn(process.execPath, [resolve(SUPPORT, 'sigterm-app.mjs')], {
        env: { ...process.env, RWS_LIB: lib.indexJs, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
        proc.once('exit', (code, signal) => done({ code, signal })),
      );
      const port = await waitUntil(() => Number(/LISTENING (\d+)/.exec(out)?.[1]) || undefined, {
        timeoutMs: 30000,
        intervalMs: 50,
        what: 'the child app to listen',
      }).catch((error: Error) => {
        throw new Error(`${error.message}; child output:\n${out}`);
      });
      return { port, exited, output: () => out };
    }

    it('with { useProcessExit: true }: the client gets 1001 and the process exits with code 0', async () => {
      const app = await runChild({ RWS_PROCESS_EXIT: '1' });
      const client = await TestClient.ready(`ws://127.0.0.1:${app.port}/ws`);
      clients.push(client);
      expect(await client.request('echo', 'hi', 1)).toEqual({ event: 'echo', data: 'hi', ref: 1 });

      child!.kill('SIGTERM');
      expect((await client.closed(10000)).code).toBe(1001);
      const exit = await within(app.exited, 15000, 'the child to exit');
      expect({ exit, output: app.output() }).toEqual({ exit: { code: 0, signal: null }, output: expect.any(String) });
      expect(app.output()).not.toMatch(/error/i);
    });

    it('after app.close() with an upgrade whose handshake verify never answers, the process exits on its own', async () => {
      const options = { auth: { mode: 'handshake', timeoutMs: 60000 }, shutdown: { timeoutMs: 500 } };
      const app = await runChild({ RWS_OPTIONS: JSON.stringify(options), RWS_VERIFY: 'hang' });
      const pending = stubbornUpgrade(app.port, '/ws?token=never');
      try {
        await sleep(200); // its verify is running
        child!.kill('SIGUSR2');
        expect(await within(pending.response, 5000, 'the pending upgrade to be answered')).toBe('HTTP/1.1 503 Service Unavailable');
        const exit = await within(app.exited, 10000, 'the child to exit on its own'); // not auth.timeoutMs later
        expect({ exit, output: app.output() }).toEqual({ exit: { code: 0, signal: null }, output: expect.stringContaining('CLOSED') });
      } finally {
        pending.socket.destroy();
      }
    });

    it('after app.close() with a $auth whose verify never answers, the process exits on its own', async () => {
      const options = { auth: { mode: 'handshake', timeoutMs: 60000 }, shutdown: { timeoutMs: 500 } };
      const app = await runChild({ RWS_OPTIONS: JSON.stringify(options), RWS_VERIFY: 'hang-refresh' });
      const client = await TestClient.ready(`ws://127.0.0.1:${app.port}/ws?token=alice`);
      clients.push(client);
      client.send({ event: '$auth', data: { token: 'hang' } });
      await sleep(200); // its verify is running
      child!.kill('SIGUSR2');
      expect((await client.closed(5000)).code).toBe(1001);
      const exit = await within(app.exited, 10000, 'the child to exit on its own'); // not auth.timeoutMs later
      expect({ exit, output: app.output() }).toEqual({ exit: { code: 0, signal: null }, output: expect.stringContaining('CLOSED') });
    });

    it('with default shutdown hooks: the client gets 1001 and the process ends by the re-raised SIGTERM', async () => {
      const app = await runChild({});
      const client = await TestClient.ready(`ws://127.0.0.1:${app.port}/ws`);
      clients.push(client);

      child!.kill('SIGTERM');
      expect((await client.closed(10000)).code).toBe(1001);
      // Nest re-raises the signal once its shutdown sequence has finished (exit status 143 in a shell)
      const exit = await within(app.exited, 15000, 'the child to exit');
      expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
      expect(app.output()).not.toMatch(/error/i);
    });
  });
});
