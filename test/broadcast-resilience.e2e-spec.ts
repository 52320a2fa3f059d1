import type { INestApplication } from '@nestjs/common';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { BroadcastService, type BroadcastOptions, type ReliableWsOptions } from '../lib/index.js';
import type { TestApp } from './support/app.js';
import { captureLogger, createApp, startAppWithOptions, type CaptureLogger } from './support/app-with-logger.js';
import { BroadcastGateway, call, closeAll, connectPeer, pushesOf, waitForPushes, type Peer } from './support/broadcast-app.js';
import { encodeEnvelope } from '../lib/broadcast/broadcast-envelope.js';
import { publishSequenced } from '../lib/broadcast/redis-scripts.js';
import { broadcastLoop, expectExactlyOnceInOrder } from './support/broadcast-loop.js';
import { getHealth } from './support/health.js';
import {
  adminConnection,
  clientsNamed,
  freePort,
  numsub,
  pingPort,
  REDIS_URL,
  ThrowawayRedis,
  uniquePrefix,
  waitForCount,
} from './support/redis.js';
import { sleep, waitUntil, within } from './support/wait.js';
import type { TestClient } from './support/ws-client.js';

const CANARY_MS = 100;

interface Instance {
  app: TestApp;
  service: BroadcastService;
}

let server: ThrowawayRedis;
let serverAdmin: Redis | undefined;
const instances: Instance[] = [];
const clients: TestClient[] = [];
const looseApps: INestApplication[] = [];
const looseRedis: Redis[] = [];
let ids = 1;

function options(redis: BroadcastOptions['redis'], channelPrefix: string, extra: Partial<BroadcastOptions> = {}): ReliableWsOptions {
  return {
    heartbeat: { intervalMs: 60000, timeoutMs: 60000 },
    rateLimit: false,
    broadcast: { redis, channelPrefix, canaryIntervalMs: CANARY_MS, ...extra },
  };
}

async function instance(
  redis: BroadcastOptions['redis'],
  channelPrefix: string,
  logger: CaptureLogger | false = false,
  extra: Partial<BroadcastOptions> = {},
): Promise<Instance> {
  const app = await within(
    startAppWithOptions(options(redis, channelPrefix, extra), [BroadcastGateway], { logger }),
    15000,
    'starting an instance',
  );
  const created = { app, service: app.app.get(BroadcastService) };
  instances.push(created);
  return created;
}

async function peer(on: Instance): Promise<Peer> {
  const p = await connectPeer(on.app.wsUrl('/ws'));
  clients.push(p.client);
  return p;
}

async function ensureServerRunning(): Promise<void> {
  server.resume();
  if (!(await pingPort(server.port))) {
    await server.kill();
    await server.start();
  }
}

async function throwawayAdmin(): Promise<Redis> {
  serverAdmin?.disconnect();
  serverAdmin = await adminConnection(server.url);
  return serverAdmin;
}

beforeAll(async () => {
  server = new ThrowawayRedis(await freePort());
  await server.start();
});

afterEach(async () => {
  await ensureServerRunning();
  await closeAll(clients);
  await Promise.all(instances.splice(0).map((i) => within(i.app.close(), 15000, 'app.close()')));
  await Promise.all(looseApps.splice(0).map((app) => within(app.close(), 15000, 'app.close()').catch(() => undefined)));
  for (const redis of looseRedis.splice(0)) redis.disconnect();
  serverAdmin?.disconnect();
  serverAdmin = undefined;
});

afterAll(async () => {
  await server?.kill();
});

