import { preparePush } from '../protocol/index.js';
import { SessionRegistry, type Session } from '../session/index.js';
import type { HandoverEnvelope, PushEnvelope } from './broadcast-envelope.js';
import { SessionHandover, type HandoverBus } from './session-handover.js';

/**
 * Two instances' SessionHandover joined by an in-memory bus that delivers every envelope
 * asynchronously and in order, like Redis pub/sub; `beforeDeliver` lets a test act at an exact
 * step of the protocol.
 */
function cluster() {
  const stored = new Map<string, string>();
  const nodes = new Map<string, { registry: SessionRegistry; handover: SessionHandover }>();
  let beforeDeliver: (envelope: HandoverEnvelope, to: string) => void = () => undefined;
  const busFor = (instanceId: string): HandoverBus => ({
    instanceId,
    local: false,
    async publish(envelope) {
      for (const [id, node] of nodes) {
        if (id === instanceId) continue;
        await Promise.resolve();
        beforeDeliver(envelope, id);
        node.handover.receive(envelope);
      }
    },
    subscribeRoom: async () => undefined,
    async store(key, value) {
      stored.set(key, value);
    },
    async take(key) {
      const value = stored.get(key);
      stored.delete(key);
      return value;
    },
    userIdOf: () => undefined,
    keyFor: (request) => `handover:${request}`,
  });
  for (const id of ['A', 'B']) {
    const registry = new SessionRegistry({ bufferSize: 100, ttlMs: 60_000 });
    nodes.set(id, { registry, handover: new SessionHandover(registry, busFor(id)) });
  }
  return {
    a: nodes.get('A')!,
    b: nodes.get('B')!,
    onDeliver(hook: typeof beforeDeliver) {
      beforeDeliver = hook;
    },
    shutdown() {
      for (const node of nodes.values()) node.registry.onApplicationShutdown();
    },
  };
}

/** A session living on A, detached (its client is reconnecting), with pushes 1..3. */
function sessionOnA(a: { registry: SessionRegistry }): Session {
  // SessionRegistry makes sessions only for sockets or from snapshots: adopt a fresh one
  const session = a.registry.adopt({
    id: 'session-1',
    resumeToken: 'token-1',
    principal: null,
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
    const moved = await b.handover.claim('session-1', 'token-1');
    expect(moved?.id).toBe('session-1');
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
    const moved = await b.handover.claim('session-1', 'token-1');
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
    const moved = await b.handover.claim('session-1', 'token-1');
    // the client has seq 1..4 and resumes with lastSeq 4: nothing must be replayed
    expect(moved!.lastSeq).toBe(4);
    expect(replayAfter(moved!, 4)).toEqual([]);
    shutdown();
  });

  it('a wrong resume token is refused; the session stays where it is', async () => {
    const { a, b, shutdown } = cluster();
    sessionOnA(a);
    expect(await b.handover.claim('session-1', 'not-the-token')).toBeUndefined();
    expect(a.registry.getSession('session-1')).toBeDefined();
    shutdown();
  });

  it('two claims of one session on the same instance at once both end with the session there', async () => {
    const { a, b, shutdown } = cluster();
    sessionOnA(a);
    const [first, second] = await Promise.all([
      b.handover.claim('session-1', 'token-1'),
      b.handover.claim('session-1', 'token-1'),
    ]);
    expect(first?.id).toBe('session-1');
    expect(second?.id).toBe('session-1');
    shutdown();
  });
});
