import { jest } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import { preparePush } from '../protocol/index.js';
import { hashSecret, SessionRegistry, type Session } from '../session/index.js';
import type { HandoverEnvelope, PushEnvelope } from './broadcast-envelope.js';
import { ADOPTION_CONCURRENCY, MAX_QUEUED_ADOPTIONS, SessionHandover, SessionUnsettledError, type HandoverBus } from './session-handover.js';

const warnings: string[] = [];
const capture: LoggerService = {
  log: () => undefined,
  warn: (message: unknown) => void warnings.push(String(message)),
  error: () => undefined,
};
beforeAll(() => Logger.overrideLogger(capture));
beforeEach(() => {
  warnings.length = 0;
});

/**
 * Two instances' SessionHandover joined by an in-memory bus that delivers every envelope
 * asynchronously and in order, like Redis pub/sub; `beforeDeliver` lets a test act at an exact
 * step of the protocol.
 */
function cluster(ids: string[] = ['A', 'B']) {
  /** The handover store, as the Redis scripts keep it: each snapshot and who holds it. */
  const stored = new Map<string, { snapshot: string; holder: string }>();
  /** Everything that went over the bus or into the store, as text. */
  const wire: string[] = [];
  const nodes = new Map<string, { registry: SessionRegistry; handover: SessionHandover }>();
  /** Rooms each instance subscribed to for its claims and has not released: how many claims hold each. */
  const claimedRooms = new Map<string, Map<string, number>>();
  const countClaim = (instanceId: string, room: string, by: number): void => {
    const rooms = claimedRooms.get(instanceId) ?? new Map<string, number>();
    claimedRooms.set(instanceId, rooms.set(room, (rooms.get(room) ?? 0) + by));
  };
  let beforeDeliver: (envelope: HandoverEnvelope, to: string) => boolean | void = () => undefined;
  let failStore = false;
  /** What the owner does when asked to deliver up to the claimer's marks (default: it already has). */
  let whenDelivered: (marks: unknown[]) => Promise<boolean> = async () => true;
  const busFor = (instanceId: string): HandoverBus => ({
    instanceId,
    local: false,
    async publish(envelope) {
      wire.push(JSON.stringify(envelope));
      for (const [id, node] of nodes) {
        if (id === instanceId) continue;
        await Promise.resolve();
        if (beforeDeliver(envelope, id) === false) continue; // dropped
        node.handover.receive(envelope);
      }
    },
    subscribeRoom: async (room) => countClaim(instanceId, room, 1),
    releaseRoom: (room) => countClaim(instanceId, room, -1),
    relay: () => undefined, // pushes through a moving session's socket: the e2e specs cover them
    async store(key, value) {
      if (failStore) throw new Error('store failed');
      wire.push(value);
      stored.set(key, { snapshot: value, holder: 'owner' });
    },
    async claim(key, claim) {
      const entry = stored.get(key);
      if (!entry || (entry.holder !== 'owner' && entry.holder !== claim)) return undefined;
      entry.holder = claim;
      return entry.snapshot;
    },
    async takeBack(key) {
      const entry = stored.get(key);
      if (!entry) return 'gone';
      if (entry.holder !== 'owner') return 'claimed';
      stored.delete(key);
      return 'back';
    },
    async discard(key) {
      stored.delete(key);
    },
    userIdOf: (principal) => (principal as { id?: string } | null)?.id,
    keyFor: (request) => `handover:${request}`,
    positions: (rooms) => rooms.map((room) => [`room:${room}`, 'e1', 7] as [string, string, number]),
    whenDelivered: (marks) => whenDelivered(marks),
  });
  for (const id of ids) {
    const registry = new SessionRegistry({ bufferSize: 100, ttlMs: 60_000 });
    nodes.set(id, { registry, handover: new SessionHandover(registry, busFor(id)) });
  }
  return {
    a: nodes.get('A')!,
    b: nodes.get('B')!,
    node: (id: string) => nodes.get(id)!,
    wire,
    onDeliver(hook: typeof beforeDeliver) {
      beforeDeliver = hook;
    },
    failStore(fail: boolean) {
      failStore = fail;
    },
    onWhenDelivered(hook: typeof whenDelivered) {
      whenDelivered = hook;
    },
    /** The rooms an instance's claims hold now (none released twice: a negative count would show). */
    claimedRooms(id: string): Record<string, number> {
      return Object.fromEntries([...(claimedRooms.get(id) ?? [])].filter(([, claims]) => claims !== 0));
    },
    shutdown() {
      for (const node of nodes.values()) node.registry.onApplicationShutdown();
    },
  };
}

