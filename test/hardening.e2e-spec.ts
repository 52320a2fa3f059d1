import { Injectable } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
} from '@nestjs/websockets';
import { IsInt, IsOptional, ValidateNested } from 'class-validator';
import { Type } from 'class-transformer';
import {
  BroadcastService,
  ReliableGateway,
  ReliableWsException,
  SessionRegistry,
  UnserializableDataError,
  type ReliableSocket,
  type ReliableWsOptions,
} from '../lib/index.js';
import type { TestApp } from './support/app.js';
import { startApp } from './support/app.js';
import { captureLogger, startAppWithOptions, type CaptureLogger } from './support/app-with-logger.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/**
 * DESIGN.md §8.1: no frame, sequence of frames or handler return value crashes the process, and
 * every buffer the server keeps for a client has a byte bound.
 */

const circular = (): object => {
  const value: Record<string, unknown> = { secret: 'do-not-log' };
  value.self = value;
  return value;
};

const deepArray = (levels: number): unknown => JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`);

class NodeDto {
  @IsOptional()
  @ValidateNested()
  @Type(() => NodeDto)
  next?: NodeDto;

  @IsOptional()
  @IsInt()
  n?: number;
}

@ReliableGateway({ path: '/ws' })
class HostileGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return { echoed: data };
  }

  @SubscribeMessage('circular')
  circular() {
    return circular();
  }

  @SubscribeMessage('bigint')
  bigint() {
    return { n: 10n };
  }

  @SubscribeMessage('too-deep')
  tooDeep() {
    return deepArray(200_000);
  }

  @SubscribeMessage('event-reply-circular')
  eventReplyCircular() {
    return { event: 'other', data: circular() };
  }

  @SubscribeMessage('push-circular')
  pushCircular(@ConnectedSocket() socket: ReliableSocket) {
    socket.send('pushed', circular());
    return { sent: true };
  }

  @SubscribeMessage('broadcast-bigint')
  async broadcastBigint() {
    await this.broadcast.toAll('everyone', { n: 1n });
    return { sent: true };
  }

  @SubscribeMessage('circular-details')
  circularDetails() {
    throw new ReliableWsException({ code: 'CUSTOM', message: 'no', details: circular() });
  }

  @SubscribeMessage('throwing-getter')
  throwingGetter() {
    return {
      get event(): string {
        throw new Error('getter');
      },
      data: 1,
    };
  }

  @SubscribeMessage('tree')
  tree(@MessageBody() node: NodeDto) {
    return { ok: node instanceof NodeDto };
  }
}

/** A plain Nest gateway whose handleConnection throws synchronously. */
@Injectable()
@WebSocketGateway({ path: '/plain' })
class ThrowingConnectionGateway implements OnGatewayConnection {
  handleConnection(): void {
    throw new Error('handleConnection failed');
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

const BASE: ReliableWsOptions = { rateLimit: false, allowedOrigins: '*' };

async function ready(url: string, protocol?: string): Promise<TestClient> {
  const client = new TestClient(url, protocol);
  await client.open();
  if (protocol) client.send({ event: '$hello', data: {} });
  await client.next((frame) => frame.event === '$ready');
  return client;
}

const clients: TestClient[] = [];
async function track(client: Promise<TestClient>): Promise<TestClient> {
  const opened = await client;
  clients.push(opened);
  return opened;
}
afterEach(() => {
  for (const client of clients.splice(0)) client.terminate();
});

const errorOf = (frame: Frame) => ({ event: frame.event, code: frame.data?.code, ref: frame.data?.ref });

describe('hardening: frames that nest too deeply', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ ...BASE, maxPayloadBytes: 256 * 1024 }, [HostileGateway]);
  });
  afterAll(() => t.close());

  it('a $ping 5,000 levels deep (the frame that used to kill the process) is BAD_MESSAGE; the connection lives on', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    c.send(`{"event":"$ping","data":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    expect(errorOf(await c.next())).toEqual({ event: '$error', code: 'BAD_MESSAGE', ref: undefined });
    expect(await c.request('echo', 'still here', 1)).toEqual({ event: 'echo', data: { echoed: 'still here' }, ref: 1 });
  });

  it('answers a too-deep frame with an id to that id, and accepts exactly 64 levels', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    c.send(`{"event":"echo","data":${'['.repeat(64)}${']'.repeat(64)},"id":7}`);
    const refused = await c.next((frame) => frame.data?.ref === 7);
    expect(refused).toEqual({ event: '$error', data: { code: 'BAD_MESSAGE', message: 'frame nests deeper than 64 levels', ref: 7 } });
    c.send(`{"event":"echo","data":${'['.repeat(63)}${']'.repeat(63)},"id":8}`);
    const accepted = await c.next((frame) => frame.ref === 8);
    expect(accepted.event).toBe('echo');
  });

  it('echoes $ping data as it came and answers its id as ref', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    const data = { a: [1, 'two', null, { b: 1e308 }], '€': '😀' };
    c.send({ event: '$ping', data, id: 'p1' });
    expect(await c.next((frame) => frame.event === '$pong')).toEqual({ event: '$pong', data, ref: 'p1' });
  });

  it('a DTO nested 10,000 levels is BAD_MESSAGE, never a logged stack trace', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    c.send(`{"event":"tree","data":${'{"next":'.repeat(10_000)}{}${'}'.repeat(10_000)},"id":3}`);
    expect(errorOf(await c.next((frame) => frame.data?.ref === 3))).toEqual({ event: '$error', code: 'BAD_MESSAGE', ref: 3 });
  });
});

