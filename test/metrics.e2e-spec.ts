/**
 * OpenTelemetry metrics (DESIGN §8.4) as a user collects them: a real MeterProvider with a real
 * PrometheusExporter registered globally before the app starts, real Nest apps, real `ws` clients,
 * and the exporter's HTTP endpoint scraped. Prometheus spells `rws.x.y` as `rws_x_y`, with `_total`
 * on counters.
 */
import { ForbiddenException } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createServer, type AddressInfo } from 'node:net';
import { BroadcastService, ReliableGateway, type ReliableSocket } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { waitUntil } from './support/wait.js';
import { TestClient, upgradeStatus } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class MetricsGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }

  @SubscribeMessage('note')
  note(): void {}

  @SubscribeMessage('fail')
  fail(): never {
    throw new ForbiddenException('no');
  }

  @SubscribeMessage('shout')
  async shout(@MessageBody() text: string): Promise<void> {
    await this.broadcast.toAll('shouted', text);
  }

  @SubscribeMessage('kick')
  kick(@ConnectedSocket() socket: ReliableSocket): void {
    socket.close(4003);
  }
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (sample lines only). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

class Scrape {
  constructor(
    readonly text: string,
    private readonly samples = parse(text),
  ) {}

  /** The value of the one series with this name and these labels (among others); undefined when there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.samples.filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
    if (found.length > 1) throw new Error(`${found.length} series match ${name} ${JSON.stringify(labels)}`);
    return found[0]?.value;
  }

  type(name: string): string | undefined {
    return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(this.text)?.[1];
  }
}

/** Scrapes until `ready` holds for a scrape (bounded), and returns that scrape. */
function scrapeUntil(ready: (now: Scrape) => boolean, what: string): Promise<Scrape> {
  return waitUntil(
    async () => {
      const now = await scrape();
      return ready(now) && now;
    },
    { what },
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let exporter: PrometheusExporter;
let provider: MeterProvider;
let metricsUrl: string;

async function scrape(): Promise<Scrape> {
  const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
  expect(response.status).toBe(200);
  return new Scrape(await response.text());
}

beforeAll(async () => {
  const port = await freePort();
  exporter = new PrometheusExporter({ host: '127.0.0.1', port, preventServerStart: true });
  await exporter.startServer();
  provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
});

afterAll(async () => {
  metrics.disable();
  await provider.shutdown();
});

describe('metrics through @opentelemetry/api, scraped from a Prometheus exporter', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    await t?.close();
  });

  /** Opens a connection that the server closes with 4003. */
  async function kick(url: string): Promise<void> {
    const kicked = await TestClient.ready(url);
    clients.push(kicked);
    kicked.send({ event: 'kick' });
    expect((await kicked.closed()).code).toBe(4003);
  }

  it('counts connections, messages by kind, errors, closes, resumes, replays, refusals and broadcast durations', async () => {
    t = await startApp({}, [MetricsGateway]);
    const url = t.wsUrl('/ws');

    // A plain client: two requests, a message without id, an error, an unknown event, a bad frame.
    const plain = await TestClient.ready(url);
    clients.push(plain);
    expect((await plain.request('echo', 'a', 1)).data).toBe('a');
    expect((await plain.request('echo', 'b', 2)).data).toBe('b');
    plain.send({ event: 'note', data: null });
    expect((await plain.request('fail', null, 3)).data).toMatchObject({ code: 'FORBIDDEN' });
    expect((await plain.request('nope', null, 4)).data).toMatchObject({ code: 'UNKNOWN_EVENT' });
    plain.send('not json');
    expect((await plain.next((frame) => frame.event === '$error')).data).toMatchObject({ code: 'BAD_MESSAGE' });

    // An rws.v1 client hears a broadcast, drops, misses one, resumes: one push replayed.
    const v1 = new TestClient(url, 'rws.v1');
    clients.push(v1);
    await v1.open();
    v1.send({ event: '$hello', data: {} });
    const ready = (await v1.next((frame) => frame.event === '$ready')).data as { sessionId: string; resumeToken: string };
    await plain.request('shout', 'one', 5);
    expect((await v1.next((frame) => frame.event === 'shouted')).seq).toBe(1);
    v1.terminate();
    await scrapeUntil((now) => now.value('rws_sessions_detached') === 1, 'one detached session');
    await plain.request('shout', 'two', 6);

    const mid = await scrape();
    expect(mid.type('rws_connections')).toBe('gauge');
    expect(mid.value('rws_connections')).toBe(1);
    expect(mid.value('rws_sessions_detached')).toBe(1);

    const resumed = new TestClient(url, 'rws.v1');
    clients.push(resumed);
    await resumed.open();
    resumed.send({ event: '$hello', data: { resume: { sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: 1 } } });
    expect((await resumed.next((frame) => frame.event === '$ready')).data).toMatchObject({ resumed: true });
    expect((await resumed.next((frame) => frame.event === 'shouted')).seq).toBe(2);

    const missed = new TestClient(url, 'rws.v1');
    clients.push(missed);
    await missed.open();
    missed.send({ event: '$hello', data: { resume: { sessionId: 'unknown', resumeToken: 'wrong', lastSeq: 0 } } });
    expect((await missed.next((frame) => frame.event === '$ready')).data).toMatchObject({ resumed: false, missed: true });

    // Refused upgrades: a foreign Origin and an unknown path.
    expect(await upgradeStatus(url, { headers: { origin: 'https://evil.example' } })).toBe(403);
    expect(await upgradeStatus(t.wsUrl('/nowhere'))).toBe(404);

    // Closes: one by the client with 1000, one by the server with 4003.
    missed.close(1000);
    expect((await missed.closed()).code).toBe(1000);
    await kick(url);

    const s = await scrapeUntil((now) => now.value('rws_closes_total', { code: '1000' }) === 1 && now.value('rws_connections') === 2, 'the closes counted');
    expect(s.value('rws_connections')).toBe(2); // plain + resumed
    expect(s.value('rws_sessions_detached')).toBe(0);

    expect(s.type('rws_messages_received_total')).toBe('counter');
    // plain: echo ×2, fail, nope, shout ×2 with ids; note without; one bad frame. $hello ×3 + kick (no id).
    expect(s.value('rws_messages_received_total', { kind: 'request' })).toBe(6);
    expect(s.value('rws_messages_received_total', { kind: 'message' })).toBe(2);
    expect(s.value('rws_messages_received_total', { kind: 'system' })).toBe(3);
    expect(s.value('rws_messages_received_total', { kind: 'invalid' })).toBe(1);

    // Pushes: 'one' to plain and v1, 'two' to plain and (buffered, then replayed) the resumed session.
    expect(s.value('rws_messages_sent_total', { kind: 'push' })).toBe(4);
    expect(s.value('rws_replayed_total')).toBe(1);
    // Replies: echo ×2, $ack of shout ×2. Errors: FORBIDDEN, UNKNOWN_EVENT, BAD_MESSAGE.
    expect(s.value('rws_messages_sent_total', { kind: 'reply' })).toBe(4);
    expect(s.value('rws_messages_sent_total', { kind: 'error' })).toBe(3);
    // $ready of plain, v1, resumed, missed, kicked.
    expect(s.value('rws_messages_sent_total', { kind: 'system' })).toBe(5);

    expect(s.value('rws_errors_total', { code: 'FORBIDDEN' })).toBe(1);
    expect(s.value('rws_errors_total', { code: 'UNKNOWN_EVENT' })).toBe(1);
    expect(s.value('rws_errors_total', { code: 'BAD_MESSAGE' })).toBe(1);

    expect(s.value('rws_closes_total', { code: '1006' })).toBe(1); // v1's dropped connection
    expect(s.value('rws_closes_total', { code: '4003' })).toBe(1);

    expect(s.value('rws_resumes_total', { outcome: 'resumed' })).toBe(1);
    expect(s.value('rws_resumes_total', { outcome: 'missed' })).toBe(1);

    expect(s.value('rws_handshake_refused_total', { status: '403' })).toBe(1);
    expect(s.value('rws_handshake_refused_total', { status: '404' })).toBe(1);

    expect(s.type('rws_broadcast_duration')).toBe('histogram');
    expect(s.value('rws_broadcast_duration_count', { origin: 'local' })).toBe(2);
    expect(s.value('rws_broadcast_duration_bucket', { origin: 'local', le: '+Inf' })).toBe(2);
    expect(s.value('rws_broadcast_duration_sum', { origin: 'local' })).toBeLessThan(1000);
    expect(s.value('rws_redis_canary_lag')).toBeUndefined(); // no Redis here

    // Counters survive the app: a closed app's counts stay, its connections go.
    for (const client of clients.splice(0)) client.terminate();
    await t.close();
    const after = await scrape();
    expect(after.value('rws_messages_received_total', { kind: 'request' })).toBe(6);
    expect(after.value('rws_connections')).toBe(0);
  });

  it('with Redis: the canary lag, and broadcasts from another instance timed as remote', async () => {
    const channelPrefix = uniquePrefix('metrics');
    const options = { broadcast: { redis: REDIS_URL, channelPrefix, canaryIntervalMs: 100 } };
    t = await startApp(options, [MetricsGateway]);
    const other = await startApp(options, [MetricsGateway]);
    try {
      const before = (await scrape()).value('rws_broadcast_duration_count', { origin: 'remote' }) ?? 0;
      const listener = await TestClient.ready(other.wsUrl('/ws'));
      clients.push(listener);
      const speaker = await TestClient.ready(t.wsUrl('/ws'));
      clients.push(speaker);
      await speaker.request('shout', 'across', 1);
      await listener.next((frame) => frame.event === 'shouted' && frame.data === 'across');

      const s = await scrapeUntil((now) => now.value('rws_redis_canary_lag') !== undefined, 'a canary lag');
      expect(s.type('rws_redis_canary_lag')).toBe('gauge');
      const lag = s.value('rws_redis_canary_lag')!;
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(1000);
      // Each app delivers the shout to its own client: once as local, once as remote.
      expect(s.value('rws_broadcast_duration_count', { origin: 'remote' })).toBe(before + 1);
      expect(s.value('rws_connections')).toBe(2);
    } finally {
      for (const client of clients.splice(0)) client.terminate();
      await other.close();
    }
  });
  it("clients' application close codes (3000–4999) count as one label: 70 of them cannot hide the codes that matter", async () => {
    t = await startApp({}, [MetricsGateway]);
    const url = t.wsUrl('/ws');
    const before = await scrape();
    const application = before.value('rws_closes_total', { code: 'application' }) ?? 0;
    const kicks = before.value('rws_closes_total', { code: '4003' }) ?? 0;
    for (let code = 3000; code < 3070; code++) {
      const client = await TestClient.ready(url);
      client.close(code);
      expect((await client.closed()).code).toBe(code);
    }
    await kick(url);
    const after = await scrapeUntil((now) => now.value('rws_closes_total', { code: '4003' }) === kicks + 1, "the server's 4003 counted by its code");
    expect(after.value('rws_closes_total', { code: 'application' })).toBe(application + 70);
    expect(after.value('rws_closes_total', { code: '3000' })).toBeUndefined();
    expect(after.value('rws_closes_total', { code: 'other' })).toBeUndefined();
  });

  it('closes `ws` makes itself over a bad frame count by the code it sent: 1009 too big, 1007 bad UTF-8', async () => {
    t = await startApp({ maxPayloadBytes: 1024 }, [MetricsGateway]);
    const url = t.wsUrl('/ws');
    const before = await scrape();
    const count = (scrape: Scrape, code: string): number => scrape.value('rws_closes_total', { code }) ?? 0;
    const tooBig = await TestClient.ready(url);
    clients.push(tooBig);
    tooBig.raw.send('x'.repeat(2000));
    expect((await tooBig.closed()).code).toBe(1009);
    const badText = await TestClient.ready(url);
    clients.push(badText);
    badText.raw.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await badText.closed()).code).toBe(1007);
    const after = await scrapeUntil((now) => count(now, '1007') === count(before, '1007') + 1, 'the 1007 counted');
    expect(count(after, '1009')).toBe(count(before, '1009') + 1);
    expect(count(after, '1006')).toBe(count(before, '1006'));
  });
});