describe('Redis broadcast recovers from a dropped subscriber (CLIENT KILL TYPE pubsub)', () => {
  it('delivery from A to a client on B recovers within a few seconds, in order, without duplicates', async () => {
    const prefix = uniquePrefix('kill');
    const A = await instance(server.url, prefix);
    const B = await instance(server.url, prefix);
    const x = await peer(B);
    await call(x.client, 'join', { room: 'r' }, ids++);

    let sent = 0;
    let failures = 0;
    let stop = false;
    const loop = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        await A.service.toRoom('r', 'tick', i).catch(() => failures++);
        sent = i + 1;
        await sleep(10);
      }
    })();

    try {
      await waitForPushes(x.client, 'tick', 10, 5000);
      const admin = await throwawayAdmin();
      const killed = Number(await admin.client('KILL', 'TYPE', 'pubsub'));
      expect(killed).toBeGreaterThanOrEqual(2); // the subscribers of A and B
      const sentAtKill = sent;

      // ticks sent well after the kill reach the client again
      await waitUntil(() => pushesOf(x.client, 'tick').some((f) => (f.data as number) >= sentAtKill + 20), {
        timeoutMs: 8000,
        intervalMs: 20,
        what: `ticks sent after the kill (kill at tick ${sentAtKill})`,
      });
    } finally {
      stop = true;
      await within(loop, 5000, 'the sender loop');
    }

    const ticks = pushesOf(x.client, 'tick').map((f) => f.data as number);
    // in order, never twice (gaps while the subscriber was away are allowed)
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]).toBeGreaterThan(ticks[i - 1]);
    expect(failures).toBe(0); // the publisher connection was not killed

    // the room and the canary are resubscribed: health is ok again and new pushes arrive
    await waitUntil(async () => (await getHealth(B.app.httpUrl('/health/ws'))).status === 200, {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'B healthy again',
    });
    await A.service.toRoom('r', 'after', 1);
    await waitForPushes(x.client, 'after', 1);
  });
});

describe('a broadcast published twice (a command ioredis sent again after its reply was lost)', () => {
  it('reaches each client once: the same envelope through the publish script twice', async () => {
    const prefix = uniquePrefix('twice');
    const B = await instance(server.url, prefix);
    const x = await peer(B);
    const envelope = encodeEnvelope({ type: 'push', origin: 'elsewhere', id: 'elsewhere:1', event: 'twice', dataJson: '1', target: { kind: 'all' } });
    const admin = await throwawayAdmin();
    const bounds = { historySize: 1000, historyTtlMs: 300000 };
    await publishSequenced(admin, `${prefix}:all`, envelope, 'e1', bounds, false);
    await publishSequenced(admin, `${prefix}:all`, envelope, 'e1', bounds, false);
    await B.service.toAll('after', 2); // a barrier: B delivers in order
    await waitForPushes(x.client, 'after', 1);
    expect(pushesOf(x.client, 'twice')).toHaveLength(1);
  });

  it('CLIENT KILL TYPE normal every 10 ms while broadcasting: every resolved broadcast arrives once, in order', async () => {
    const prefix = uniquePrefix('kill-normal');
    const A = await instance(server.url, prefix);
    const B = await instance(server.url, prefix);
    const x = await peer(B);
    const loop = broadcastLoop((n) => A.service.toAll('tick', n), 1, 3000);
    const admin = await throwawayAdmin();
    try {
      for (let k = 0; k < 150; k++) {
        await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        await sleep(10);
      }
    } finally {
      await loop.stop();
    }
    await waitUntil(() => (pushesOf(x.client, 'tick').length >= loop.resolved.length ? true : undefined), {
      timeoutMs: 10000,
      what: `${loop.resolved.length} ticks`,
    });
    await sleep(300);
    expectExactlyOnceInOrder(pushesOf(x.client, 'tick').map((frame) => frame.data as number), loop.resolved);
  }, 30000);
});

describe('health reflects a subscriber that receives nothing', () => {
  it('a paused (SIGSTOP) Redis makes the canary late: 503 degraded with connections visible; SIGCONT brings back 200', async () => {
    const prefix = uniquePrefix('pause');
    const A = await instance(server.url, prefix);
    const x = await peer(A);
    const y = await peer(A);
    const ok = await getHealth(A.app.httpUrl('/health/ws'));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'ok', connections: 2 });

    server.pause();
    let degraded: { status: number; body: any } | undefined;
    try {
      degraded = await waitUntil(
        async () => {
          const health = await getHealth(A.app.httpUrl('/health/ws'));
          return health.status === 503 ? health : undefined;
        },
        { timeoutMs: 5000, intervalMs: 50, what: '503 while Redis is paused' },
      );
    } finally {
      server.resume();
    }
    expect(degraded.body).toMatchObject({ status: 'degraded', connections: 2 });

    const back = await waitUntil(
      async () => {
        const health = await getHealth(A.app.httpUrl('/health/ws'));
        return health.status === 200 ? health : undefined;
      },
      { timeoutMs: 5000, intervalMs: 50, what: '200 after SIGCONT' },
    );
    expect(back.body).toMatchObject({ status: 'ok', connections: 2 });
    expect(back.body.broadcast).toBeUndefined();

    // still delivering
    await A.service.toAll('still', 1);
    await waitForPushes(x.client, 'still', 1);
    await waitForPushes(y.client, 'still', 1);
  });
});