describe('hardening: maxMessageDepth', () => {
  let t: TestApp;
  let logger: CaptureLogger;
  beforeAll(async () => {
    logger = captureLogger();
    t = await startAppWithOptions({ ...BASE, maxMessageDepth: 20_000, maxPayloadBytes: 256 * 1024 }, [HostileGateway], { logger });
  });
  afterAll(() => t.close());

  it('is an option: 3 levels of data are fine at 4, refused at 3', async () => {
    const small = await startApp({ ...BASE, maxMessageDepth: 3 }, [HostileGateway]);
    try {
      const c = await track(ready(small.wsUrl('/ws')));
      c.send({ event: 'echo', data: [[1]], id: 1 });
      expect((await c.next((frame) => frame.ref === 1 || frame.data?.ref === 1)).event).toBe('echo');
      c.send({ event: 'echo', data: [[[1]]], id: 2 });
      expect(errorOf(await c.next((frame) => frame.data?.ref === 2))).toEqual({ event: '$error', code: 'BAD_MESSAGE', ref: 2 });
    } finally {
      await small.close();
    }
  });

  it('with the limit raised, a DTO nested 10,000 levels is VALIDATION_FAILED and nothing is logged', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    const before = logger.lines.length;
    c.send(`{"event":"tree","data":${'{"next":'.repeat(10_000)}{}${'}'.repeat(10_000)},"id":3}`);
    expect(errorOf(await c.next((frame) => frame.data?.ref === 3))).toEqual({ event: '$error', code: 'VALIDATION_FAILED', ref: 3 });
    expect(logger.lines.slice(before)).toEqual([]);
  });
});

