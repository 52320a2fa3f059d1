// Several instances of an app behind a real nginx run from deploy/nginx.conf, all child processes
// of the caller: used by `npm run start:cluster`, `npm run cluster:rolling-restart` and
// test/nginx.e2e-spec.ts. Plain ESM JavaScript (types in cluster.d.mts) so that it runs without
// a build step. nginx runs in a temporary prefix (its own pid file, logs and temp dirs), never as
// a system service; every process started here is stopped by `stop()`, and killed if the calling
// process exits first.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const NGINX_CONF = join(ROOT, 'deploy', 'nginx.conf');
export const NGINX_BIN = process.env.NGINX_BIN || '/usr/sbin/nginx';
export const SAMPLE_ENTRY = join(ROOT, 'dist', 'sample', 'main.js');

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// ---------------------------------------------------------------------------------------------
// The config

/**
 * deploy/nginx.conf with its placeholders replaced (the file's header lists them):
 * `listen 8080;` by `listen <listen>;`, the `server 127.0.0.1:3001/3002 …;` lines of the upstream
 * by one line per address in `upstreams` (with the parameters of the 3001 line), and the http
 * block gets an access log and temp paths relative to the nginx prefix (`-p`).
 */
export function renderNginxConf(template, { listen, upstreams }) {
  if (!Array.isArray(upstreams) || upstreams.length === 0) throw new Error('renderNginxConf: no upstreams');
  const once = (text, pattern, what) => {
    const found = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`)) ?? [];
    if (found.length !== 1) throw new Error(`deploy/nginx.conf: expected exactly one ${what}, found ${found.length}`);
  };
  once(template, /^\s*listen 8080;/m, '`listen 8080;`');
  once(template, /^\s*http \{/m, '`http {`');
  once(template, /^\s*server 127\.0\.0\.1:3001\b[^;]*;/m, '`server 127.0.0.1:3001 …;` line');
  once(template, /^\s*server 127\.0\.0\.1:3002\b[^;]*;/m, '`server 127.0.0.1:3002 …;` line');
  const first = /^(\s*)server 127\.0\.0\.1:3001\b([^;]*);/m.exec(template);
  const [, indent, parameters] = first;
  const servers = upstreams.map((address) => `${indent}server ${address}${parameters};`).join('\n');
  return template
    .replace(/^\s*listen 8080;/m, (line) => line.replace('8080', listen))
    .replace(/^\s*server 127\.0\.0\.1:3002\b[^;]*;\n/m, '')
    .replace(/^\s*server 127\.0\.0\.1:3001\b[^;]*;/m, servers)
    .replace(
      /^(\s*)http \{/m,
      (line, pad) =>
        `${line}\n${pad}    access_log logs/access.log;\n` +
        ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${pad}    ${kind}_temp_path temp/${kind};`).join('\n'),
    );
}

// ---------------------------------------------------------------------------------------------
// Processes

const running = new Set();
let guardInstalled = false;

/** Kills what is still running when the calling process exits (nginx's master gets SIGTERM so that it takes its workers along). */
function track(child, exitSignal) {
  if (!guardInstalled) {
    guardInstalled = true;
    process.on('exit', () => {
      for (const [proc, signal] of running) {
        try {
          proc.kill(signal);
        } catch {
          // gone already
        }
      }
    });
  }
  const entry = [child, exitSignal];
  running.add(entry);
  child.once('exit', () => running.delete(entry));
}

function exitOf(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
}

/** Sends `signal`, waits at most `timeoutMs` for the exit, then SIGKILL. Resolves with how it ended. */
async function stopChild(child, signal, timeoutMs) {
  const exited = exitOf(child);
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  let timer;
  const late = new Promise((done) => (timer = setTimeout(() => done('late'), timeoutMs)));
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (outcome !== 'late') return { ...outcome, killed: false };
  child.kill('SIGKILL');
  return { ...(await exited), killed: true };
}