/** A session living on A, detached (its client is reconnecting), with pushes 1..3. */
function sessionOnA(a: { registry: SessionRegistry }): Session {
  // owned by user 'ann'; claims below come for 'ann' unless a test says otherwise
  // SessionRegistry makes sessions only for sockets or from snapshots: adopt a fresh one
  const session = a.registry.adopt({
    id: 'session-1',
    resumeTokenHash: hashSecret('token-1'),
    principal: { id: 'ann' },
    lastSeq: 0,
    lastId: 0,
    ackedSeq: 0,
    rooms: [],
    pushes: [],
    answers: [],
  })!;
  for (let n = 1; n <= 3; n++) session.push(preparePush('tick', String(n), `origin:${n}`));
  return session;
}

const envelope = (n: number): PushEnvelope => ({
  type: 'push',
  origin: 'C',
  id: `origin:${n}`,
  target: { kind: 'client', sessionId: 'session-1' },
  event: 'tick',
  dataJson: String(n),
});

const frame = (n: number, seq = n) => `{"event":"tick","data":${n},"seq":${seq}}`;

/** The frames a resume after `lastSeq` replays, or undefined when it cannot. */
function replayAfter(session: Session, lastSeq: number): string[] | undefined {
  if (!session.canReplayAfter(lastSeq)) return undefined;
  const frames: string[] = [];
  for (let seq = lastSeq + 1; seq <= session.lastSeq; seq++) frames.push(session.pushAt(seq)!.frame(seq));
  return frames;
}