describe('hardening: values that JSON cannot carry', () => {
  let t: TestApp;
  let logger: CaptureLogger;
  beforeAll(async () => {
    logger = captureLogger();
    t = await startAppWithOptions(BASE, [HostileGateway], { logger });
  });
  afterAll(() => t.close());

  it.each(['circular', 'bigint', 'too-deep', 'event-reply-circular', 'push-circular', 'broadcast-bigint', 'circular-details', 'throwing-getter'])(
    'a handler answering "%s" gets $error INTERNAL to its ref, and the connection lives on',
    async (event) => {
      const c = await track(ready(t.wsUrl('/ws'), 'rws.v1'));
      expect(await c.request(event, null, 1)).toEqual({ event: '$error', data: { code: 'INTERNAL', message: 'Internal error', ref: 1 } });
      expect(await c.request('echo', 'ok', 2)).toEqual({ event: 'echo', data: { echoed: 'ok' }, ref: 2 });
      // the duplicate of the failed id gets the same cached answer
      expect(await c.request(event, null, 1)).toEqual({ event: '$error', data: { code: 'INTERNAL', message: 'Internal error', ref: 1 } });
    },
  );

  it('logs each failing event once, naming the event and the kind, never the value', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    const before = logger.lines.length;
    for (let id = 1; id <= 5; id++) c.send({ event: 'circular', id });
    for (let id = 1; id <= 5; id++) await c.next((frame) => frame.data?.ref === id);
    const lines = logger.lines.slice(before).filter((line) => line.includes('"circular"'));
    expect(lines.length).toBeLessThanOrEqual(1);
    const all = logger.lines.join('\n');
    expect(all).toContain('cannot serialise the reply of "circular": circular structure');
    expect(all).toContain('cannot serialise the push of "pushed": circular structure');
    expect(all).not.toContain('do-not-log');
    expect(all).not.toMatch(/at .*\.ts:\d+/); // no stack traces
  });

  it('BroadcastService rejects a payload it cannot serialise, naming the event', async () => {
    const broadcast = t.app.get(BroadcastService);
    await expect(broadcast.toAll('everyone', circular())).rejects.toThrow(UnserializableDataError);
    await expect(broadcast.toRoom('r', 'roomy', { n: 1n })).rejects.toThrow('cannot serialise the push of "roomy": BigInt value');
  });

  it('BroadcastService rejects an event name clients could not send (empty, over 128 characters, a "$" one) before delivering anything', async () => {
    const c = await track(ready(t.wsUrl('/ws')));
    const broadcast = t.app.get(BroadcastService);
    await expect(broadcast.toAll('E'.repeat(1100), Buffer.from('bytes'))).rejects.toThrow(TypeError);
    await expect(broadcast.toAll('$failed', 'spoofed')).rejects.toThrow('not starting with "$"');
    await expect(broadcast.toAll('T'.repeat(129), 1)).rejects.toThrow('at most 128 characters');
    await expect(broadcast.toClient('anyone', '', 1)).rejects.toThrow(TypeError);
    await broadcast.toAll('E'.repeat(128), 'longest');
    expect(await c.next((frame) => frame.seq !== undefined)).toMatchObject({ event: 'E'.repeat(128), data: 'longest', seq: 1 });
  });
});

describe('hardening: every frame with an id gets exactly one answer', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp(BASE, [HostileGateway]);
  });
  afterAll(() => t.close());

  it('$ack with an id is answered $ack { ref }, whether it advances, repeats or is garbage', async () => {
    const c = await track(ready(t.wsUrl('/ws'), 'rws.v1'));
    const broadcast = t.app.get(BroadcastService);
    await broadcast.toAll('tick', 1);
    await broadcast.toAll('tick', 2);
    await c.next((frame) => frame.event === 'tick' && frame.seq === 2);
    c.frames.length = 0;
    const acks: Array<[unknown, string]> = [
      [{ seq: 2 }, 'a-advancing'],
      [{ seq: 2 }, 'a-repeated'],
      [{ seq: 99 }, 'a-beyond'],
      ['garbage', 'a-garbage'],
      [null, 'a-null'],
    ];
    for (const [data, id] of acks) c.send({ event: '$ack', data, id });
    for (const [, id] of acks) expect(await c.next((frame) => frame.data?.ref === id)).toEqual({ event: '$ack', data: { ref: id } });
    c.send({ event: '$ack', data: { seq: 2 } });
    await sleep(100);
    expect(c.frames).toEqual([]); // without an id, nothing
  });

  it('$hello with an id gets $ready with that ref', async () => {
    const c = await track(Promise.resolve(new TestClient(t.wsUrl('/ws'), 'rws.v1')));
    await c.open();
    c.send({ event: '$hello', data: {}, id: 'h' });
    const readyFrame = await c.next((frame) => frame.event === '$ready');
    expect(readyFrame.ref).toBe('h');
  });
});

