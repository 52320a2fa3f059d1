import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { ReliableGateway, type ReliableWsOptions } from '../lib/index.js';
import { ReliableWsHealthIndicator } from '../lib/terminus/index.js';
import { startApp, type TestApp } from './support/app.js';
import { getHealth } from './support/health.js';
import { freePort, ThrowawayRedis, uniquePrefix } from './support/redis.js';
import { waitUntil, within } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

/** What an app writes: terminus' HealthCheckService with the indicator, under the default and a custom key. */
@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ws: ReliableWsHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.ws.isHealthy()]);
  }

  @Get('custom-key')
  @HealthCheck()
  custom() {
    return this.health.check([() => this.ws.isHealthy('realtime')]);
  }
}

const apps: TestApp[] = [];
const clients: TestClient[] = [];

async function start(options: ReliableWsOptions): Promise<TestApp> {
  const t = await within(
    startApp(options, [EchoGateway, ReliableWsHealthIndicator], {
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
    }),
    15000,
    'starting the app',
  );
  apps.push(t);
  return t;
}

async function connect(t: TestApp, n: number): Promise<TestClient[]> {
  const opened = await TestClient.readyMany(t.wsUrl('/ws'), n);
  clients.push(...opened);
  return opened;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(apps.splice(0).map((t) => within(t.close(), 20000, 'app.close() in cleanup')));
});

describe('ReliableWsHealthIndicator with a real TerminusModule', () => {
  it('is up while /health/ws is ok, and down with the details (503) while the app drains', async () => {
    const t = await start({ heartbeat: { intervalMs: 60000, timeoutMs: 60000 }, shutdown: { spreadMs: 1500, timeoutMs: 5000 } });
    const N = 10;
    const connected = await connect(t, N);

    const up = await getHealth(t.httpUrl('/health'));
    expect(up.status).toBe(200);
    expect(up.body).toEqual({
      status: 'ok',
      info: { websocket: { status: 'up', state: 'ok', connections: N } },
      error: {},
      details: { websocket: { status: 'up', state: 'ok', connections: N } },
    });
    const custom = await getHealth(t.httpUrl('/health/custom-key'));
    expect(custom.status).toBe(200);
    expect(custom.body.details).toEqual({ realtime: { status: 'up', state: 'ok', connections: N } });

    // a real drain: app.close() with the closes spread over 1.5 s; probe in the middle of it
    let closes = 0;
    for (const c of connected) c.raw.once('close', () => closes++);
    const closing = t.close();
    await waitUntil(() => closes > 0, { timeoutMs: 3000, what: 'the first close of the drain' });

    const [down, endpoint] = await Promise.all([getHealth(t.httpUrl('/health')), getHealth(t.httpUrl('/health/ws'))]);
    expect(closes).toBeLessThan(N); // still draining while both were answered
    expect(endpoint.status).toBe(503);
    expect(endpoint.body).toMatchObject({ status: 'draining' });
    expect(down.status).toBe(503);
    // terminus marks the whole check `shutting_down` during app.close(); the indicator itself says why
    expect(down.body.status).toBe('shutting_down');
    expect(down.body.info).toEqual({});
    expect(down.body.error.websocket).toMatchObject({ status: 'down', state: 'draining' });
    expect(down.body.error.websocket.connections).toBeGreaterThan(0);
    expect(down.body.error.websocket.connections).toBeLessThanOrEqual(N);
    expect(down.body.details).toEqual(down.body.error);

    await within(closing, 15000, 'app.close()');
  });

  it('is down with the broadcast detail while the Redis subscriber receives nothing, and up again once it does', async () => {
    const redis = new ThrowawayRedis(await freePort());
    await redis.start();
    try {
      const t = await start({
        heartbeat: { intervalMs: 60000, timeoutMs: 60000 },
        broadcast: { redis: redis.url, channelPrefix: uniquePrefix('terminus'), canaryIntervalMs: 100 },
      });
      await connect(t, 2);
      expect((await getHealth(t.httpUrl('/health'))).status).toBe(200);

      redis.pause(); // the canary goes late: /health/ws answers 503 degraded
      let down;
      try {
        down = await waitUntil(
          async () => {
            const health = await getHealth(t.httpUrl('/health'));
            return health.status === 503 ? health : undefined;
          },
          { timeoutMs: 5000, intervalMs: 50, what: 'terminus 503 while Redis is paused' },
        );
        const endpoint = await getHealth(t.httpUrl('/health/ws'));
        expect(endpoint.status).toBe(503);
        expect(endpoint.body).toMatchObject({ status: 'degraded', connections: 2 });
      } finally {
        redis.resume();
      }
      expect(down.body.error).toEqual({
        websocket: { status: 'down', state: 'degraded', connections: 2, broadcast: 'subscriber not receiving' },
      });

      const back = await waitUntil(
        async () => {
          const health = await getHealth(t.httpUrl('/health'));
          return health.status === 200 ? health : undefined;
        },
        { timeoutMs: 5000, intervalMs: 50, what: 'terminus 200 after SIGCONT' },
      );
      expect(back.body.info).toEqual({ websocket: { status: 'up', state: 'ok', connections: 2 } });
    } finally {
      for (const c of clients.splice(0)) c.terminate();
      await Promise.all(apps.splice(0).map((t) => within(t.close(), 20000, 'app.close()')));
      await redis.kill();
    }
  });
});