describe('SessionHandover', () => {
  it('moves a session with its buffer; a push heard during the move is kept once (merged by broadcast id)', async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    const session = sessionOnA(a);
    onDeliver((env, to) => {
      if (env.type === 'handover-commit' && to === 'A') {
        // published after B started listening, before the commit: A delivers it, B hears it
        session.push(preparePush('tick', '4', 'origin:4'));
        b.handover.hear(envelope(4));
      }
    });
    const moved = await b.handover.claim('session-1', 'token-1', 'ann');
    expect(moved?.id).toBe('session-1');
    await settle();
    expect(a.registry.getSession('session-1')).toBeUndefined();
    expect(moved!.lastSeq).toBe(4);
    expect(replayAfter(moved!, 0)).toEqual([frame(1), frame(2), frame(3), frame(4)]);
    shutdown();
  });

  it('a push heard after the commit is appended after the snapshot', async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    sessionOnA(a);
    onDeliver((env, to) => {
      if (env.type === 'handover-done' && to === 'B') b.handover.hear(envelope(4)); // A no longer has it
    });
    const moved = await b.handover.claim('session-1', 'token-1', 'ann');
    expect(replayAfter(moved!, 3)).toEqual([frame(4)]);
    shutdown();
  });

  it('a push heard during the move that the client already acknowledged on A is not delivered again', async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    const session = sessionOnA(a);
    onDeliver((env, to) => {
      if (env.type === 'handover-commit' && to === 'A') {
        session.push(preparePush('tick', '4', 'origin:4'));
        b.handover.hear(envelope(4));
        // the old connection, still alive (a takeover of a half-open session), confirms all of it
        session.acknowledge(4);
      }
    });
    const moved = await b.handover.claim('session-1', 'token-1', 'ann');
    // the client has seq 1..4 and resumes with lastSeq 4: nothing must be replayed
    expect(moved!.lastSeq).toBe(4);
    expect(replayAfter(moved!, 4)).toEqual([]);
    shutdown();
  });

  it('a wrong resume token is refused; the session stays where it is', async () => {
    const { a, b, shutdown } = cluster();
    sessionOnA(a);
    expect(await b.handover.claim('session-1', 'not-the-token', 'ann')).toBeUndefined();
    expect(a.registry.getSession('session-1')).toBeDefined();
    shutdown();
  });

  it('two claims of one session on the same instance at once both end with the session there', async () => {
    const { a, b, shutdown } = cluster();
    sessionOnA(a);
    const [first, second] = await Promise.all([
      b.handover.claim('session-1', 'token-1', 'ann'),
      b.handover.claim('session-1', 'token-1', 'ann'),
    ]);
    expect(first?.id).toBe('session-1');
    expect(second?.id).toBe('session-1');
    shutdown();
  });

  it("a claim for another user's session is refused and never disturbs the owner's connection", async () => {
    const { a, b, shutdown } = cluster();
    const session = sessionOnA(a);
    const owner = { deliver: jest.fn(), write: jest.fn(), close: jest.fn(), terminate: jest.fn() };
    session.attach(owner);
    expect(await b.handover.claim('session-1', 'token-1', 'bob')).toBeUndefined();
    expect(await b.handover.claim('session-1', 'token-1', undefined)).toBeUndefined();
    expect(owner.terminate).not.toHaveBeenCalled();
    expect(session.attached).toBe(true);
    expect(a.registry.getSession('session-1')).toBe(session);
    shutdown();
  });

  it('a claim with a wrong token running at the same time does not spoil the rightful one', async () => {
    const { a, b, shutdown } = cluster();
    sessionOnA(a);
    const [wrong, right] = await Promise.all([
      b.handover.claim('session-1', 'not-the-token', 'ann'),
      b.handover.claim('session-1', 'token-1', 'ann'),
    ]);
    expect(wrong).toBeUndefined();
    expect(right?.id).toBe('session-1');
    shutdown();
  });

  it("a client's resume that meets its session's adoption on the same instance gets the session (not a new one)", async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    sessionOnA(a);
    let resumed: Promise<Session | undefined> | undefined;
    onDeliver((env, to) => {
      // A shuts down and offers the session to B; its client reconnects to B while B adopts it
      if (env.type === 'handover-prepare' && env.adopt && to === 'A') resumed = b.handover.claim('session-1', 'token-1', 'ann');
    });
    await a.handover.offerAll(5000);
    expect(resumed).toBeDefined();
    expect((await resumed)?.id).toBe('session-1');
    expect(b.registry.getSession('session-1')).toBeDefined();
    expect(a.registry.getSession('session-1')).toBeUndefined();
    shutdown();
  });

  it('a shutting-down owner waits for a move that is still committing (a slow Redis), within its deadline', async () => {
    const { a, b, onWhenDelivered, shutdown } = cluster();
    sessionOnA(a);
    // the commit's first step outlasts the pause after which no new claim is expected
    onWhenDelivered(() => new Promise((resolve) => setTimeout(() => resolve(true), 1500)));
    await a.handover.offerAll(5000);
    expect(b.registry.getSession('session-1')).toBeDefined();
    expect(a.registry.getSession('session-1')).toBeUndefined();
    shutdown();
  });

  it('a resume that reaches the owner while its session moves away claims it back (not a new one)', async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    sessionOnA(a);
    let resumedOnA: Promise<Session | undefined> | undefined;
    onDeliver((env, to) => {
      // the client's connection to B is cut mid-claim and it reconnects to A before the move settles
      if (env.type === 'handover-done' && to === 'B') resumedOnA = a.handover.claim('session-1', 'token-1', 'ann');
    });
    expect((await b.handover.claim('session-1', 'token-1', 'ann'))?.id).toBe('session-1');
    expect(resumedOnA).toBeDefined();
    const resumed = await resumedOnA;
    expect(resumed?.id).toBe('session-1');
    expect(resumed?.moving).toBe(false);
    expect(a.registry.getSession('session-1')).toBe(resumed);
    expect(b.registry.getSession('session-1')).toBeUndefined();
    shutdown();
  });

  it('a snapshot that cannot be stored leaves the session with its owner; the claim says so, and a later one moves it', async () => {
    const { a, b, failStore, shutdown } = cluster();
    sessionOnA(a);
    failStore(true);
    await expect(b.handover.claim('session-1', 'token-1', 'ann')).rejects.toThrow(SessionUnsettledError);
    await settle();
    const kept = a.registry.getSession('session-1');
    expect(kept?.moving).toBe(false);
    expect(replayAfter(kept!, 0)).toEqual([frame(1), frame(2), frame(3)]);
    expect(b.registry.getSession('session-1')).toBeUndefined();
    failStore(false);
    const moved = await b.handover.claim('session-1', 'token-1', 'ann');
    expect(replayAfter(moved!, 0)).toEqual([frame(1), frame(2), frame(3)]);
    expect(a.registry.getSession('session-1')).toBeUndefined();
    shutdown();
  });

  it('a rightful claim of a session promised to another claim is told to come back; a wrong one is refused as before', async () => {
    const { a, b, node, onDeliver, shutdown } = cluster(['A', 'B', 'C']);
    sessionOnA(a);
    let second: Promise<Session | undefined> | undefined;
    let wrong: Promise<Session | undefined> | undefined;
    onDeliver((env, to) => {
      if (env.type === 'handover-commit' && to === 'A' && !second) {
        // B's claim holds the session's promise; C claims it with the right and with a wrong token
        second = node('C').handover.claim('session-1', 'token-1', 'ann');
        wrong = node('C').handover.claim('session-1', 'not-the-token', 'ann');
      }
    });
    expect((await b.handover.claim('session-1', 'token-1', 'ann'))?.id).toBe('session-1');
    await expect(second).rejects.toThrow(SessionUnsettledError);
    expect(await wrong).toBeUndefined();
    shutdown();
  });

  it('a commit whose answer never reaches the claimer leaves the session with its owner, not lost on both sides', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const { a, b, onDeliver, shutdown } = cluster();
      sessionOnA(a);
      onDeliver((env) => (env.type === 'handover-done' ? false : undefined));
      const claimed = b.handover.claim('session-1', 'token-1', 'ann').catch((error: unknown) => error);
      for (let i = 0; i < 50 && jest.getTimerCount() > 0; i++) {
        await jest.advanceTimersByTimeAsync(500);
      }
      expect(await claimed).toBeInstanceOf(SessionUnsettledError);
      expect(a.registry.getSession('session-1')?.moving).toBe(false);
      expect(b.registry.getSession('session-1')).toBeUndefined();
      shutdown();
    } finally {
      jest.useRealTimers();
    }
  });

  it('neither the bus nor the store ever carries the resume token', async () => {
    const { a, b, wire, shutdown } = cluster();
    sessionOnA(a);
    await b.handover.claim('session-1', 'not-the-token', 'ann');
    expect(await b.handover.claim('session-1', 'token-1', 'ann')).toBeDefined();
    expect(wire.length).toBeGreaterThan(4);
    for (const text of wire) {
      expect(text).not.toContain('token-1');
      expect(text).not.toContain('not-the-token');
    }
    shutdown();
  });

  it('a shutdown offers each session to one instance only: three instances, no session claimed twice', async () => {
    const { a, node, wire, shutdown } = cluster(['A', 'B', 'C']);
    for (let k = 1; k <= 30; k++) {
      a.registry.adopt({ ...snapshotOf(`s-${k}`), principal: null });
    }
    await a.handover.offerAll(5000);
    const prepares = wire.map((text) => JSON.parse(text) as { type?: string; sessionId?: string }).filter((env) => env.type === 'handover-prepare');
    expect(prepares.length).toBe(30);
    expect(new Set(prepares.map((env) => env.sessionId)).size).toBe(30);
    expect([...a.registry.allSessions()]).toEqual([]);
    const adopted = ['B', 'C'].map((id) => [...node(id).registry.allSessions()].length);
    expect(adopted[0] + adopted[1]).toBe(30);
    expect(Math.min(...adopted)).toBeGreaterThan(0);
    shutdown();
  });

  it('the owner first delivers what the claimer will not hear (pushes of a lagging shard land in the snapshot)', async () => {
    const { a, b, onWhenDelivered, shutdown } = cluster();
    const session = sessionOnA(a);
    session.joinRoom('r');
    const asked: unknown[][] = [];
    onWhenDelivered(async (marks) => {
      asked.push(marks);
      await new Promise((resolve) => setTimeout(resolve, 20));
      session.push(preparePush('tick', '4', 'origin:4')); // arrives late on A's shard connection
      return true;
    });
    const moved = await b.handover.claim('session-1', 'token-1', 'ann');
    expect(asked).toEqual([[['room:r', 'e1', 7]]]);
    expect(replayAfter(moved!, 0)).toEqual([frame(1), frame(2), frame(3), frame(4)]);
    shutdown();
  });

  it("a forged adoption claim naming another claim's request never hands that claimer the session under its client's token", async () => {
    const { a, b, onDeliver, claimedRooms, shutdown } = cluster();
    sessionOnA(a).joinRoom('r');
    // A shuts down and finds no adopter: its session stays offered while it closes
    onDeliver((env) => (env.type === 'adopt-here' ? false : undefined));
    await a.handover.offerAll(5000);
    onDeliver((env, to) => {
      // someone on the bus sees B's claim of a session nobody has, and offers A's session under B's request
      if (env.type === 'handover-prepare' && env.sessionId === 'unknown-session' && to === 'A') {
        a.handover.receive({ type: 'handover-prepare', origin: 'forger', request: env.request, sessionId: 'session-1', adopt: true });
      }
    });
    // the forger's own client resumes a made-up session on B with a token of its own choosing
    expect(await b.handover.claim('unknown-session', 'forger-token', 'ann')).toBeUndefined();
    expect(b.registry.getSession('session-1')).toBeUndefined();
    expect(claimedRooms('B')).toEqual({}); // the refused session's rooms
    // given back: its owner takes it back when no `taken` comes, and keeps it for its own client
    const kept = await keptByOwner(a);
    expect(kept.acceptsToken('forger-token')).toBe(false);
    expect(kept.acceptsToken('token-1')).toBe(true);
    shutdown();
  });

  it('a snapshot whose token hash is not the claiming client\'s is never restored under that client\'s token', async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    sessionOnA(a);
    onDeliver((env) => (env.type === 'adopt-here' ? false : undefined));
    await a.handover.offerAll(5000);
    onDeliver((env, to) => {
      // a forged adoption claim under the request of B's claim (wrong token) gets there first; A's refusal is lost
      if (env.type === 'handover-prepare' && !env.adopt && to === 'A') {
        a.handover.receive({ type: 'handover-prepare', origin: 'forger', request: env.request, sessionId: 'session-1', adopt: true });
        return false;
      }
    });
    expect(await b.handover.claim('session-1', 'forger-token', 'ann')).toBeUndefined();
    expect(b.registry.getSession('session-1')).toBeUndefined();
    // given back: its owner takes it back when no `taken` comes, and keeps it for its own client
    const kept = await keptByOwner(a);
    expect(kept.acceptsToken('forger-token')).toBe(false);
    expect(kept.acceptsToken('token-1')).toBe(true);
    shutdown();
  });

  it('answers that do not fit the step (a forged done naming another key, a refusal of a replayed prepare) leave the claim running', async () => {
    const { a, b, onDeliver, shutdown } = cluster();
    sessionOnA(a);
    onDeliver((env, to) => {
      if (env.type === 'handover-done' && to === 'B') {
        // someone on the bus answers the commit first: another key, and a refusal of the same request
        b.handover.receive({ type: 'handover-refused', origin: 'forger', request: env.request });
        b.handover.receive({ ...env, origin: 'forger', key: 'handover:another-session' });
      }
    });
    const moved = await b.handover.claim('session-1', 'token-1', 'ann');
    expect(moved?.id).toBe('session-1');
    expect(replayAfter(moved!, 0)).toEqual([frame(1), frame(2), frame(3)]);
    shutdown();
  });

  it('the rooms a claim subscribed to are released once it ends, whether the session moved or not', async () => {
    const outcomes: Array<[string, (c: ReturnType<typeof cluster>) => void]> = [
      ['moved', () => undefined],
      ['the snapshot could not be stored', (c) => c.failStore(true)],
      ['the owner could not catch up', (c) => c.onWhenDelivered(async () => false)],
    ];
    for (const [outcome, arrange] of outcomes) {
      const c = cluster();
      const session = sessionOnA(c.a);
      for (const room of ['r1', 'r2']) session.joinRoom(room);
      arrange(c);
      let duringClaim = {};
      c.onDeliver((env, to) => {
        if (env.type === 'handover-commit' && to === 'A') duringClaim = c.claimedRooms('B');
      });
      await c.b.handover.claim('session-1', 'token-1', 'ann').catch(() => undefined);
      expect({ outcome, duringClaim, afterClaim: c.claimedRooms('B') }).toEqual({ outcome, duringClaim: { r1: 1, r2: 1 }, afterClaim: {} });
      c.shutdown();
    }
  });

  it('a forged ready naming a thousand rooms for a claim that no owner commits: every one is released when the claim times out', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const { b, onDeliver, claimedRooms, shutdown } = cluster();
      const rooms = Array.from({ length: 1000 }, (_, n) => `room-${n}`);
      let duringClaim = 0;
      onDeliver((env, to) => {
        if (env.type === 'handover-prepare' && to === 'A') b.handover.receive({ type: 'handover-ready', origin: 'forger', request: env.request, rooms });
        if (env.type === 'handover-commit' && to === 'A') duringClaim = Object.keys(claimedRooms('B')).length;
      });
      const claimed = b.handover.claim('unknown-session', 'forger-token', 'ann').catch((error: unknown) => error);
      for (let i = 0; i < 50 && jest.getTimerCount() > 0; i++) {
        await jest.advanceTimersByTimeAsync(500);
      }
      expect(await claimed).toBeInstanceOf(SessionUnsettledError);
      expect(duringClaim).toBe(1000);
      expect(Object.keys(claimedRooms('B')).length).toBe(0);
      shutdown();
    } finally {
      jest.useRealTimers();
    }
  });

  it('an owner that cannot catch up with the claimer keeps the session', async () => {
    const { a, b, onWhenDelivered, shutdown } = cluster();
    sessionOnA(a);
    onWhenDelivered(async () => false);
    await expect(b.handover.claim('session-1', 'token-1', 'ann')).rejects.toThrow(SessionUnsettledError);
    await settle();
    expect(a.registry.getSession('session-1')?.moving).toBe(false);
    expect(b.registry.getSession('session-1')).toBeUndefined();
    shutdown();
  });
});