describe('hardening: throwing lifecycle hooks and user functions', () => {
  it("a plain gateway's throwing handleConnection closes that connection 1011; the app serves on", async () => {
    const t = await startApp(BASE, [ThrowingConnectionGateway, HostileGateway]);
    try {
      const c = await track(Promise.resolve(new TestClient(t.wsUrl('/plain'))));
      expect((await c.closed()).code).toBe(1011);
      const good = await track(ready(t.wsUrl('/ws')));
      expect(await good.request('echo', 1, 1)).toEqual({ event: 'echo', data: { echoed: 1 }, ref: 1 });
    } finally {
      await t.close();
    }
  });

  it('an auth.userId that throws leaves the session without a user id, and serving', async () => {
    const t = await startApp(
      {
        ...BASE,
        auth: {
          verify: (token) => ({ name: token }),
          userId: () => {
            throw new Error('claims missing');
          },
        },
      },
      [HostileGateway],
    );
    try {
      const c = await track(ready(t.wsUrl('/ws?token=ann')));
      expect(await c.request('echo', 1, 1)).toEqual({ event: 'echo', data: { echoed: 1 }, ref: 1 });
      await t.app.get(BroadcastService).toUser('ann', 'nobody', 1);
    } finally {
      await t.close();
    }
  });
});

describe('hardening: frames held while credentials are checked', () => {
  let t: TestApp;
  const releases: Array<() => void> = [];
  beforeAll(async () => {
    t = await startApp(
      {
        ...BASE,
        auth: {
          timeoutMs: 1500,
          verify: (token) =>
            token === 'hang' ? new Promise<null>((resolve) => releases.push(() => resolve(null))) : { id: token },
        },
      },
      [HostileGateway],
    );
  });
  afterAll(async () => {
    for (const release of releases.splice(0)) release();
    await t.close();
  });

  async function hanging(): Promise<TestClient> {
    const c = await track(Promise.resolve(new TestClient(t.wsUrl('/ws'), 'rws.v1')));
    await c.open();
    c.send({ event: '$hello', data: { token: 'hang' } });
    return c;
  }

  it('closes 1008 at the 33rd frame sent while verify runs', async () => {
    const c = await hanging();
    for (let id = 1; id <= 33; id++) c.send({ event: 'echo', data: id, id });
    expect((await c.closed(1000)).code).toBe(1008);
  });

  it('closes 1008 once the held frames pass 256 KiB', async () => {
    const c = await hanging();
    const pad = 'x'.repeat(60_000);
    for (let id = 1; id <= 5; id++) c.send({ event: 'echo', data: pad, id });
    expect((await c.closed(1000)).code).toBe(1008);
  });

  it('the $hello deadline keeps running while verify runs: a slower verify closes 4008', async () => {
    const c = await hanging();
    const started = Date.now();
    for (let id = 1; id <= 10; id++) c.send({ event: 'echo', data: id, id });
    expect((await c.closed(3000)).code).toBe(4008);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });

  it('frames within the bounds are handled in order once verify answers', async () => {
    const c = await track(Promise.resolve(new TestClient(t.wsUrl('/ws'), 'rws.v1')));
    await c.open();
    c.send({ event: '$hello', data: { token: 'ann' } });
    for (let id = 1; id <= 32; id++) c.send({ event: 'echo', data: id, id });
    await waitUntil(() => c.frames.filter((frame) => frame.event === 'echo').length === 32, { what: '32 replies' });
    expect(c.frames.filter((frame) => frame.event === 'echo').map((frame) => frame.ref)).toEqual(Array.from({ length: 32 }, (_, k) => k + 1));
  });
});

