/**
 * Logs (DESIGN §8.4) as an operator reads them: real Nest apps whose logger records every line,
 * real `ws` clients. Every refused upgrade and every problem close is logged once at warn with its
 * reason (503 while draining at debug), a flood is rate-limited, the connection lifecycle is at
 * debug, and the broadcast mode is logged at startup.
 */
import { ConnectedSocket, SubscribeMessage } from '@nestjs/websockets';
import { ReliableGateway, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { captureLogger, startAppWithOptions, type CaptureLogger } from './support/app-with-logger.js';
import type { TestApp } from './support/app.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { waitUntil } from './support/wait.js';
import { TestClient, upgradeStatus } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class LogGateway {
  @SubscribeMessage('kick')
  kick(@ConnectedSocket() socket: ReliableSocket): void {
    socket.close(4003);
  }
}

let t: TestApp | undefined;
let logger: CaptureLogger;
const clients: TestClient[] = [];

async function start(options: ReliableWsOptions = {}): Promise<TestApp> {
  logger = captureLogger();
  t = await startAppWithOptions(options, [LogGateway], { logger });
  return t;
}

const linesWith = (text: string): string[] => logger.lines.filter((line) => line.includes(text));

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  await t?.close();
  t = undefined;
});

describe('connection logs', () => {
  it('logs each refused upgrade once at warn with its reason; a 403 names the Origin, the Host and the mode', async () => {
    const app = await start({ maxConnectionsPerIp: 1 });
    const url = app.wsUrl('/ws');

    expect(await upgradeStatus(url, { headers: { origin: 'https://evil.example' } })).toBe(403);
    const forbidden = linesWith('upgrade refused 403');
    expect(forbidden).toHaveLength(1);
    expect(forbidden[0]).toMatch(/^warn /);
    expect(forbidden[0]).toContain('origin not allowed');
    expect(forbidden[0]).toContain('Origin "https://evil.example"');
    expect(forbidden[0]).toContain(`Host "127.0.0.1:${app.port}"`);
    expect(forbidden[0]).toContain('allowedOrigins: same-origin');
    expect(forbidden[0]).toContain('proxy_set_header Host $http_host');

    expect(await upgradeStatus(app.wsUrl('/nowhere?x=1'))).toBe(404);
    const notFound = linesWith('upgrade refused 404');
    expect(notFound).toHaveLength(1);
    expect(notFound[0]).toMatch(/^warn .*no WebSocket endpoint at this path: path "\/nowhere\?x=1" from 127\.0\.0\.1; gateways here: \/ws/);

    const first = await TestClient.ready(url);
    clients.push(first);
    expect(await upgradeStatus(url)).toBe(429);
    const tooMany = linesWith('upgrade refused 429');
    expect(tooMany).toHaveLength(1);
    expect(tooMany[0]).toMatch(/^warn .*127\.0\.0\.1 holds maxConnectionsPerIp \(1\); trustProxy: false \(behind a proxy/);

    first.send({ event: 'kick' });
    expect((await first.closed()).code).toBe(4003);
    const kicked = await waitUntil(() => linesWith('closed 4003').length > 0 && linesWith('closed 4003'), { what: 'the close logged' });
    expect(kicked).toHaveLength(1);
    expect(kicked[0]).toMatch(/^warn closed 4003: forbidden \(session [0-9a-zA-Z_-]{8}…, 127\.0\.0\.1\)/);
    // Logged once: not again as a lifecycle line.
    expect(linesWith('4003')).toHaveLength(1);
  });

  it('rate-limits a flood: 1000 refused upgrades give a bounded number of lines, the rest summed up', async () => {
    const app = await start();
    const url = app.wsUrl('/ws');
    const FLOOD = 1000;
    const CONCURRENCY = 50;
    let sent = 0;
    const statuses: number[] = [];
    const worker = async (): Promise<void> => {
      while (sent < FLOOD) {
        sent++;
        statuses.push(await upgradeStatus(url, { headers: { origin: 'https://evil.example' } }));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(statuses.filter((status) => status === 403)).toHaveLength(FLOOD);

    await app.close(); // ends the window: what it held back is reported
    const lines = linesWith('upgrade refused 403');
    const single = lines.filter((line) => !line.includes('more suppressed'));
    const suppressed = lines
      .map((line) => /upgrade refused 403: (\d+) more suppressed/.exec(line))
      .filter((match) => match !== null)
      .reduce((sum, match) => sum + Number(match[1]), 0);
    expect(single.length).toBeGreaterThanOrEqual(1);
    expect(single.length).toBeLessThanOrEqual(10); // 5 per 10 s window; the flood takes a few seconds at most
    expect(lines.length - single.length).toBeLessThanOrEqual(2);
    expect(single.length + suppressed).toBe(FLOOD);
  });

  it('logs the connection lifecycle at debug, the broadcast mode at startup, and 503 while draining at debug', async () => {
    const app = await start({ shutdown: { spreadMs: 1000, timeoutMs: 3000 } });
    const url = app.wsUrl('/ws');
    expect(linesWith('Broadcast:')).toEqual(['log Broadcast: in memory (this instance only) BroadcastService']);

    const v1 = new TestClient(url, 'rws.v1');
    clients.push(v1);
    await v1.open();
    v1.send({ event: '$hello', data: {} });
    const ready = (await v1.next((frame) => frame.event === '$ready')).data as { sessionId: string; resumeToken: string };
    const id = `${ready.sessionId.slice(0, 8)}…`;
    v1.terminate();
    await waitUntil(() => linesWith('connection closed: 1006').length > 0, { what: 'the drop logged' });

    const back = new TestClient(url, 'rws.v1');
    clients.push(back);
    await back.open();
    back.send({ event: '$hello', data: { resume: { sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: 0 } } });
    await back.next((frame) => frame.event === '$ready');
    const lost = new TestClient(url, 'rws.v1');
    clients.push(lost);
    await lost.open();
    lost.send({ event: '$hello', data: { resume: { sessionId: 'gone', resumeToken: 'wrong', lastSeq: 3 } } });
    await lost.next((frame) => frame.event === '$ready');
    lost.close(1000);
    await lost.closed();
    await waitUntil(() => linesWith('connection closed: 1000').length > 0, { what: 'the close logged' });

    expect(linesWith('connection opened: /ws from 127.0.0.1 (rws.v1)')).toHaveLength(3);
    expect(linesWith(`session ${id} started`)).toEqual([`debug session ${id} started ReliableWsAdapter`]);
    expect(linesWith(`connection closed: 1006 by the client (session ${id}, 127.0.0.1)`)).toHaveLength(1);
    expect(linesWith(`session ${id} resumed after seq 0`)).toHaveLength(1);
    expect(linesWith('resume of session gone… missed')).toHaveLength(1);
    expect(linesWith('connection closed: 1000 by the client')).toHaveLength(1);
    for (const line of [...linesWith('connection '), ...linesWith('session ')]) expect(line).toMatch(/^debug /);

    const closing = app.close(); // `back` is still connected: the drain takes up to spreadMs
    await waitUntil(async () => (await upgradeStatus(url)) === 503, { what: 'a 503 while draining' });
    await closing;
    const draining = linesWith('upgrade refused 503');
    expect(draining.length).toBeGreaterThanOrEqual(1);
    for (const line of draining) expect(line).toMatch(/^debug upgrade refused 503: server is shutting down: from 127\.0\.0\.1/);
    expect(logger.lines.filter((line) => line.startsWith('warn '))).toEqual([]);
  });

  it('logs the Redis broadcast mode at startup, without the password', async () => {
    const channelPrefix = uniquePrefix('log');
    const withPassword = REDIS_URL.replace('redis://', 'redis://:s3cret@');
    await start({ broadcast: { redis: withPassword, channelPrefix } });
    const mode = linesWith('Broadcast:');
    expect(mode).toHaveLength(1);
    expect(mode[0]).toMatch(/^log Broadcast: Redis at redis:\/\/\[redacted\]@127\.0\.0\.1:6379, channel prefix "log-/);
    expect(logger.lines.join('\n')).not.toContain('s3cret');
  });
});