describe('SessionHandover adoption offers', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }));
  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  /** An offer to B of `count` sessions nobody has, as anyone on the bus may publish it: each claim waits a step for an answer. */
  const offerToB = (b: { handover: SessionHandover }, tag: string, count: number): void =>
    b.handover.receive({ type: 'adopt-offer', origin: 'forger', adopter: 'B', sessionIds: Array.from({ length: count }, (_, n) => `${tag}-${n}`) });
  const claimsStarted = (wire: string[]): string[] =>
    wire.map((text) => JSON.parse(text) as { type?: string; sessionId: string }).filter((env) => env.type === 'handover-prepare').map((env) => env.sessionId);

  it('however many offers come, an instance runs at most ADOPTION_CONCURRENCY adoption claims at once, and claims every offered session in turn', async () => {
    const { b, wire, shutdown } = cluster();
    for (let offer = 0; offer < 5; offer++) offerToB(b, `offer-${offer}`, 100);
    await settle();
    expect(claimsStarted(wire).length).toBe(ADOPTION_CONCURRENCY);
    for (let i = 0; i < 50 && jest.getTimerCount() > 0; i++) await jest.advanceTimersByTimeAsync(500);
    expect(new Set(claimsStarted(wire)).size).toBe(500);
    shutdown();
  });

  it('offered sessions beyond MAX_QUEUED_ADOPTIONS waiting are dropped, with a throttled warn line', async () => {
    const { b, wire, shutdown } = cluster();
    offerToB(b, 'fills', ADOPTION_CONCURRENCY + MAX_QUEUED_ADOPTIONS);
    for (let offer = 0; offer < 20; offer++) offerToB(b, `beyond-${offer}`, 3);
    await settle();
    const dropped = warnings.filter((line) => line.includes('adoption'));
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    expect(dropped.length).toBeLessThanOrEqual(5);
    expect(dropped[0]).toContain('dropped 3 session(s) offered by instance "forger"');
    // the first claims time out: the next ones are of the sessions waiting first
    await jest.advanceTimersByTimeAsync(1000);
    const fills = Array.from({ length: 2 * ADOPTION_CONCURRENCY }, (_, n) => `fills-${n}`);
    expect(claimsStarted(wire)).toEqual(fills);
    shutdown();
  });
});

function snapshotOf(id: string) {
  return { id, resumeTokenHash: hashSecret(`token-${id}`), principal: null, lastSeq: 0, lastId: 0, ackedSeq: 0, rooms: [], pushes: [], answers: [] };
}

/** session-1 once its owner has settled its move (bounded: the owner waits 2 s for `taken`). */
async function keptByOwner(owner: { registry: SessionRegistry }): Promise<Session> {
  for (let i = 0; i < 100 && owner.registry.getSession('session-1')?.moving; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const session = owner.registry.getSession('session-1');
  expect(session?.moving).toBe(false);
  return session!;
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};
