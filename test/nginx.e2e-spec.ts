/**
 * deploy/nginx.conf with a real nginx (Debian's /usr/sbin/nginx; .ci/run installs it) in front of
 * two instances of the sample chat (child processes on the library compiled into a private
 * directory) sharing the real Redis, started by the same launcher as `npm run start:cluster`
 * (scripts/cluster/cluster.mjs). nginx runs as a child process in a temporary prefix.
 *
 * Clients bind to distinct loopback addresses (127.0.0.2, 127.0.1.x …) while nginx reaches the
 * instances from 127.0.0.1, so the address an instance counts tells a real client address from
 * the proxy's.
 */
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { WebSocket } from 'ws';
import { ReliableWsClient } from '../lib/client/index.js';
import { DEFAULT_OPTIONS } from '../lib/reliable-ws.options.js';
import { CLIENT_BUNDLE, CLIENT_DIR } from '../sample/app.module.js';
import { startChatLoad, type ChatLoadReport } from '../scripts/cluster/chat-load.mjs';
import { freePort, getJson, NGINX_BIN, NGINX_CONF, renderNginxConf, startCluster, startNginx, type Cluster, type Instance, type RestartStep } from '../scripts/cluster/cluster.mjs';
import { ReliableGateway, SessionRegistry } from '../lib/index.js';
import { startApp } from './support/app.js';
import { buildLibrary, type BuiltLibrary } from './support/build-lib.js';
import { launchChromium } from './support/chromium.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { Swarm } from './support/swarm.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient, upgradeStatus } from './support/ws-client.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Per instance, per client address; small so that the test can reach it. */
const CAP = 2;