describe('hardening: byte bounds of what the server keeps for a client', () => {
  it('backpressure counts UTF-8 bytes: 4,000 "€" (12,000 bytes) overflow a 10,000-byte bound', async () => {
    const t = await startApp({ ...BASE, backpressure: { maxBufferedBytes: 10_000 } }, [HostileGateway]);
    try {
      const c = await track(ready(t.wsUrl('/ws')));
      c.send({ event: 'echo', data: '€'.repeat(4000), id: 1 });
      expect((await c.closed()).code).toBe(4009);
    } finally {
      await t.close();
    }
  });

  it('a client that drops cannot keep more than resume.maxTotalBytes, however many pushes its sessions get', async () => {
    const maxTotalBytes = 2 * 1024 * 1024;
    const t = await startApp({ ...BASE, resume: { maxTotalBytes } }, [HostileGateway]);
    try {
      const sessions = t.app.get(SessionRegistry);
      const broadcast = t.app.get(BroadcastService);
      const dropped: string[] = [];
      for (let k = 0; k < 10; k++) {
        const c = await ready(t.wsUrl('/ws'), 'rws.v1');
        c.terminate();
        await c.closed();
        dropped.push(k.toString());
      }
      await waitUntil(() => sessions.detachedCount === 10, { what: '10 detached sessions' });
      const pad = 'x'.repeat(50_000);
      for (let i = 0; i < 100; i++) await broadcast.toAll('big', { i, pad }); // 5 MB to each session
      expect(sessions.bufferedBytes).toBeLessThanOrEqual(maxTotalBytes);
      expect(sessions.detachedCount).toBeLessThan(10);
    } finally {
      await t.close();
    }
  });

  it('beyond resume.maxDetachedSessions the oldest detached session goes: its resume gets missed: true', async () => {
    const t = await startApp({ ...BASE, resume: { maxDetachedSessions: 3 } }, [HostileGateway]);
    try {
      const readies: Frame[] = [];
      for (let k = 0; k < 4; k++) {
        const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
        await c.open();
        c.send({ event: '$hello', data: {} });
        readies.push(await c.next((frame) => frame.event === '$ready'));
        c.terminate();
        await c.closed();
      }
      const resume = async (readyFrame: Frame) => {
        const c = await track(Promise.resolve(new TestClient(t.wsUrl('/ws'), 'rws.v1')));
        await c.open();
        const { sessionId, resumeToken } = readyFrame.data;
        c.send({ event: '$hello', data: { resume: { sessionId, resumeToken, lastSeq: 0 } } });
        return (await c.next((frame) => frame.event === '$ready')).data;
      };
      await waitUntil(() => t.app.get(SessionRegistry).detachedCount === 3, { what: '3 detached sessions' });
      expect(await resume(readies[0])).toMatchObject({ resumed: false, missed: true });
      expect(await resume(readies[3])).toMatchObject({ resumed: true, missed: false });
    } finally {
      await t.close();
    }
  });

  it('a resume too late for its pushes while the old connection is open cuts that connection; its address is still served', async () => {
    const maxConnectionsPerIp = 4;
    const t = await startApp({ ...BASE, maxConnectionsPerIp }, [HostileGateway]);
    try {
      const hello = async (data: object) => {
        const c = await track(Promise.resolve(new TestClient(t.wsUrl('/ws'), 'rws.v1')));
        await c.open();
        c.send({ event: '$hello', data });
        return { c, ready: (await c.next((frame) => frame.event === '$ready')).data };
      };
      const first = await hello({});
      const { sessionId, resumeToken } = first.ready;
      const late = await hello({ resume: { sessionId, resumeToken, lastSeq: 5 } }); // pushes 1–5 were never kept
      expect(late.ready).toMatchObject({ resumed: false, missed: true });
      expect((await first.c.closed()).code).toBe(1006); // cut with its session, as on a takeover
      const sessions = t.app.get(SessionRegistry);
      expect(sessions.getSession(sessionId)).toBeUndefined();
      expect(sessions.detachedCount).toBe(0);
      for (let k = 1; k < maxConnectionsPerIp; k++) expect((await hello({})).ready).toMatchObject({ resumed: false });
      expect(sessions.connectionCount).toBe(maxConnectionsPerIp);
    } finally {
      await t.close();
    }
  });
});