describe('app.close() while Redis does not answer', () => {
  it('resolves within the command timeout of each step: a paused (SIGSTOP) Redis is disconnected, not waited for', async () => {
    const app = await within(
      startAppWithOptions(
        { ...options(server.url, uniquePrefix('close-paused'), { commandTimeoutMs: 300 }), shutdown: { timeoutMs: 500 } },
        [BroadcastGateway],
        { logger: false },
      ),
      15000,
      'starting an instance',
    );
    const x = await connectPeer(app.wsUrl('/ws'));
    clients.push(x.client);
    server.pause();
    try {
      await within(app.close(), 8000, 'app.close() with Redis paused');
    } finally {
      server.resume();
    }
  });
});

describe('app.close() while Redis does not answer, with sessions to hand over', () => {
  it('hands over for at most shutdown.timeoutMs, then quits within broadcast.commandTimeoutMs (the README bound: 2 × timeoutMs + commandTimeoutMs)', async () => {
    const COMMAND_TIMEOUT_MS = 5000;
    const SHUTDOWN_TIMEOUT_MS = 500;
    const prefix = uniquePrefix('close-paused-handover');
    const owner = await within(
      startAppWithOptions(
        { ...options(server.url, prefix, { commandTimeoutMs: COMMAND_TIMEOUT_MS }), shutdown: { timeoutMs: SHUTDOWN_TIMEOUT_MS } },
        [BroadcastGateway],
        { logger: false },
      ),
      15000,
      'starting the owner',
    );
    looseApps.push(owner.app);
    await instance(server.url, prefix); // another instance: the owner's sessions are worth offering
    const x = await connectPeer(owner.wsUrl('/ws'), { resumable: true });
    clients.push(x.client);
    server.pause();
    try {
      await within(owner.close(), 2 * SHUTDOWN_TIMEOUT_MS + COMMAND_TIMEOUT_MS + 2000, 'app.close() with Redis paused');
    } finally {
      server.resume();
    }
  });
});