describe('behind nginx (deploy/nginx.conf): two instances of the sample, Redis, trustProxy: 1', () => {
  let lib: BuiltLibrary;
  let entry: string;
  let cluster: Cluster | undefined;
  const clients: TestClient[] = [];

  /** An `rws.v1` client of the sample through nginx from `localAddress`; resolves after `$ready` and `welcome`. */
  async function chat(localAddress: string, headers: Record<string, string> = {}): Promise<TestClient> {
    const client = new TestClient(cluster!.wsUrl, 'rws.v1', { localAddress, headers });
    clients.push(client);
    await client.open();
    client.send({ event: '$hello', data: {} });
    await withInstanceOutput(client.next((f) => f.event === '$ready'));
    await withInstanceOutput(client.next((f) => f.event === 'welcome'));
    return client;
  }

  /** What the instances printed last, for a failure message. */
  function instanceOutput(instances: Instance[] = cluster?.instances ?? []): string {
    return instances.map((i) => `--- ${i.name} (pid ${i.pid}), last output:\n${i.output().slice(-4000)}`).join('\n');
  }

  /** Rejects as `promise` does, with what the instances and nginx printed added to the message. */
  function withInstanceOutput<T>(promise: Promise<T>): Promise<T> {
    return promise.catch((error: Error) => {
      throw new Error(`${error.message}\n${instanceOutput()}\n--- nginx error log:\n${cluster?.nginx.errorLog().slice(-2000)}`);
    });
  }

  /** `connections` of each instance, asked directly (not through nginx). */
  async function connectionsPerInstance(): Promise<number[]> {
    return Promise.all(cluster!.instances.map(async (i) => (await getJson(i.health))?.body?.connections ?? -1));
  }

  beforeAll(async () => {
    if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} is missing: apt-get install -y nginx (.ci/run does)`);
    // The page imports the client bundle from dist/browser (npm test builds it first; a lone run may not have).
    if (!existsSync(join(CLIENT_DIR, CLIENT_BUNDLE))) {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle-browser.mjs')], { stdio: 'ignore', timeout: 60000 });
    }
    lib = await buildLibrary(); // lib/ and sample/, compiled into a private directory
    const outDir = dirname(dirname(lib.indexJs));
    cpSync(join(ROOT, 'sample', 'public'), join(outDir, 'sample', 'public'), { recursive: true });
    entry = join(outDir, 'sample', 'main.js');
    cluster = await startCluster({
      entry,
      instances: 2,
      redisUrl: REDIS_URL,
      channelPrefix: uniquePrefix('nginx'),
      env: { MAX_CONNECTIONS_PER_IP: String(CAP) }, // TRUST_PROXY=1 is the launcher's
    });
  }, 180000);

  afterEach(() => {
    for (const c of clients.splice(0)) c.terminate();
  });

  afterAll(async () => {
    const ended = await cluster?.stop();
    lib?.remove();
    // the instances drained and exited on their SIGTERM, nobody needed a SIGKILL
    expect(ended?.filter((e) => 'killed' in e && e.killed)).toEqual([]);
  }, 60000);

  it('the shipped file: upgrade headers, Host $http_host, X-Forwarded-For, a read timeout above the heartbeat, a health location', () => {
    const conf = readFileSync(NGINX_CONF, 'utf8');
    const { intervalMs, timeoutMs } = DEFAULT_OPTIONS.heartbeat;
    const readTimeouts = [...conf.matchAll(/^\s*proxy_read_timeout (\d+)s;/gm)].map((m) => Number(m[1]) * 1000);
    expect(readTimeouts[0]).toBeGreaterThan(intervalMs + timeoutMs); // the WebSocket location's
    expect(conf).toMatch(/map \$http_upgrade \$connection_upgrade/);
    expect(conf).toMatch(/^\s*proxy_set_header Connection \$connection_upgrade;/m);
    expect(conf).not.toMatch(/^\s*proxy_set_header Host \$host;/m);
    expect(conf).toMatch(/^\s*location = \/health\/ws \{/m);
    // the placeholders the launcher replaces, as the file's header says
    const rendered = renderNginxConf(conf, { listen: '127.0.0.1:1234', upstreams: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'] });
    expect(rendered).toMatch(/^\s*listen 127\.0\.0\.1:1234;/m);
    expect([...rendered.matchAll(/^\s*server (127\.0\.0\.1:\d+)/gm)].map((m) => m[1])).toEqual(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']);
    expect(rendered.replace(/#.*$/gm, '')).not.toMatch(/300[12]|8080/); // comments aside
  });

  it('ws clients work through nginx across both instances; the browser Origin passes the same-origin check, a foreign one gets 403', async () => {
    const health = await getJson(`${cluster!.url}/health/ws`);
    expect(health).toEqual({ status: 200, body: { status: 'ok', connections: expect.any(Number) } });

    // As a browser on the page would: Origin = the address nginx is reached at (port included).
    const four = await Promise.all(['127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'].map((a) => chat(a, { Origin: cluster!.url })));
    // round robin: both instances have some of them (so the line below crosses Redis)
    const perInstance = await connectionsPerInstance();
    expect(perInstance.every((n) => n >= 1)).toBe(true);
    expect(perInstance.reduce((a, b) => a + b)).toBe(4);

    expect(await four[0].request('say', { room: 'lobby', text: 'through nginx' }, 1)).toEqual({ event: 'say', data: { ok: true }, ref: 1 });
    for (const c of four) {
      expect((await c.next((f) => f.event === 'said')).data).toMatchObject({ room: 'lobby', text: 'through nginx' });
    }

    expect(await upgradeStatus(cluster!.wsUrl, { headers: { Origin: 'http://elsewhere.example' } })).toBe(403);
    // `$host` would have dropped the port: the same origin on another port is another origin
    expect(await upgradeStatus(cluster!.wsUrl, { headers: { Origin: 'http://127.0.0.1' } })).toBe(403);
  });

  it('trustProxy: 1 counts the real client address (the one nginx saw), not the proxy and not a forged X-Forwarded-For', async () => {
    // From 127.0.0.2, each attempt with another forged X-Forwarded-For: the cap still counts
    // 127.0.0.2, so exactly CAP per instance get through (round robin reaches both instances
    // at least CAP times in 8 attempts), the rest 429.
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(
        await chat('127.0.0.2', { 'X-Forwarded-For': `203.0.113.${i + 1}` }).then(
          () => 'open',
          (error: Error) => error.message,
        ),
      );
    }
    expect(outcomes.filter((o) => o === 'open')).toHaveLength(2 * CAP);
    expect(outcomes.filter((o) => o !== 'open')).toEqual(Array(8 - 2 * CAP).fill('HTTP 429'));
    await waitUntil(async () => JSON.stringify(await connectionsPerInstance()) === JSON.stringify([CAP, CAP]), {
      timeoutMs: 5000,
      what: `${CAP} connections on each instance`,
    });

    // Another user is not affected (every user would be, had the instances counted nginx's 127.0.0.1).
    const other = await Promise.all([chat('127.0.0.3'), chat('127.0.0.3')]);
    expect(await other[0].request('say', { room: 'lobby', text: 'still room for me' }, 1)).toMatchObject({ data: { ok: true } });
  });

  it('the sample page works through nginx in Chromium, with a Node client on the other side', async () => {
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await browser.newPage();
      page.setDefaultTimeout(10000);
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${cluster!.url}/`);
      await page.waitForSelector('#state[data-state="open"]');
      await page.waitForSelector('#rooms li[data-room="lobby"] .select[aria-current="true"]');

      const node = await chat('127.0.0.8');
      await page.fill('#text', 'hello from chromium via nginx');
      await page.press('#text', 'Enter');
      await page.waitForSelector('li.said[data-room="lobby"]:has-text("hello from chromium via nginx")');
      expect((await node.next((f) => f.event === 'said')).data).toMatchObject({ text: 'hello from chromium via nginx' });

      await node.request('say', { room: 'lobby', text: 'hello from node via nginx' }, 1);
      await page.waitForSelector('li.said[data-room="lobby"]:has-text("hello from node via nginx")');
      expect(errors).toEqual([]);
    } finally {
      await browser?.close().catch(() => undefined);
    }
  }, 60000);

  it('a rolling restart (SIGTERM of one instance, then the other) moves every client to the other instance: 0 lost, 0 duplicated', async () => {
    const CLIENTS = 12;
    const load = await startChatLoad({
      url: cluster!.wsUrl,
      ReliableWsClient,
      WebSocket,
      clients: CLIENTS,
      everyMs: 100,
      localAddress: (i) => `127.0.1.${i + 1}`, // one address each, like real users (and below the cap of 2)
    });
    let steps: RestartStep[] = [];
    const stopped = [...cluster!.instances]; // the rolling restart replaces them
    let report: ChatLoadReport;
    const saidAfterStep: number[] = [];
    try {
      await sleep(1500);
      const before = load.confirmed();
      steps = await within(
        cluster!.rollingRestart({ pauseMs: 1500, onStep: () => saidAfterStep.push(load.confirmed()) }),
        90000,
        'the rolling restart',
      );
      saidAfterStep.unshift(before);
      await sleep(1000);
    } finally {
      report = await load.stop({ settleMs: 15000 });
    }

    // each instance drained and exited on its own SIGTERM (no SIGKILL)
    if (steps.some((s) => s.ended.signal !== 'SIGTERM')) console.error(`an instance did not end on its SIGTERM:\n${instanceOutput(stopped)}`);
    expect(steps.map((s) => ({ instance: s.instance, ended: s.ended }))).toEqual([
      { instance: 'app-1', ended: { code: null, signal: 'SIGTERM', killed: false } },
      { instance: 'app-2', ended: { code: null, signal: 'SIGTERM', killed: false } },
    ]);
    // the clients kept saying lines during each restart
    expect(saidAfterStep[1]).toBeGreaterThan(saidAfterStep[0]);
    expect(saidAfterStep[2]).toBeGreaterThan(saidAfterStep[1]);

    expect({ lost: report.lost, duplicated: report.duplicated, outOfOrder: report.outOfOrder }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(report.requestErrors).toEqual([]);
    expect(report.failures).toEqual([]);
    // Independently of the report: every client got every answered line exactly once.
    const said = load.records.flatMap((r) => r.said).sort();
    expect(said.length).toBeGreaterThan(CLIENTS * 20);
    for (const record of load.records) expect([...record.received].sort()).toEqual(said);
    // Every client was on an instance that went away at some point, and resumed its session on the other.
    for (const record of load.records) {
      expect(record.closes).toContain(1001);
      expect(record.readies.length).toBeGreaterThanOrEqual(2);
      expect(record.readies.slice(1)).toEqual(record.readies.slice(1).map(() => ({ resumed: true, missed: false })));
    }
    await waitUntil(async () => (await connectionsPerInstance()).every((n) => n === 0), { timeoutMs: 5000, what: 'no connections left' });
  }, 150000);

  it('`npm run start:cluster` (scripts/cluster/start-cluster.mjs): prints the URL, serves the page, stops everything on SIGINT', async () => {
    const port = await freePort();
    const script = spawn(
      process.execPath,
      [join(ROOT, 'scripts', 'cluster', 'start-cluster.mjs'), '--port', String(port), '--entry', entry, '--quiet'],
      // its own process group, so that a last-resort SIGKILL below takes its children along
      { env: { ...process.env, REDIS_URL, CHANNEL_PREFIX: uniquePrefix('nginx-script') }, stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    script.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    script.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((done) => script.once('exit', (code) => done(code)));
    try {
      await waitUntil(() => out.includes(`open http://127.0.0.1:${port}/`), { timeoutMs: 60000, intervalMs: 100, what: 'the URL' }).catch(
        (error: Error) => {
          throw new Error(`${error.message}; output:\n${out}`);
        },
      );
      const instancePorts = /ports ([\d, ]+)\)/.exec(out)![1].split(', ').map(Number);
      expect(instancePorts).toHaveLength(2);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Reliable WS chat</title>');

      script.kill('SIGINT');
      expect(await within(exited, 30000, 'start-cluster to exit')).toBe(0);
      expect(out).toContain('[cluster] stopped');
      // nothing is left listening: neither nginx nor the instances
      for (const p of [port, ...instancePorts]) expect(await getJson(`http://127.0.0.1:${p}/health/ws`, 1000)).toBeUndefined();
    } finally {
      if (script.exitCode === null && script.signalCode === null) {
        script.kill('SIGINT');
        await within(exited, 30000, 'start-cluster to exit').catch(() => process.kill(-script.pid!, 'SIGKILL'));
      }
    }
  }, 90000);
});

