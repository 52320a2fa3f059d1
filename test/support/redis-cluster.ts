import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { adminConnection, freePort, killOnExit, pingPort } from './redis.js';
import { waitUntil, within } from './wait.js';

const run = promisify(execFile);

const MASTERS = 3;

/** A port for a node and one for its cluster bus, all different. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; attempt < 10 * count && ports.size < count; attempt++) ports.add(await freePort(20000, 12000));
  if (ports.size < count) throw new Error(`found only ${ports.size} of ${count} free ports`);
  return [...ports];
}

/**
 * A Redis Cluster of three masters (no replicas) on free local ports, without persistence, for
 * one test file: `redis-server --cluster-enabled yes` three times, joined by
 * `redis-cli --cluster create`. Its processes are killed if the test process dies.
 */
export class ThrowawayRedisCluster {
  private readonly children: ChildProcess[] = [];
  private dir: string | undefined;
  /** One plain connection per master, for CLUSTER and CLIENT commands. */
  readonly admins: Redis[] = [];
  ports: number[] = [];

  get nodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  /** Starts the nodes, creates the cluster and waits (bounded) until every node says `cluster_state:ok`. */
  async start(timeoutMs = 20000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.dir = await mkdtemp(join(tmpdir(), 'rws-cluster-'));
    const ports = await freePorts(2 * MASTERS);
    this.ports = ports.slice(0, MASTERS);
    this.ports.forEach((port, i) => this.spawnNode(port, ports[MASTERS + i]!));
    for (const port of this.ports) {
      await waitUntil(() => pingPort(port, 200), { timeoutMs: 5000, intervalMs: 50, what: `cluster node on port ${port}` });
    }
    await run(
      'redis-cli',
      ['--cluster', 'create', ...this.ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: Math.max(1000, deadline - Date.now()) },
    );
    for (const port of this.ports) this.admins.push(await adminConnection(`redis://127.0.0.1:${port}`));
    await waitUntil(async () => (await Promise.all(this.admins.map(clusterOk))).every(Boolean), {
      timeoutMs: Math.max(1000, deadline - Date.now()),
      intervalMs: 100,
      what: 'cluster_state:ok on every node',
    });
  }

  /** `CLIENT KILL TYPE pubsub` on every master; returns how many connections were killed. */
  async killPubsubClients(): Promise<number> {
    const killed = await Promise.all(this.admins.map((admin) => admin.client('KILL', 'TYPE', 'pubsub')));
    return killed.reduce((sum: number, count) => sum + Number(count), 0);
  }

  /** How many connections in pub/sub mode each master has. */
  async pubsubClients(): Promise<number[]> {
    const lists = await Promise.all(this.admins.map((admin) => admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub') as Promise<string>));
    return lists.map((list) => list.split('\n').filter((line) => line.trim()).length);
  }

  /** The port of the master serving a key's (or a sharded channel's) slot. */
  async masterOf(key: string): Promise<number> {
    const admin = this.admins[0]!;
    const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', key));
    const ranges = (await admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
    const range = ranges.find(([first, last]) => slot >= first && slot <= last);
    if (!range) throw new Error(`no master serves slot ${slot}`);
    return Number(range[2][1]);
  }

  /** The admin connection of the master serving a key's (or a sharded channel's) slot. */
  async adminOf(key: string): Promise<Redis> {
    return this.adminAt(await this.masterOf(key));
  }

  private adminAt(port: number): Redis {
    return this.admins[this.ports.indexOf(port)]!;
  }

  /** Moves a key's slot, with its keys, to another master, the way `redis-cli --cluster reshard` does. */
  async moveSlot(key: string, toPort: number): Promise<void> {
    const slot = Number(await this.admins[0]!.call('CLUSTER', 'KEYSLOT', key));
    const from = this.adminAt(await this.masterOf(key));
    const to = this.adminAt(toPort);
    const [fromId, toId] = await Promise.all([from, to].map((admin) => admin.call('CLUSTER', 'MYID')));
    await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId as string);
    await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId as string);
    for (let batch = 0; batch < 100; batch++) {
      const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await from.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys);
    }
    for (const admin of [to, from, ...this.admins.filter((admin) => admin !== to && admin !== from)]) {
      await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId as string);
    }
  }

  /** Kills every node and removes their files. */
  async stop(timeoutMs = 5000): Promise<void> {
    for (const admin of this.admins.splice(0)) admin.disconnect();
    await Promise.all(this.children.splice(0).map((child) => killChild(child, timeoutMs)));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  private spawnNode(port: number, busPort: number): void {
    const dir = this.dir!;
    const child = spawn(
      'redis-server',
      [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-port', String(busPort),
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
      ],
      { stdio: 'ignore' },
    );
    child.on('error', () => undefined); // a missing redis-server shows as the node never answering PING
    killOnExit(child);
    this.children.push(child);
  }
}

async function clusterOk(admin: Redis): Promise<boolean> {
  const info = (await admin.call('CLUSTER', 'INFO')) as string;
  return info.includes('cluster_state:ok');
}

async function killChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await within(exited, timeoutMs, 'a cluster node to exit').catch(() => undefined);
}