describe('Redis restarts under a running app', () => {
  it('publishing while Redis is down rejects and is logged; after a restart without data the sessions are closed 1012 and delivery resumes', async () => {
    const logger = captureLogger();
    const prefix = uniquePrefix('restart');
    const A = await instance(server.url, prefix, logger);
    const B = await instance(server.url, prefix, logger);
    const x = await peer(B);
    await call(x.client, 'join', { room: 'r' }, ids++);
    await A.service.toRoom('r', 'before', 1);
    await waitForPushes(x.client, 'before', 1);

    await server.kill();
    await sleep(200);

    // a push while Redis is down: the promise rejects, and the failure is logged
    const outcome = await within(
      A.service.toAll('down', 1).then(
        () => 'resolved',
        (error: unknown) => error,
      ),
      8000,
      'toAll while Redis is down',
    );
    expect(outcome).toBeInstanceOf(Error);
    await expect(within(A.service.toRoom('r', 'down', 2), 8000, 'toRoom while Redis is down')).rejects.toBeInstanceOf(Error);
    await waitUntil(() => logger.lines.some((line) => line.startsWith('error') && line.includes('publish') && line.includes(`${prefix}:`)), {
      timeoutMs: 2000,
      what: 'an error log line about the failed publish',
    }).catch(() => {
      throw new Error(`no error log about the failed publish; lines: ${JSON.stringify(logger.lines.slice(-20))}`);
    });

    // health shows the outage while the connections stay visible
    const degraded = await waitUntil(
      async () => {
        const health = await getHealth(B.app.httpUrl('/health/ws'));
        return health.status === 503 ? health : undefined;
      },
      { timeoutMs: 5000, intervalMs: 50, what: '503 while Redis is down' },
    );
    expect(degraded.body).toMatchObject({ status: 'degraded', connections: 1 });

    await server.start();

    // Redis came back without its data: what was published just before cannot be checked, so
    // x's session ends and its connection is closed with 1012 (its resume gets missed: true)
    expect((await x.client.closed(15000)).code).toBe(1012);
    const y = await peer(B);
    await call(y.client, 'join', { room: 'r' }, ids++);

    // delivery resumes without restarting the apps (bounded retries while ioredis reconnects)
    await waitUntil(
      async () => {
        await A.service.toRoom('r', 'after', 'y').catch(() => undefined);
        return pushesOf(y.client, 'after').length > 0;
      },
      { timeoutMs: 15000, intervalMs: 200, what: 'delivery after the Redis restart' },
    );
    const admin = await throwawayAdmin();
    expect(await numsub(admin, `${prefix}:room:r`)).toBe(1); // B resubscribed to the room
    expect(await numsub(admin, `${prefix}:all`)).toBe(2);
    await waitUntil(async () => (await getHealth(B.app.httpUrl('/health/ws'))).status === 200, {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'B healthy after the restart',
    });
    await waitUntil(async () => (await getHealth(A.app.httpUrl('/health/ws'))).status === 200, {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'A healthy after the restart',
    });
    // and the other direction
    const w = await peer(A);
    await B.service.toAll('back', 2);
    await waitForPushes(w.client, 'back', 1);
  }, 60000);
});