@ReliableGateway({ path: '/ws' })
class LoadGateway {}

describe('deploy/nginx.conf under load', () => {
  it('carries 5,000 WebSocket clients to one instance (each takes two connections of an nginx worker)', async () => {
    const CLIENTS = 5000;
    const app = await startApp({ allowedOrigins: '*', maxConnectionsPerIp: 2 * CLIENTS, trustProxy: 1 }, [LoadGateway]);
    const nginx = await startNginx({ port: await freePort(), upstreams: [`127.0.0.1:${app.port}`] });
    const swarms = [0, 1].map(() => new Swarm(`ws://127.0.0.1:${nginx.port}/ws`, CLIENTS / 2, { concurrency: 100, lifetimeMs: 120_000 }));
    try {
      const opened = await Promise.all(swarms.map((swarm) => swarm.waitFor('opened', 90_000)));
      const failed = opened.reduce((sum, report) => sum + (report.failed ?? 0), 0);
      if (failed > 0) throw new Error(`${failed} of ${CLIENTS} failed (${opened.flatMap((r) => r.errors ?? []).slice(0, 3).join('; ')}); nginx: ${nginx.errorLog().slice(-600)}`);
      expect(app.app.get(SessionRegistry).connectionCount).toBe(CLIENTS);
    } finally {
      await Promise.all(swarms.map((swarm) => swarm.stop()));
      await nginx.stop();
      await app.close();
    }
  }, 150_000);
});