/** Keeps the last `max` characters a child wrote; `onLine` sees each line. */
function collectOutput(child, onLine, max = 200_000) {
  let text = '';
  let partial = '';
  const take = (chunk) => {
    const s = chunk.toString();
    text = (text + s).slice(-max);
    if (!onLine) return;
    const lines = (partial + s).split('\n');
    partial = lines.pop();
    for (const line of lines) onLine(line);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return () => text;
}

/** A TCP port free on 127.0.0.1 right now (the kernel's pick). */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

function canConnect(port, host = '127.0.0.1', timeoutMs = 500) {
  return new Promise((done) => {
    const socket = createConnection({ port, host });
    const timer = setTimeout(() => finish(false), timeoutMs);
    const finish = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      done(ok);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** GET `url` → `{ status, body }` (body parsed as JSON when it is), or undefined when nothing answers. */
export async function getJson(url, timeoutMs = 2000) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body };
  } catch {
    return undefined;
  }
}

/** Polls `probe` every `intervalMs` until it returns a truthy value or `timeoutMs` passed (then throws). */
async function waitFor(probe, { timeoutMs, intervalMs = 50, what, alive }) {
  const deadline = Date.now() + timeoutMs;
  for (let probes = 0; probes <= Math.ceil(timeoutMs / intervalMs); probes++) {
    const value = await probe();
    if (value) return value;
    const dead = alive?.();
    if (dead) throw new Error(`${what}: ${dead}`);
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * nginx from `template` (default deploy/nginx.conf), listening on 127.0.0.1:`port` and proxying to
 * `upstreams` ('127.0.0.1:3001', …), as a child process with a fresh temporary prefix
 * (`nginx -p <prefix> -c nginx.conf -g 'daemon off; pid …;'`). Resolves once it accepts connections.
 */
export async function startNginx({ port, upstreams, template = readFileSync(NGINX_CONF, 'utf8'), onLine, keepPrefix = false }) {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} is missing: apt-get install -y nginx (.ci/run does), or set NGINX_BIN`);
  const prefix = mkdtempSync(join(tmpdir(), 'rws-nginx-'));
  // Run as root, nginx's workers switch to an unprivileged user that must reach the temp dirs.
  chmodSync(prefix, 0o755);
  mkdirSync(join(prefix, 'logs'));
  mkdirSync(join(prefix, 'temp'));
  writeFileSync(join(prefix, 'nginx.conf'), renderNginxConf(template, { listen: `127.0.0.1:${port}`, upstreams }));
  const args = ['-p', `${prefix}/`, '-c', 'nginx.conf', '-e', 'logs/error.log', '-g', 'daemon off; pid nginx.pid;'];
  const removePrefix = () => keepPrefix || rmSync(prefix, { recursive: true, force: true });

  const check = spawnSync(NGINX_BIN, [...args, '-t'], { encoding: 'utf8', timeout: 10000 });
  if (check.status !== 0) {
    removePrefix();
    throw new Error(`nginx -t failed:\n${check.stderr}${check.stdout}`);
  }
  const child = spawn(NGINX_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child, 'SIGTERM');
  const output = collectOutput(child, onLine);
  const errorLog = () => {
    try {
      return readFileSync(join(prefix, 'logs', 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  try {
    await waitFor(() => canConnect(port), {
      timeoutMs: 10000,
      what: `nginx on 127.0.0.1:${port}`,
      alive: () => (child.exitCode !== null || child.signalCode !== null) && `nginx exited early:\n${output()}${errorLog()}`,
    });
  } catch (error) {
    await stopChild(child, 'SIGTERM', 5000);
    removePrefix();
    throw error;
  }
  let stopped;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    prefix,
    pid: child.pid,
    output,
    errorLog,
    /** Fast shutdown (SIGTERM: nginx closes its connections, WebSockets included), then the prefix goes. */
    stop: () =>
      (stopped ??= stopChild(child, 'SIGTERM', 5000).then((outcome) => {
        removePrefix();
        return outcome;
      })),
  };
}

/**
 * One app instance: `node <entry>` with `PORT=<port>`, `HOST=127.0.0.1` and `env`, as a child
 * process. Resolves once its health endpoint (`healthPath`) answers 200.
 */
export async function startInstance({ entry, port, env = {}, name = `app:${port}`, onLine, healthPath = '/health/ws', timeoutMs = 30000 }) {
  const child = spawn(process.execPath, [entry], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child, 'SIGKILL');
  const output = collectOutput(child, onLine);
  const exited = exitOf(child);
  const health = `http://127.0.0.1:${port}${healthPath}`;
  try {
    await waitFor(async () => (await getJson(health, 1000))?.status === 200, {
      timeoutMs,
      intervalMs: 100,
      what: `${name} to answer 200 on ${health}`,
      alive: () => (child.exitCode !== null || child.signalCode !== null) && `${name} exited early:\n${output()}`,
    });
  } catch (error) {
    await stopChild(child, 'SIGKILL', 5000);
    throw error;
  }
  return {
    name,
    port,
    pid: child.pid,
    health,
    output,
    exited,
    /** Sends `signal` (graceful: SIGTERM), SIGKILL after `timeoutMs`; resolves with how it ended. */
    stop: (signal = 'SIGTERM', timeoutMs = 30000) => stopChild(child, signal, timeoutMs),
  };
}

/**
 * `instances` copies of `entry` (default: the built sample, dist/sample/main.js) on free ports,
 * sharing `redisUrl` and `channelPrefix`, with `TRUST_PROXY=1`, behind nginx from
 * deploy/nginx.conf on `port` (default: a free one). `log(line)` gets every line they print,
 * prefixed with its source.
 */
export async function startCluster({
  entry = SAMPLE_ENTRY,
  instances = 2,
  port,
  redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  channelPrefix = `rws-cluster-${process.pid}-${Date.now()}`,
  env = {},
  template,
  log,
} = {}) {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  if (!Number.isInteger(instances) || instances < 1) throw new Error(`instances must be a whole number >= 1, not ${instances}`);
  const ports = [];
  while (ports.length < instances) {
    const candidate = await freePort();
    if (!ports.includes(candidate) && candidate !== port) ports.push(candidate);
  }
  const instanceEnv = { REDIS_URL: redisUrl, CHANNEL_PREFIX: channelPrefix, TRUST_PROXY: '1', ...env };
  const startOne = (i) =>
    startInstance({
      entry,
      port: ports[i],
      env: instanceEnv,
      name: `app-${i + 1}`,
      onLine: log && ((line) => log(`[app-${i + 1}] ${line}`)),
    });

  const members = [];
  let nginx;
  let stopped;
  const stop = () =>
    (stopped ??= (async () => {
      const outcomes = await Promise.allSettled([...members.map((m) => m?.stop('SIGTERM', 20000)), nginx?.stop()]);
      return outcomes.map((o) => (o.status === 'fulfilled' ? o.value : { error: String(o.reason) }));
    })());
  try {
    const started = await Promise.allSettled(ports.map((_, i) => startOne(i)));
    started.forEach((s, i) => (members[i] = s.status === 'fulfilled' ? s.value : undefined));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    nginx = await startNginx({
      port: port ?? (await freePort()),
      upstreams: ports.map((p) => `127.0.0.1:${p}`),
      template,
      onLine: log && ((line) => log(`[nginx] ${line}`)),
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url: nginx.url,
    wsUrl: `${nginx.url.replace(/^http/, 'ws')}/ws`,
    port: nginx.port,
    nginx,
    channelPrefix,
    /** The running instances (index i is `app-<i+1>`; a restart replaces its entry). */
    instances: members,
    /**
     * Graceful restart of instance `i`: SIGTERM (it drains: 503 to new handshakes, 1001 to its
     * clients, sessions handed over through Redis), wait for its exit, start it again on the
     * same port, wait for its health. Resolves with how the old process ended and the timings.
     */
    async restart(i) {
      const old = members[i];
      const startedAt = Date.now();
      const ended = await old.stop('SIGTERM', 30000);
      const exitedAt = Date.now();
      members[i] = await startOne(i);
      return { instance: old.name, ended, drainMs: exitedAt - startedAt, downMs: Date.now() - exitedAt };
    },
    /**
     * Restarts every instance in turn (see `restart`), waiting `pauseMs` after each is healthy
     * again before the next one goes.
     */
    async rollingRestart({ pauseMs = 1000, onStep } = {}) {
      const steps = [];
      for (let i = 0; i < members.length; i++) {
        const step = await this.restart(i);
        steps.push(step);
        onStep?.(step);
        await sleep(pauseMs);
      }
      return steps;
    },
    /** Stops every instance (SIGTERM) and nginx; idempotent. */
    stop,
  };
}
