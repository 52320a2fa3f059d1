import 'reflect-metadata';
import { Injectable, Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReliableGateway, ReliableWsAdapter, ReliableWsModule, type ReliableWsOptions } from '../lib/index.js';
import { buildLibrary, type BuiltLibrary } from './support/build-lib.js';
import { getHealth } from './support/health.js';
import { within } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

const ADAPTER_HINT = 'app.useWebSocketAdapter(new ReliableWsAdapter(app))';
const SUPPORT = resolve(dirname(fileURLToPath(import.meta.url)), 'support');

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

/** A ConfigService look-alike, provided by its own module. */
@Injectable()
class FakeConfigService {
  private readonly values: Record<string, unknown> = { WS_HEARTBEAT_MS: 4321, WS_HEALTH_PATH: '/custom/health' };
  get<T>(key: string): T {
    return this.values[key] as T;
  }
}

@Module({ providers: [FakeConfigService], exports: [FakeConfigService] })
class FakeConfigModule {}

const apps: INestApplication[] = [];

/** Creates an app (never aborting the process on error); every created app is closed after each test. */
async function create(imports: DynamicModule[], providers: any[] = []): Promise<INestApplication> {
  @Module({ imports, providers })
  class TestModule {}
  const app = await NestFactory.create(TestModule, { logger: false, abortOnError: false });
  apps.push(app);
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => within(app.close(), 10000, 'app.close()').catch(() => undefined)));
});

describe('ReliableWsModule options are checked at startup', () => {
  const cases: Array<[string, ReliableWsOptions | Record<string, unknown>, string[]]> = [
    ['maxPayloadBytes: -1', { maxPayloadBytes: -1 }, ['"maxPayloadBytes"', '-1']],
    ['heartbeat: { intervalMs: 0 }', { heartbeat: { intervalMs: 0 } }, ['"heartbeat.intervalMs"', 'got 0']],
    ["allowedOrigins: ['example.com'] (no scheme)", { allowedOrigins: ['example.com'] }, ['"allowedOrigins[0]"', '"example.com"']],
    ['allowedOrigins: [42]', { allowedOrigins: [42] }, ['"allowedOrigins[0]"', 'got 42']],
    ['unknown option maxPayload: 1', { maxPayload: 1 }, ['"maxPayload"', 'got 1']],
    ['shutdown: { closeCode: 999 }', { shutdown: { closeCode: 999 } }, ['"shutdown.closeCode"', '999']],
    ["health: { path: 'x' }", { health: { path: 'x' } }, ['"health.path"', '"x"']],
    ["trustProxy: 'yes'", { trustProxy: 'yes' }, ['"trustProxy"', '"yes"']],
  ];

  it.each(cases)('forRoot({ %s }) stops bootstrap naming the option and the value', async (_name, options, fragments) => {
    const created = create([ReliableWsModule.forRoot(options as ReliableWsOptions)], [EchoGateway]);
    const error: Error = await created.then(
      () => {
        throw new Error('NestFactory.create resolved although the options are wrong');
      },
      (e: Error) => e,
    );
    for (const fragment of fragments) expect(error.message).toContain(fragment);
  });

  it("forRootAsync({ useFactory: () => ({ maxPayloadBytes: 'big' }) }) stops bootstrap naming the option and the value", async () => {
    const created = create(
      [ReliableWsModule.forRootAsync({ useFactory: () => ({ maxPayloadBytes: 'big' }) as unknown as ReliableWsOptions })],
      [EchoGateway],
    );
    await expect(created).rejects.toThrow('"maxPayloadBytes"');
    await expect(created).rejects.toThrow('"big"');
  });

  it('forRootAsync with imports + inject of a config provider works end to end', async () => {
    const app = await create(
      [
        ReliableWsModule.forRootAsync({
          imports: [FakeConfigModule],
          inject: [FakeConfigService],
          useFactory: async (config: FakeConfigService) => ({
            heartbeat: { intervalMs: config.get<number>('WS_HEARTBEAT_MS') },
            health: { path: config.get<string>('WS_HEALTH_PATH') },
          }),
        }),
      ],
      [EchoGateway],
    );
    app.useWebSocketAdapter(new ReliableWsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const client = new TestClient(`ws://127.0.0.1:${port}/ws`);
    try {
      const ready = await client.next((f) => f.event === '$ready');
      expect(ready.data).toMatchObject({ resumed: false, missed: false, lastId: 0, heartbeatMs: 4321 });
      expect(await client.request('echo', 'configured', 1)).toEqual({ event: 'echo', data: 'configured', ref: 1 });
      const health = await getHealth(`http://127.0.0.1:${port}/custom/health`);
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok', connections: 1 });
      expect((await getHealth(`http://127.0.0.1:${port}/health/ws`)).status).toBe(404);
    } finally {
      client.terminate();
    }
  });
});

describe('a forgotten adapter fails bootstrap with the line to add', () => {
  it('module + @ReliableGateway without useWebSocketAdapter: app.listen() rejects with the hint', async () => {
    const app = await create([ReliableWsModule.forRoot({})], [EchoGateway]);
    await expect(app.listen(0, '127.0.0.1')).rejects.toThrow(ADAPTER_HINT);
  });

  it('module without any gateway and without useWebSocketAdapter: app.init() rejects with the hint', async () => {
    const app = await create([ReliableWsModule.forRoot({})]);
    await expect(app.init()).rejects.toThrow(ADAPTER_HINT);
  });

  it("installing Nest's stock WsAdapter instead also rejects with the hint", async () => {
    const app = await create([ReliableWsModule.forRoot({})], [EchoGateway]);
    app.useWebSocketAdapter(new WsAdapter(app));
    await expect(app.init()).rejects.toThrow(ADAPTER_HINT);
  });

  it('new ReliableWsAdapter(app) on an app without the module throws a message naming ReliableWsModule.forRoot()', async () => {
    const app = await create([]);
    expect(() => new ReliableWsAdapter(app)).toThrow('ReliableWsModule.forRoot()');
  });

  describe('with NestFactory defaults (abortOnError on), in a child process on the compiled library', () => {
    let lib: BuiltLibrary;
    beforeAll(async () => {
      lib = await buildLibrary();
    }, 180000);
    afterAll(() => lib?.remove());

    it('new ReliableWsAdapter(app) without the module still tells the user to add ReliableWsModule.forRoot()', async () => {
      const proc = spawn(process.execPath, [resolve(SUPPORT, 'adapter-without-module.mjs')], {
        env: { ...process.env, RWS_LIB: lib.indexJs },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
      const code = await new Promise<number | null>((done) => proc.once('exit', (c) => done(c)));
      clearTimeout(timer);
      expect(code).not.toBe(0);
      expect(output).toContain('ReliableWsModule.forRoot()');
    });
  });
});