describe('health after a failed publish', () => {
  it('an instance whose publish failed in an outage answers 200 again once Redis is back, without publishing again', async () => {
    const A = await instance(server.url, uniquePrefix('quiet'));
    await server.kill();
    await expect(within(A.service.toAll('down', 1), 8000, 'toAll while Redis is down')).rejects.toBeInstanceOf(Error);
    expect((await getHealth(A.app.httpUrl('/health/ws'))).status).toBe(503);
    await server.start();
    await waitUntil(async () => (await getHealth(A.app.httpUrl('/health/ws'))).status === 200, {
      timeoutMs: 8000,
      intervalMs: 100,
      what: '200 once Redis answers again',
    });
  });

  it('a publish Redis refuses (out of memory) keeps it 503 while the canary goes through, until a publish does', async () => {
    const A = await instance(server.url, uniquePrefix('refused'));
    const admin = await throwawayAdmin();
    await admin.config('SET', 'maxmemory', '1');
    try {
      await expect(within(A.service.toAll('refused', 1), 8000, 'toAll refused')).rejects.toThrow(/OOM/);
      const statuses: number[] = [];
      for (let k = 0; k < 8; k++) {
        statuses.push((await getHealth(A.app.httpUrl('/health/ws'))).status);
        await sleep(CANARY_MS);
      }
      expect(statuses).toEqual(Array(8).fill(503));
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    await A.service.toAll('accepted', 2);
    expect((await getHealth(A.app.httpUrl('/health/ws'))).status).toBe(200);
  });
});

describe('membership changes while Redis is down', () => {
  it('a join during the outage is either refused (and not recorded) or effective once Redis is back', async () => {
    const prefix = uniquePrefix('outage-join');
    const A = await instance(server.url, prefix);
    const B = await instance(server.url, prefix);
    const x = await peer(B);

    await server.kill();
    await sleep(200);
    const outcome = await within(
      B.service.join(x.sessionId, 'late').then(
        () => 'resolved',
        (error: Error) => `rejected: ${error.message}`,
      ),
      15000,
      'join during the outage',
    );
    const roomsDuringOutage = B.service.roomsOf(x.sessionId);
    await server.start();

    // wait until A reaches B again (toAll)
    await waitUntil(
      async () => {
        await A.service.toAll('probe', 1).catch(() => undefined);
        return pushesOf(x.client, 'probe').length > 0;
      },
      { timeoutMs: 15000, intervalMs: 200, what: 'delivery after the restart' },
    );

    const memberAfter = B.service.roomsOf(x.sessionId).includes('late');
    // does a room push from A reach x now? (bounded retries)
    const delivered = await waitUntil(
      async () => {
        await A.service.toRoom('late', 'late-push', 1).catch(() => undefined);
        return pushesOf(x.client, 'late-push').length > 0;
      },
      { timeoutMs: 5000, intervalMs: 200, what: 'a room push' },
    ).then(
      () => true,
      () => false,
    );
    // what the application can observe (the join's outcome, roomsOf) must match what happens
    expect({ outcome, roomsDuringOutage, memberAfter, delivered }).toEqual(
      outcome === 'resolved'
        ? { outcome, roomsDuringOutage: ['late'], memberAfter: true, delivered: true }
        : { outcome, roomsDuringOutage: [], memberAfter: false, delivered: false },
    );
  }, 60000);
});

describe('Redis unreachable at startup', () => {
  async function failingListen(redis: string, connectTimeoutMs = 500): Promise<{ error: Error; app: INestApplication; ms: number }> {
    const app = await createApp(
      options(redis, uniquePrefix('down'), { connectTimeoutMs }),
      [BroadcastGateway],
      { logger: false, abortOnError: false },
    );
    looseApps.push(app);
    const started = Date.now();
    const error = await within(
      app.listen(0, '127.0.0.1').then(
        () => new Error('listen resolved'),
        (e: Error) => e,
      ),
      10000,
      'app.listen() with Redis unreachable',
    );
    return { error, app, ms: Date.now() - started };
  }

  it('nothing listening: listen() rejects naming broadcast.redis, close() resolves, no reconnect attempts linger', async () => {
    const port = await freePort(7400);
    const { error, app } = await failingListen(`redis://:hunter2@127.0.0.1:${port}`);
    expect(error.message).not.toBe('listen resolved');
    expect(error.message).toContain('broadcast.redis');
    expect(error.message).toContain(String(port));
    expect(error.message).not.toContain('hunter2'); // the password is not leaked
    await within(app.close(), 5000, 'app.close() after a failed listen');
    looseApps.splice(looseApps.indexOf(app), 1);

    // nobody keeps trying to connect to that port afterwards
    let attempts = 0;
    const listener: Server = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
    await sleep(2500);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    expect(attempts).toBe(0);
  });

  it('a server that accepts but never answers: listen() rejects within the connect timeout, and the sockets are closed', async () => {
    const sockets = new Set<Socket>();
    const blackhole: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.on('data', () => undefined); // reads everything, answers nothing
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const { port } = blackhole.address() as { port: number };
    try {
      const { error, app } = await failingListen(`redis://127.0.0.1:${port}`, 500);
      expect(error.message).not.toBe('listen resolved');
      expect(error.message).toContain('broadcast.redis');
      await waitUntil(() => sockets.size === 0, { timeoutMs: 3000, what: 'the module to close its sockets' });
      await within(app.close(), 5000, 'app.close() after a failed listen');
      looseApps.splice(looseApps.indexOf(app), 1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => blackhole.close(() => resolve()));
    }
  });
});

describe('Redis connections: whose are closed by app.close()', () => {
  function optionsFromUrl(connectionName: string): RedisOptions {
    const url = new URL(REDIS_URL);
    return {
      host: url.hostname,
      port: Number(url.port || 6379),
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
      connectionName,
    };
  }

  it('an ioredis instance passed as broadcast.redis stays open (ready) after app.close(); the duplicate the module made is closed', async () => {
    const admin = await adminConnection();
    looseRedis.push(admin);
    const name = `own-${process.pid}-${Date.now()}`;
    const own = new Redis(optionsFromUrl(name));
    looseRedis.push(own);
    own.on('error', () => undefined);
    await waitUntil(() => own.status === 'ready', { what: 'the own connection' });

    const prefix = uniquePrefix('own');
    const A = await instance(own, prefix);
    const B = await instance(REDIS_URL, prefix);
    expect((await clientsNamed(admin, name)).length).toBe(2); // the instance and its duplicate (subscriber)
    const x = await peer(B);
    await A.service.toAll('via-own', 1);
    await waitForPushes(x.client, 'via-own', 1);

    instances.splice(instances.indexOf(A), 1);
    await within(A.app.close(), 10000, 'app.close()');
    expect(own.status).toBe('ready');
    await expect(own.ping()).resolves.toBe('PONG');
    await waitForCount(async () => (await clientsNamed(admin, name)).length, 1, `CLIENT LIST name=${name}`);
  });

  it('connections the module opened itself (options object or URL) are closed by app.close()', async () => {
    const admin = await adminConnection();
    looseRedis.push(admin);
    const byOptions = `mod-opts-${process.pid}-${Date.now()}`;
    const byUrl = `mod-url-${process.pid}-${Date.now()}`;
    const prefix = uniquePrefix('mod');
    const A = await instance(optionsFromUrl(byOptions), prefix);
    const url = `${REDIS_URL}${REDIS_URL.includes('?') ? '&' : '?'}connectionName=${byUrl}`;
    const B = await instance(url, prefix);
    expect((await clientsNamed(admin, byOptions)).length).toBe(2); // publisher + subscriber
    expect((await clientsNamed(admin, byUrl)).length).toBe(2);

    instances.splice(0, instances.length);
    await within(A.app.close(), 10000, 'app.close() of A');
    await within(B.app.close(), 10000, 'app.close() of B');
    await waitForCount(async () => (await clientsNamed(admin, byOptions)).length, 0, `CLIENT LIST name=${byOptions}`);
    await waitForCount(async () => (await clientsNamed(admin, byUrl)).length, 0, `CLIENT LIST name=${byUrl}`);
  });
});

describe('broadcast options are checked at startup', () => {
  const cases: Array<[string, Record<string, unknown>, string[], string[]]> = [
    ["redis: 'http://x'", { redis: 'http://x' }, ['"broadcast.redis"', 'http://x'], []],
    ["redis: 'http://user:secret@x'", { redis: 'http://user:secret@x' }, ['"broadcast.redis"'], ['secret']],
    ['redis: 42', { redis: 42 }, ['"broadcast.redis"', '42'], []],
    ["channelPrefix: ''", { channelPrefix: '' }, ['"broadcast.channelPrefix"', '""'], []],
    ["channelPrefix: 'a b'", { channelPrefix: 'a b' }, ['"broadcast.channelPrefix"'], []],
    ["channelPrefix: 'a*'", { channelPrefix: 'a*' }, ['"broadcast.channelPrefix"'], []],
    ['canaryIntervalMs: 0', { canaryIntervalMs: 0 }, ['"broadcast.canaryIntervalMs"', 'got 0'], []],
    ["canaryIntervalMs: '100'", { canaryIntervalMs: '100' }, ['"broadcast.canaryIntervalMs"'], []],
    ['connectTimeoutMs: -1', { connectTimeoutMs: -1 }, ['"broadcast.connectTimeoutMs"', '-1'], []],
    ["sharded: 'yes'", { sharded: 'yes' }, ['"broadcast.sharded"', '"yes"'], []],
    ['unknown key chanelPrefix', { chanelPrefix: 'x' }, ['"broadcast.chanelPrefix"'], []],
  ];

  it.each(cases)('broadcast: { %s } stops bootstrap with an error naming the option', async (_name, broadcast, fragments, absent) => {
    const created = createApp({ broadcast } as unknown as ReliableWsOptions, [BroadcastGateway], {
      logger: false,
      abortOnError: false,
    }).then(
      (app) => {
        looseApps.push(app);
        return app.init().then(
          () => new Error('bootstrap succeeded although the option is wrong'),
          (e: Error) => e,
        );
      },
      (e: Error) => e,
    );
    const error = await within(created, 10000, 'bootstrap with a wrong broadcast option');
    expect(error.message).not.toContain('although the option is wrong');
    for (const fragment of fragments) expect(error.message).toContain(fragment);
    for (const fragment of absent) expect(error.message).not.toContain(fragment);
  });

  it('broadcast: { redis } with a redis:// URL is accepted', async () => {
    const A = await instance(REDIS_URL, uniquePrefix('ok'));
    expect((await getHealth(A.app.httpUrl('/health/ws'))).status).toBe(200);
  });
});
