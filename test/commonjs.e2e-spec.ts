/**
 * A CommonJS app (test/support/cjs-app/app.cjs: `require('nestjs-reliable-ws')`, decorators
 * applied by hand) starts and serves a gateway through Node's require(esm), on the Nest of this run
 * (12, or 11 under scripts/test.mjs). The app lives in a throwaway directory outside the
 * repository, laid out as an installed app: its node_modules holds a copy of the built package
 * (package.json and dist/lib, so `require` goes through the package's `exports`) and links to the
 * Nest packages and the other dependencies. Needs `npm run build` (`npm test` runs it first).
 * require(esm) refuses a module graph with top-level await, so this also proves there is none.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function major(version: string): number {
  return Number(/\d+/.exec(version)?.[0]);
}

const rootDevDependencies = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies as Record<string, string>;
const NEST_MAJOR = Number(process.env.RWS_NEST_MAJOR ?? major(rootDevDependencies['@nestjs/core']!));
/** Where this run's Nest packages are installed. */
const NEST_MODULES = join(ROOT, NEST_MAJOR === 11 ? 'test/nest11/node_modules' : 'node_modules');
const NEST_PACKAGES = ['common', 'core', 'websockets', 'platform-ws', 'platform-express', 'terminus'];
const OTHER_PACKAGES = ['reflect-metadata', 'rxjs', 'ws', 'ioredis', 'class-validator', 'class-transformer'];

/** The app's environment: without the Nest 11 resolution hook of the test run, as a user runs it. */
function appEnv(): NodeJS.ProcessEnv {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').split(' ').filter((option) => option && !option.includes('nest11/register.mjs'));
  return { ...process.env, NODE_OPTIONS: nodeOptions.join(' ') };
}

describe(`a CommonJS app on Nest ${NEST_MAJOR}`, () => {
  let appDir: string;
  let child: ChildProcess | undefined;
  let output = '';
  const clients: TestClient[] = [];

  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist/lib/index.js'))) throw new Error('dist/lib is missing: run `npm run build` first');
    appDir = mkdtempSync(join(tmpdir(), 'rws-cjs-app-'));
    writeFileSync(join(appDir, 'package.json'), '{ "name": "cjs-app", "private": true, "type": "commonjs" }\n');
    cpSync(join(ROOT, 'test/support/cjs-app/app.cjs'), join(appDir, 'main.js'));
    const modules = join(appDir, 'node_modules');
    const installed = join(modules, 'nestjs-reliable-ws');
    mkdirSync(join(installed, 'dist'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'));
    cpSync(join(ROOT, 'dist/lib'), join(installed, 'dist/lib'), { recursive: true });
    mkdirSync(join(modules, '@nestjs'));
    for (const name of NEST_PACKAGES) symlinkSync(join(NEST_MODULES, '@nestjs', name), join(modules, '@nestjs', name), 'dir');
    for (const name of OTHER_PACKAGES) symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.terminate();
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolveExit) => child!.once('exit', resolveExit));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolveTimeout) => (timer = setTimeout(resolveTimeout, 10000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (appDir) rmSync(appDir, { recursive: true, force: true });
  });

  it('starts with require(esm), on this Nest, without an ExperimentalWarning, and serves the gateway', async () => {
    child = spawn(process.execPath, ['main.js'], { cwd: appDir, env: appEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const listening = await waitUntil(() => /LISTENING (\d+) (\S+)/.exec(output) ?? undefined, {
      timeoutMs: 30000,
      intervalMs: 50,
      what: 'the CommonJS app to listen',
    }).catch((error: Error) => {
      throw new Error(`${error.message}; app output:\n${output}`);
    });
    const port = Number(listening[1]);
    expect(major(listening[2]!)).toBe(NEST_MAJOR);

    const client = new TestClient(`ws://127.0.0.1:${port}/chat`, 'rws.v1');
    clients.push(client);
    await client.open();
    expect(client.raw.protocol).toBe('rws.v1');
    client.send({ event: '$hello', data: { token: 'let-me-in' } });
    const ready = await client.next((frame) => frame.event === '$ready');
    expect(ready.data).toMatchObject({ resumed: false, missed: false });

    // A handler with an injected service, @MessageBody, @ConnectedSocket and the principal.
    const reply = await client.request('say', { text: 'hi' }, 1);
    expect(reply).toEqual({ event: 'say', data: { greeting: 'hello Ada', text: 'hi' }, ref: 1 });
    // BroadcastService: a numbered push.
    const push = await client.next((frame) => frame.event === 'said');
    expect(push).toMatchObject({ data: { text: 'hi', by: 'u1' }, seq: expect.any(Number) });
    // The DTO, decorated with class-validator by hand, is validated.
    const refused = await client.request('say', { text: 42 }, 2);
    expect(refused).toMatchObject({
      event: '$error',
      data: { code: 'VALIDATION_FAILED', ref: 2, details: [expect.objectContaining({ property: 'text' })] },
    });

    expect(output).not.toMatch(/ExperimentalWarning|ERR_REQUIRE/);
  });

  it('requires the client and terminus entry points as well', async () => {
    const script = [
      "const client = require('nestjs-reliable-ws/client');",
      "const terminus = require('nestjs-reliable-ws/terminus');",
      'process.stdout.write(JSON.stringify([typeof client.ReliableWsClient, typeof terminus.ReliableWsHealthIndicator]));',
    ].join('\n');
    const stdout = await new Promise<string>((resolveRun, reject) => {
      execFile(process.execPath, ['-e', script], { cwd: appDir, env: appEnv(), timeout: 30000 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolveRun(out),
      );
    });
    expect(JSON.parse(stdout)).toEqual(['function', 'function']);
  });
});
