import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { checkReconnectOptions, DEFAULT_RECONNECT, reconnectDelay, type ReconnectOptions } from './backoff.js';
import { ReliableWsClient } from './reliable-ws-client.js';
import { FakeWebSocket } from '../../test/support/fake-web-socket.js';

const opts = (overrides: Partial<ReconnectOptions> = {}): ReconnectOptions => ({
  initialDelayMs: 100,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.5,
  maxRetries: 20,
  ...overrides,
});

const fixed = (value: number) => () => value;

describe('reconnectDelay', () => {
  it('stays within [nominal × (1 − jitter), nominal × (1 + jitter)] and hits both ends', () => {
    const o = opts({ initialDelayMs: 100, jitter: 0.5 });
    // attempt 3: nominal 100 × 2² = 400
    expect(reconnectDelay(3, o, fixed(0))).toBeCloseTo(200, 9);
    expect(reconnectDelay(3, o, fixed(0.5))).toBeCloseTo(400, 9);
    expect(reconnectDelay(3, o, fixed(1))).toBeCloseTo(600, 9);
    expect(reconnectDelay(3, o, fixed(0.25))).toBeCloseTo(300, 9);
    const small = opts({ initialDelayMs: 1000, jitter: 0.1 });
    expect(reconnectDelay(1, small, fixed(0))).toBeCloseTo(900, 9);
    expect(reconnectDelay(1, small, fixed(0.999999))).toBeLessThanOrEqual(1100);
    expect(reconnectDelay(1, small, fixed(0.999999))).toBeGreaterThan(1099.99);
  });

  it('with jitter 0 gives the exact nominal delays, growing by factor', () => {
    const o = opts({ initialDelayMs: 100, factor: 2, jitter: 0 });
    const random = jest.fn(() => 0.9);
    expect([1, 2, 3, 4, 5].map((n) => reconnectDelay(n, o, random))).toEqual([100, 200, 400, 800, 1600]);
    const o3 = opts({ initialDelayMs: 10, factor: 3, jitter: 0, maxDelayMs: 1_000_000 });
    expect([1, 2, 3, 4].map((n) => reconnectDelay(n, o3))).toEqual([10, 30, 90, 270]);
    const flat = opts({ initialDelayMs: 250, factor: 1, jitter: 0 });
    expect([1, 7, 50].map((n) => reconnectDelay(n, flat))).toEqual([250, 250, 250]);
  });

  it('uses the injected random source for every delay', () => {
    const random = jest.fn(() => 0.5);
    reconnectDelay(1, opts(), random);
    reconnectDelay(30, opts(), random);
    expect(random).toHaveBeenCalledTimes(2);
  });

  it('caps the nominal delay at maxDelayMs and still applies jitter at the cap', () => {
    const o = opts({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 });
    // 100, 200, 400, 800, then capped at 1000
    expect(reconnectDelay(4, o, fixed(0.5))).toBeCloseTo(800, 9);
    for (const attempt of [5, 6, 10, 40]) {
      expect(reconnectDelay(attempt, o, fixed(0.5))).toBeCloseTo(1000, 9);
      expect(reconnectDelay(attempt, o, fixed(0))).toBeCloseTo(500, 9);
      expect(reconnectDelay(attempt, o, fixed(1))).toBeCloseTo(1500, 9);
    }
    const exact = opts({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
    expect(reconnectDelay(5, exact)).toBe(1000);
    expect(reconnectDelay(100, exact)).toBe(1000);
  });

  it('clamps the exponent: huge attempts give a finite delay within the cap bounds, never 0 or NaN', () => {
    const o = opts({ initialDelayMs: 1000, maxDelayMs: 30_000, factor: 2, jitter: 0.5 });
    for (const attempt of [64, 65, 1024, 1e6, 2 ** 31, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE]) {
      for (const r of [0, 0.3, 0.999999]) {
        const delay = reconnectDelay(attempt, o, fixed(r));
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(15_000);
        expect(delay).toBeLessThanOrEqual(45_000);
      }
      expect(reconnectDelay(attempt, o, fixed(0.5))).toBeCloseTo(30_000, 6);
    }
    // a factor large enough that factor^exponent overflows to Infinity: still the cap, not Infinity/NaN
    const steep = opts({ initialDelayMs: 1, maxDelayMs: 5000, factor: 1e10, jitter: 0.2 });
    expect(reconnectDelay(1e6, steep, fixed(0.5))).toBeCloseTo(5000, 6);
    expect(reconnectDelay(Number.MAX_SAFE_INTEGER, steep, fixed(0))).toBeCloseTo(4000, 6);
  });

  it('with initialDelayMs 0 stays finite (0 × factor^n is 0, never NaN), however large the attempt or factor', () => {
    const zero = opts({ initialDelayMs: 0, maxDelayMs: 5000, factor: 2, jitter: 0.5 });
    for (const attempt of [1, 2, 1e6, Number.MAX_SAFE_INTEGER]) {
      const delay = reconnectDelay(attempt, zero, fixed(0.7));
      expect(Number.isNaN(delay)).toBe(false);
      expect(delay).toBe(0);
    }
    // factor^64 overflows to Infinity here, and 0 × Infinity is NaN unless the code guards it
    const steepZero = opts({ initialDelayMs: 0, maxDelayMs: 5000, factor: 1e10, jitter: 0.5 });
    expect(() => checkReconnectOptions(steepZero)).not.toThrow(); // the options are accepted …
    for (const attempt of [1, 2, 1e6, Number.MAX_SAFE_INTEGER]) {
      const delay = reconnectDelay(attempt, steepZero, fixed(0.7));
      expect(Number.isNaN(delay)).toBe(false); // … so the delay must be a number
      expect(Number.isFinite(delay)).toBe(true);
    }
  });

  it('spreads 10,000 samples (Math.random) uniformly over the jitter range, mean ≈ nominal', () => {
    const cases: Array<{ attempt: number; o: ReconnectOptions; nominal: number }> = [
      { attempt: 3, o: opts({ initialDelayMs: 100, jitter: 0.5 }), nominal: 400 },
      { attempt: 1, o: opts({ initialDelayMs: 1000, jitter: 0.2 }), nominal: 1000 },
      // at the cap: jitter must still spread the delays
      { attempt: 1e6, o: opts({ initialDelayMs: 1000, maxDelayMs: 30_000, jitter: 0.5 }), nominal: 30_000 },
    ];
    for (const { attempt, o, nominal } of cases) {
      const low = nominal * (1 - o.jitter);
      const high = nominal * (1 + o.jitter);
      const span = high - low;
      const samples = Array.from({ length: 10_000 }, () => reconnectDelay(attempt, o));
      const mean = samples.reduce((sum, x) => sum + x, 0) / samples.length;
      const min = Math.min(...samples);
      const max = Math.max(...samples);
      expect(Math.abs(mean - nominal) / nominal).toBeLessThan(0.03);
      expect(min).toBeGreaterThanOrEqual(low);
      expect(max).toBeLessThanOrEqual(high);
      expect(min).toBeLessThan(low + span * 0.01);
      expect(max).toBeGreaterThan(high - span * 0.01);
      // roughly uniform: each quarter of the range holds about a quarter of the samples
      const quarters = [0, 0, 0, 0];
      for (const x of samples) quarters[Math.min(3, Math.floor(((x - low) / span) * 4))]++;
      for (const count of quarters) expect(Math.abs(count - 2500)).toBeLessThan(250);
      expect(new Set(samples).size).toBeGreaterThan(9000); // not a handful of repeated values
    }
  });
});

describe('reconnectDelay within what a timer holds', () => {
  it('a jittered delay at the longest cap never passes 2^31 - 1 ms', () => {
    const longest = opts({ initialDelayMs: 1000, maxDelayMs: 2 ** 31 - 1, jitter: 1 });
    expect(reconnectDelay(100, longest, fixed(0.999))).toBe(2 ** 31 - 1);
    expect(reconnectDelay(100, longest, fixed(0.25))).toBeCloseTo((2 ** 31 - 1) * 0.5, 0);
  });
});

describe('checkReconnectOptions', () => {
  it('accepts the defaults and valid edge values, returning the options', () => {
    expect(checkReconnectOptions({ ...DEFAULT_RECONNECT })).toEqual(DEFAULT_RECONNECT);
    const edge = opts({ initialDelayMs: 0, maxDelayMs: 0, factor: 1, jitter: 0, maxRetries: 0 });
    expect(checkReconnectOptions(edge)).toBe(edge);
    expect(() => checkReconnectOptions(opts({ jitter: 1 }))).not.toThrow();
  });

  it.each([
    ['initialDelayMs', -1],
    ['initialDelayMs', Number.NaN],
    ['initialDelayMs', Number.POSITIVE_INFINITY],
    ['maxDelayMs', 50], // below initialDelayMs (100)
    ['maxDelayMs', Number.NaN],
    ['maxDelayMs', Number.POSITIVE_INFINITY],
    ['maxDelayMs', 2 ** 31], // past what a timer holds: it would fire at once
    ['factor', 0.5],
    ['factor', 0],
    ['factor', Number.NaN],
    ['jitter', -0.1],
    ['jitter', 1.5],
    ['jitter', Number.NaN],
    ['maxRetries', -1],
    ['maxRetries', 1.5],
    ['maxRetries', Number.NaN],
  ] as Array<[keyof ReconnectOptions, number]>)('rejects reconnect.%s = %p with a RangeError naming it', (name, value) => {
    const bad = { ...opts(), [name]: value };
    expect(() => checkReconnectOptions(bad)).toThrow(RangeError);
    expect(() => checkReconnectOptions(bad)).toThrow(`reconnect.${name}`);
    expect(() => checkReconnectOptions(bad)).toThrow(String(value));
  });

  it('rejects a non-number value', () => {
    expect(() => checkReconnectOptions({ ...opts(), factor: '2' as unknown as number })).toThrow('reconnect.factor');
  });

  it('the client constructor checks them before it opens any socket', () => {
    const constructed: unknown[] = [];
    class NoSocket {
      constructor() {
        constructed.push(this);
      }
    }
    expect(
      () =>
        new ReliableWsClient('ws://127.0.0.1:9/', {
          WebSocket: NoSocket as never,
          reconnect: { jitter: 2 },
        }),
    ).toThrow(/reconnect\.jitter/);
    expect(constructed).toHaveLength(0);
  });
});

describe('ReliableWsClient reconnect schedule (fake timers, fake WebSocket)', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
    FakeWebSocket.instances = [];
  });

  function setup(reconnect: Partial<ReconnectOptions>, extra: Record<string, unknown> = {}) {
    jest.useFakeTimers({ now: 1_000_000 });
    jest.spyOn(Math, 'random').mockReturnValue(0.25); // jitter multiplier 1 − j + 2j × 0.25
    const client = new ReliableWsClient('ws://example.test/ws', {
      WebSocket: FakeWebSocket,
      heartbeat: false,
      reconnect,
      ...extra,
    });
    const events: Array<[string, unknown]> = [];
    for (const name of ['$state', '$reconnecting', '$failed', '$ready', '$close'] as const) {
      client.on(name, (data: unknown) => events.push([name, data]));
    }
    jest.runAllTicks(); // the client connects in a microtask, once listeners could be attached
    const sockets = FakeWebSocket.instances;
    return { client, events, sockets };
  }

  it('opens attempt n after the computed delay, then gives up after exactly maxRetries attempts', () => {
    const reconnect = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5, maxRetries: 5 };
    const { client, events, sockets } = setup(reconnect);
    expect(sockets).toHaveLength(1); // the constructor starts connecting
    expect(sockets[0]!.url).toBe('ws://example.test/ws');
    expect(sockets[0]!.protocols).toBe('rws.v1');
    expect(client.state).toBe('connecting');

    // nominal 100, 200, 400, 800, 1000 (capped) × (1 − 0.5 + 2 × 0.5 × 0.25 = 0.75)
    const expected = [75, 150, 300, 600, 750];
    for (let attempt = 1; attempt <= reconnect.maxRetries; attempt++) {
      const delay = expected[attempt - 1]!;
      sockets[attempt - 1]!.fireClose(1006);
      expect(client.state).toBe('reconnecting');
      expect(events.filter(([name]) => name === '$reconnecting').at(-1)).toEqual(['$reconnecting', { attempt, delayMs: delay }]);
      jest.advanceTimersByTime(delay - 1);
      expect(sockets).toHaveLength(attempt); // not yet
      jest.advanceTimersByTime(1);
      expect(sockets).toHaveLength(attempt + 1); // exactly at the delay
      expect(sockets[attempt]!.createdAt - sockets[attempt - 1]!.createdAt).toBe(delay);
    }
    expect(events.filter(([name]) => name === '$failed')).toHaveLength(0);

    sockets[reconnect.maxRetries]!.fireClose(1006); // the last allowed attempt fails too
    expect(client.state).toBe('failed');
    const failed = events.filter(([name]) => name === '$failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]![1]).toBeInstanceOf(Error);
    expect(String((failed[0]![1] as Error).message)).toMatch(/5/);
    expect(events.filter(([name]) => name === '$reconnecting')).toHaveLength(reconnect.maxRetries);
    expect(events.filter(([name]) => name === '$state').map(([, s]) => s)).toEqual(['connecting', 'reconnecting', 'failed']);

    jest.advanceTimersByTime(10 * 60_000);
    expect(sockets).toHaveLength(1 + reconnect.maxRetries); // the initial connect + maxRetries attempts, no more
    expect(jest.getTimerCount()).toBe(0);
  });

  it('maxRetries 0: the first drop fails at once, no reconnect', () => {
    const { client, events, sockets } = setup({ maxRetries: 0 });
    sockets[0]!.fireClose(1006);
    expect(client.state).toBe('failed');
    expect(events.filter(([name]) => name === '$failed')).toHaveLength(1);
    jest.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
  });

  it('a connection that stayed open for 1 s (initialDelayMs, at least 1 s) after $ready starts the schedule over', () => {
    const { client, events, sockets } = setup({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5, maxRetries: 5 });
    sockets[0]!.fireClose(1006);
    jest.advanceTimersByTime(75);
    sockets[1]!.fireClose(1006);
    jest.advanceTimersByTime(150);
    expect(sockets).toHaveLength(3);
    sockets[2]!.accept();
    expect(client.state).toBe('open');
    expect(sockets[2]!.sent[0]).toContain('"$hello"');
    jest.advanceTimersByTime(1000);
    sockets[2]!.fireClose(1006);
    expect(events.filter(([name]) => name === '$reconnecting').at(-1)).toEqual(['$reconnecting', { attempt: 1, delayMs: 75 }]);
    jest.advanceTimersByTime(74);
    expect(sockets).toHaveLength(3);
    jest.advanceTimersByTime(1);
    expect(sockets).toHaveLength(4);
  });

  it('a connection closed sooner after $ready counts as the next failed attempt, up to maxRetries', () => {
    const { client, events, sockets } = setup({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5, maxRetries: 5 });
    for (const delay of [75, 150, 300, 600, 750]) {
      FakeWebSocket.last.accept();
      jest.advanceTimersByTime(999);
      FakeWebSocket.last.fireClose(1011);
      expect(events.filter(([name]) => name === '$reconnecting').at(-1)?.[1]).toMatchObject({ delayMs: delay });
      jest.advanceTimersByTime(delay);
    }
    FakeWebSocket.last.accept();
    FakeWebSocket.last.fireClose(1011);
    expect(client.state).toBe('failed');
    expect(sockets).toHaveLength(6);
  });

  it('4029 waits maxDelayMs (jittered), whatever the attempt', () => {
    const { events, sockets } = setup({ initialDelayMs: 100, maxDelayMs: 2000, factor: 2, jitter: 0.5, maxRetries: 5 });
    sockets[0]!.accept();
    sockets[0]!.fireClose(4029, 'rate limited');
    expect(events.filter(([name]) => name === '$reconnecting').at(-1)).toEqual(['$reconnecting', { attempt: 1, delayMs: 1500 }]);
    jest.advanceTimersByTime(1499);
    expect(sockets).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(sockets).toHaveLength(2);
  });

  it('4029 waits maxDelayMs also when initialDelayMs is 0', () => {
    const { events, sockets } = setup({ initialDelayMs: 0, maxDelayMs: 2000, factor: 2, jitter: 0.5, maxRetries: 5 });
    sockets[0]!.accept();
    sockets[0]!.fireClose(4029, 'rate limited');
    // DESIGN §4: "4029 reconnects after maxDelayMs (jittered)" — 2000 × 0.75
    expect(events.filter(([name]) => name === '$reconnecting').at(-1)).toEqual(['$reconnecting', { attempt: 1, delayMs: 1500 }]);
    jest.advanceTimersByTime(1499);
    expect(sockets).toHaveLength(1);
  });

  it('terminal close codes 1008 and 4003 fail at once without scheduling anything', () => {
    for (const code of [1008, 4003]) {
      const { client, events, sockets } = setup({ initialDelayMs: 10, maxRetries: 5 });
      sockets[0]!.accept();
      sockets[0]!.fireClose(code);
      expect(client.state).toBe('failed');
      expect(events.filter(([name]) => name === '$failed')).toHaveLength(1);
      expect(events.filter(([name]) => name === '$reconnecting')).toHaveLength(0);
      jest.advanceTimersByTime(60_000);
      expect(sockets).toHaveLength(1);
      jest.useRealTimers();
      FakeWebSocket.instances = [];
    }
  });

  it('a connect attempt that never opens is given up after connectTimeoutMs', () => {
    const { client, events, sockets } = setup(
      { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5, maxRetries: 5 },
      { connectTimeoutMs: 500 },
    );
    jest.advanceTimersByTime(499);
    expect(client.state).toBe('connecting');
    jest.advanceTimersByTime(1);
    expect(client.state).toBe('reconnecting');
    expect(events.filter(([name]) => name === '$close').at(-1)?.[1]).toMatchObject({ reason: 'connect timeout' });
    jest.advanceTimersByTime(75);
    expect(sockets).toHaveLength(2);
  });
});
