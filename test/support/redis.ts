import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { Redis } from 'ioredis';
import { waitUntil, within } from './wait.js';

/** The Redis the tests share. Never reconfigured by the tests. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let prefixes = 0;

/** A channel prefix no other test (or test process) uses. */
export function uniquePrefix(tag = 't'): string {
  prefixes += 1;
  return `${tag}-${process.pid}-${Date.now()}-${prefixes}`;
}

/** A plain admin connection (not a subscriber) for PUBSUB / CLIENT commands. */
export async function adminConnection(url = REDIS_URL): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => undefined);
  await redis.connect();
  return redis;
}

/** `PUBSUB NUMSUB channel` → number of subscribed connections. */
export async function numsub(admin: Redis, channel: string): Promise<number> {
  const reply = (await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

/** `PUBSUB SHARDNUMSUB channel` (Redis >= 7). */
export async function shardNumsub(admin: Redis, channel: string): Promise<number> {
  const reply = (await admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

/** Waits (bounded) until `probe()` returns the expected count. */
export async function waitForCount(probe: () => Promise<number>, expected: number, what: string, timeoutMs = 5000): Promise<void> {
  let last = -1;
  await waitUntil(
    async () => {
      last = await probe();
      return last === expected;
    },
    { timeoutMs, intervalMs: 20, what: `${what} to be ${expected}` },
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last value ${last})`);
  });
}

/** The major version of a Redis server (`INFO server`). */
export async function redisMajorVersion(admin: Redis): Promise<number> {
  const info = await admin.info('server');
  const match = /redis_version:(\d+)/.exec(info);
  return match ? Number(match[1]) : 0;
}

/** Lines of `CLIENT LIST` whose connection name is `name`. */
export async function clientsNamed(admin: Redis, name: string): Promise<string[]> {
  const list = (await admin.client('LIST')) as unknown as string;
  return list.split('\n').filter((line) => new RegExp(`(^| )name=${name}( |$)`).test(line));
}

// ---------------------------------------------------------------------------------------------
// Throwaway redis-server processes (never the shared one)

const started = new Set<ChildProcess>();
let guardInstalled = false;

/** Kills the child (SIGKILL) if the test process exits before it does. */
export function killOnExit(child: ChildProcess): void {
  installExitGuard();
  started.add(child);
  child.once('exit', () => started.delete(child));
}

function installExitGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('exit', () => {
    for (const child of started) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Resolves true when something answers `PING` with `+PONG` on the port. */
export function pingPort(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    let text = '';
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      text += data.toString();
      if (text.includes('\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text.startsWith('+PONG'));
      }
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** A port nothing listens on right now (checked by binding it). */
export async function freePort(from = 6390, span = 2000): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = from + Math.floor(Math.random() * span);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found');
}

/** A redis-server on 127.0.0.1:port, no persistence, owned by the test. */
export class ThrowawayRedis {
  private child: ChildProcess | undefined;

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server and waits (bounded) until it answers PING. */
  async start(timeoutMs = 5000): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
      { stdio: 'ignore' },
    );
    this.child = child;
    killOnExit(child);
    await waitUntil(() => pingPort(this.port, 200), { timeoutMs, intervalMs: 50, what: `redis-server on port ${this.port}` });
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server (SIGKILL) and waits (bounded) for it to exit and the port to be free. */
  async kill(timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await within(exited, timeoutMs, 'redis-server to exit').catch(() => undefined);
    await waitUntil(async () => !(await pingPort(this.port, 100)), { timeoutMs, intervalMs: 50, what: 'the port to be closed' });
  }
}
