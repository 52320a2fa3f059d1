/**
 * Per-connection rate limiting, end to end: a real Nest app on port 0 and real `ws` clients.
 *
 * What these limits cover and what they do not: every bucket here belongs to ONE connection, so a
 * client that opens many connections multiplies its budget. That is what `maxConnectionsPerIp`
 * (default 1000, HTTP 429 at the handshake; `trustProxy` decides the client IP) is for: together
 * they bound the load one address can cause to maxConnectionsPerIp × (module points + handler
 * points + SYSTEM_EVENT_LIMIT.points) messages per window, and `maxViolations` (close 4029) makes a
 * flooding connection pay a reconnect. The per-IP cap itself is covered by handshake.e2e-spec.ts.
 */
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { RateLimit, ReliableGateway, SkipRateLimit, type ReliableSocket } from '../lib/index.js';
import { SYSTEM_EVENT_LIMIT } from '../lib/rate-limit/rate-limit.options.js';
import { startApp, type TestApp } from './support/app.js';
import { answersFor, framesOf, refOf } from './support/answers.js';
import { sleep, waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/** Invocations per handler, reset by each test (tests in this file run one after another). */
const calls = { hit: 0, limited: 0, free: 0 };
const resetCalls = (): void => {
  calls.hit = calls.limited = calls.free = 0;
};

@ReliableGateway({ path: '/ws' })
class LimitedGateway {
  @SubscribeMessage('hit')
  hit(@MessageBody() n: unknown) {
    calls.hit++;
    return { n };
  }

  @SubscribeMessage('limited')
  @RateLimit({ points: 2, durationMs: 1000 })
  limited() {
    calls.limited++;
    return { ok: true };
  }

  @SubscribeMessage('free')
  @SkipRateLimit()
  free() {
    calls.free++;
    return { ok: true };
  }

  /** Pushes `count` sequenced messages to the caller at once (like a replay after resume). */
  @SubscribeMessage('flood-me')
  @SkipRateLimit()
  floodMe(@MessageBody() count: number, @ConnectedSocket() socket: ReliableSocket) {
    for (let i = 0; i < count; i++) socket.send('tick', i);
  }
}

const perHandler: Record<string, number> = {};
const count = (name: string): void => {
  perHandler[name] = (perHandler[name] ?? 0) + 1;
};

/** A gateway exempt from limits, with one handler that has a limit of its own. */
@ReliableGateway({ path: '/skipped' })
@SkipRateLimit()
class SkippedGateway {
  @SubscribeMessage('own-limit')
  @RateLimit({ points: 2, durationMs: 60_000 })
  ownLimit() {
    count('own-limit');
  }

  @SubscribeMessage('exempt')
  exempt() {
    count('exempt');
  }
}

/** A gateway with one bucket for its handlers, and one handler exempt from it. */
@ReliableGateway({ path: '/shared' })
@RateLimit({ points: 3, durationMs: 60_000 })
class SharedBucketGateway {
  @SubscribeMessage('shared')
  shared() {
    count('shared');
  }

  @SubscribeMessage('skip-own')
  @SkipRateLimit()
  skipOwn() {
    count('skip-own');
  }
}

function burst(client: TestClient, event: string, ids: number[]): void {
  for (const id of ids) client.send({ event, data: id, id });
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function rateLimitedErrors(answers: Map<number | string, Frame[]>): Frame[] {
  return [...answers.values()].flat().filter((f) => f.event === '$error' && f.data?.code === 'RATE_LIMITED');
}

describe('rate limiting (e2e)', () => {
  const open: TestClient[] = [];
  const connect = async (t: TestApp): Promise<TestClient> => {
    const client = await TestClient.ready(t.wsUrl('/ws'));
    open.push(client);
    return client;
  };
  afterEach(() => {
    for (const client of open.splice(0)) client.terminate();
    resetCalls();
    for (const name of Object.keys(perHandler)) delete perHandler[name];
  });

  describe('module bucket { points: 5, durationMs: 1000, maxViolations: 100 }', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ rateLimit: { points: 5, durationMs: 1000, maxViolations: 100 } }, [LimitedGateway]);
    });
    afterAll(() => t.close());
    beforeEach(resetCalls);

    it('a burst of 20 → exactly 5 handled, 15 × $error RATE_LIMITED with ref and 0 < retryAfterMs ≤ 1000', async () => {
      const c = await connect(t);
      const ids = range(1, 20);
      burst(c, 'hit', ids);
      const answers = await answersFor(c, ids);
      for (const id of ids) expect(answers.get(id)).toHaveLength(1); // exactly one answer per id
      const replies = [...answers.values()].flat().filter((f) => f.event === 'hit');
      const errors = rateLimitedErrors(answers);
      expect(replies).toHaveLength(5);
      expect(replies.map((f) => f.ref)).toEqual([1, 2, 3, 4, 5]);
      expect(errors).toHaveLength(15);
      for (const error of errors) {
        expect(error.data).toMatchObject({ code: 'RATE_LIMITED', message: expect.any(String) });
        expect(ids).toContain(error.data.ref);
        expect(error.data.retryAfterMs).toBeGreaterThan(0);
        expect(error.data.retryAfterMs).toBeLessThanOrEqual(1000);
      }
      expect(calls.hit).toBe(5);
      expect(c.raw.readyState).toBe(c.raw.OPEN); // 15 < maxViolations: still open
    });

    it('after waiting retryAfterMs the bucket has refilled and messages are accepted again', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 8));
      const answers = await answersFor(c, range(1, 8));
      const errors = rateLimitedErrors(answers);
      expect(errors.length).toBeGreaterThan(0);
      const wait = Math.max(...errors.map((e) => e.data.retryAfterMs as number));
      expect(wait).toBeLessThanOrEqual(1000);
      await sleep(wait + 50);
      const reply = await c.request('hit', 'again', 100);
      expect(reply).toEqual({ event: 'hit', data: { n: 'again' }, ref: 100 });
      expect(calls.hit).toBe(6);
    });

    it('@RateLimit({ points: 2 }) is the handler’s own bucket: usable when the module bucket is exhausted', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 10));
      expect(rateLimitedErrors(await answersFor(c, range(1, 10)))).toHaveLength(5);
      burst(c, 'limited', range(11, 14));
      const answers = await answersFor(c, range(11, 14));
      expect(answers.get(11)?.[0]).toEqual({ event: 'limited', data: { ok: true }, ref: 11 });
      expect(answers.get(12)?.[0]).toEqual({ event: 'limited', data: { ok: true }, ref: 12 });
      const errors = rateLimitedErrors(answers);
      expect(errors.map((e) => e.data.ref)).toEqual([13, 14]);
      for (const e of errors) {
        expect(e.data.retryAfterMs).toBeGreaterThan(0);
        expect(e.data.retryAfterMs).toBeLessThanOrEqual(1000);
      }
      expect(calls).toMatchObject({ hit: 5, limited: 2 });
    });

    it('… and vice versa: exhausting the handler bucket leaves the module bucket untouched', async () => {
      const c = await connect(t);
      burst(c, 'limited', range(1, 5));
      expect(rateLimitedErrors(await answersFor(c, range(1, 5)))).toHaveLength(3);
      burst(c, 'hit', range(6, 12));
      const answers = await answersFor(c, range(6, 12));
      expect(rateLimitedErrors(answers).map((e) => e.data.ref)).toEqual([11, 12]);
      expect(calls).toMatchObject({ hit: 5, limited: 2 });
    });

    it('@SkipRateLimit() handler is never limited (50 in a burst all handled)', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 10)); // the module bucket is exhausted first; irrelevant for `free`
      await answersFor(c, range(1, 10));
      burst(c, 'free', range(11, 60));
      const answers = await answersFor(c, range(11, 60));
      for (const id of range(11, 60)) expect(answers.get(id)).toEqual([{ event: 'free', data: { ok: true }, ref: id }]);
      expect(calls.free).toBe(50);
    });

    it('buckets are independent between two connections', async () => {
      const a = await connect(t);
      const b = await connect(t);
      burst(a, 'hit', range(1, 10));
      expect(rateLimitedErrors(await answersFor(a, range(1, 10)))).toHaveLength(5);
      burst(b, 'hit', range(1, 10));
      const answers = await answersFor(b, range(1, 10));
      expect(rateLimitedErrors(answers)).toHaveLength(5);
      expect(range(1, 5).map((id) => answers.get(id)?.[0].event)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
      expect(calls.hit).toBe(10);
    });

    it('a connection over the module limit still gets $pong for $ping (separate bucket)', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 10));
      expect(rateLimitedErrors(await answersFor(c, range(1, 10)))).toHaveLength(5);
      c.send({ event: '$ping', data: 'still-alive' });
      expect(await c.next((f) => f.event === '$pong')).toEqual({ event: '$pong', data: 'still-alive' });
      // and the module bucket is still exhausted
      const again = await c.request('hit', 0, 11);
      expect(again.data).toMatchObject({ code: 'RATE_LIMITED', ref: 11 });
    });

    it('100 $ack { seq } frames never produce an error', async () => {
      const c = await connect(t);
      for (let seq = 1; seq <= 100; seq++) c.send({ event: '$ack', data: { seq } });
      c.send({ event: '$ping', data: 'marker' }); // answered after every $ack before it was processed
      await c.next((f) => f.event === '$pong' && f.data === 'marker');
      expect(framesOf(c, '$error')).toEqual([]);
      expect(c.raw.readyState).toBe(c.raw.OPEN);
    });
  });

  describe('protocol bucket (SYSTEM_EVENT_LIMIT) with maxViolations: 1000', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ rateLimit: { points: 5, durationMs: 1000, maxViolations: 1000 } }, [LimitedGateway]);
    });
    afterAll(() => t.close());

    it('a $ping flood is limited by the protocol bucket: some $error RATE_LIMITED, not all $pong', async () => {
      expect(SYSTEM_EVENT_LIMIT.points).toBeLessThan(600);
      const c = await connect(t);
      const total = 600;
      for (let i = 1; i <= total; i++) c.send({ event: '$ping', data: i, id: i });
      await waitUntil(() => framesOf(c, '$pong').length + framesOf(c, '$error').length >= total, {
        timeoutMs: 10000,
        what: 'an answer to every $ping',
      });
      const pongs = framesOf(c, '$pong');
      const errors = framesOf(c, '$error');
      expect(pongs.length + errors.length).toBe(total); // one answer per $ping, never two
      expect(pongs.length).toBeGreaterThanOrEqual(SYSTEM_EVENT_LIMIT.points); // the bucket starts full
      expect(pongs.length).toBeLessThan(total);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) {
        expect(e.data).toMatchObject({ code: 'RATE_LIMITED' });
        expect(typeof refOf(e)).toBe('number');
        expect(e.data.retryAfterMs).toBeGreaterThan(0);
        expect(e.data.retryAfterMs).toBeLessThanOrEqual(SYSTEM_EVENT_LIMIT.durationMs);
      }
      // the first SYSTEM_EVENT_LIMIT.points pings are the ones answered with $pong
      expect(pongs.slice(0, SYSTEM_EVENT_LIMIT.points).map((p) => p.data)).toEqual(range(1, SYSTEM_EVENT_LIMIT.points));
    });

    it('only the $hello that opens the session goes uncharged: a $hello flood behind it is limited', async () => {
      const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
      open.push(c);
      await c.open();
      const total = 600;
      for (let i = 1; i <= total; i++) c.send({ event: '$hello', data: {}, id: i });
      await waitUntil(() => framesOf(c, '$ready').length + framesOf(c, '$error').length >= total, {
        timeoutMs: 10000,
        what: 'an answer to every $hello',
      });
      expect(framesOf(c, '$ready').map(refOf)).toEqual([1]);
      const errors = framesOf(c, '$error');
      expect(errors).toHaveLength(total - 1);
      const limited = errors.filter((e) => e.data.code === 'RATE_LIMITED');
      expect(limited.length).toBeGreaterThan(0);
      expect(errors.filter((e) => e.data.code !== 'RATE_LIMITED').every((e) => e.data.message === 'the session has already started')).toBe(true);
    });

    it('unknown events are charged against the protocol bucket, not the module bucket', async () => {
      const c = await connect(t);
      burst(c, 'no-such-event', range(1, 20));
      const answers = await answersFor(c, range(1, 20));
      for (const id of range(1, 20)) expect(answers.get(id)?.[0].data).toMatchObject({ code: 'UNKNOWN_EVENT', ref: id });
      // the module bucket is untouched
      burst(c, 'hit', range(21, 25));
      const hits = await answersFor(c, range(21, 25));
      expect([...hits.values()].flat().every((f) => f.event === 'hit')).toBe(true);
    });

    it('an rws.v1 unknown event refused by the protocol bucket keeps that answer: its retry gets it again, never silence', async () => {
      const c = new TestClient(t.wsUrl('/ws'), 'rws.v1');
      open.push(c);
      await c.open();
      c.send({ event: '$hello', data: {} });
      await c.next((frame) => frame.event === '$ready');
      // Corked: the pings and the request reach the server together, so the request finds the
      // bucket empty (a few tries, for a loaded machine whose reads split them and refill it).
      const tcp = (c.raw as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
      let limited: Frame | undefined;
      let id = 0;
      while (!limited && id < 5) {
        tcp.cork();
        for (let i = 1; i <= SYSTEM_EVENT_LIMIT.points + 20; i++) c.send({ event: '$ping', data: i });
        const answer = c.request('no-such-event', null, ++id);
        tcp.uncork();
        if ((await answer).data.code === 'RATE_LIMITED') limited = await answer;
        await sleep(SYSTEM_EVENT_LIMIT.durationMs); // refilled for the next try
      }
      expect(limited?.data).toMatchObject({ code: 'RATE_LIMITED', ref: id });
      expect((await c.request('no-such-event', null, id)).data).toEqual(limited!.data); // the kept answer
      expect((await c.request('no-such-event', null, id + 1)).data).toMatchObject({ code: 'UNKNOWN_EVENT', ref: id + 1 });
    });
  });

  describe('default rateLimit ({ points: 50, durationMs: 1000, maxViolations: 20 })', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({}, [LimitedGateway]);
    });
    afterAll(() => t.close());

    // DESIGN §3: "system events have their own generous bucket, so a client acking every push is
    // never limited". A burst of pushes (e.g. the replay of up to resume.bufferSize = 1000 missed
    // messages after a resume) answered with one $ack per push must be neither limited nor closed.
    it('a client acking every one of 1000 pushes received in a burst is never limited', async () => {
      const c = await connect(t);
      const total = 1000;
      let acked = 0;
      c.raw.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as Frame;
        if (frame.event === 'tick' && typeof frame.seq === 'number') {
          c.send({ event: '$ack', data: { seq: frame.seq } });
          acked++;
        }
      });
      c.send({ event: 'flood-me', data: total, id: 1 });
      await waitUntil(() => acked >= total || c.raw.readyState !== c.raw.OPEN, { timeoutMs: 10000, what: `${total} pushes` });
      c.send({ event: '$ping', data: 'marker' });
      // the marker is answered by $pong, or by $error when it is itself limited, or the socket closes
      await waitUntil(
        () => c.raw.readyState !== c.raw.OPEN || framesOf(c, '$pong').length > 0 || framesOf(c, '$error').length > 0,
        { timeoutMs: 3000, what: 'the marker $ping to be answered' },
      ).catch(() => undefined);
      expect(acked).toBe(total);
      expect(framesOf(c, '$error', 'RATE_LIMITED')).toHaveLength(0);
      expect(c.raw.readyState).toBe(c.raw.OPEN);
    });
  });

  describe('maxViolations: 3', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ rateLimit: { points: 5, durationMs: 1000, maxViolations: 3 } }, [LimitedGateway]);
    });
    afterAll(() => t.close());

    it('the connection is closed with 4029 at the 3rd rejection', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 10));
      const closed = await c.closed();
      expect(closed.code).toBe(4029);
      expect(calls.hit).toBe(5);
      // Messages decided before the close keep their answers: the 5 handled ones got their
      // replies, every rejection its $error (the third one closes the connection on the next
      // turn, so messages of the same read may still be refused with $error before it goes).
      expect(range(1, 5).map((id) => c.frames.find((f) => f.ref === id)?.event)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
      const refs = framesOf(c, '$error', 'RATE_LIMITED').map((e) => e.data.ref);
      expect(refs.slice(0, 3)).toEqual([6, 7, 8]);
      expect(refs).toEqual(range(6, 5 + refs.length));
    });

    it('fewer rejections than maxViolations leave the connection open', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 7));
      expect(rateLimitedErrors(await answersFor(c, range(1, 7)))).toHaveLength(2);
      expect(await c.request('free', null, 8)).toEqual({ event: 'free', data: { ok: true }, ref: 8 });
      expect(c.raw.readyState).toBe(c.raw.OPEN);
    });

    it('protocol-bucket rejections count towards maxViolations too', async () => {
      const c = await connect(t);
      // Three bucketfuls at once: the bucket refills while they are read, by a lot on a busy machine.
      for (let i = 1; i <= SYSTEM_EVENT_LIMIT.points * 3; i++) c.send({ event: '$ping', data: i });
      expect((await c.closed(10000)).code).toBe(4029);
    });
  });

  describe("a handler's own decorator wins over its gateway's", () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ rateLimit: { points: 1000, durationMs: 1000, maxViolations: 1000 } }, [SkippedGateway, SharedBucketGateway]);
    });
    afterAll(() => t.close());

    it.each([
      ['@RateLimit on a handler of a @SkipRateLimit() gateway limits it; its other handlers stay exempt', '/skipped', 'own-limit', 'exempt', 2],
      ['@SkipRateLimit() on a handler of a @RateLimit gateway exempts it; the others share the gateway bucket', '/shared', 'shared', 'skip-own', 3],
    ])('%s', async (_name, path, limitedEvent, exemptEvent, points) => {
      const c = await TestClient.ready(t.wsUrl(path));
      open.push(c);
      burst(c, limitedEvent, range(1, 10));
      burst(c, exemptEvent, range(11, 20));
      const answers = await answersFor(c, range(1, 20));
      expect(rateLimitedErrors(answers).map((f) => f.data.ref)).toEqual(range(points + 1, 10));
      expect(perHandler).toMatchObject({ [limitedEvent]: points, [exemptEvent]: 10 });
    });
  });

  describe('rateLimit: false', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ rateLimit: false }, [LimitedGateway]);
    });
    afterAll(() => t.close());

    it('a burst of 100 is all handled, also on a @RateLimit handler', async () => {
      const c = await connect(t);
      burst(c, 'hit', range(1, 100));
      burst(c, 'limited', range(101, 110));
      const answers = await answersFor(c, range(1, 110));
      expect(rateLimitedErrors(answers)).toHaveLength(0);
      expect(calls).toMatchObject({ hit: 100, limited: 10 });
    });
  });
});
