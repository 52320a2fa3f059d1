import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { preparePush, preparePushOf, type PreparedPush } from '../protocol/index.js';
import { ANSWER_PENDING } from './answer-cache.js';
import { ReliableSocket } from './reliable-socket.js';
import { ReplayBudget } from './replay-buffer.js';
import { SessionRegistry, type SessionLifetime, type SessionObserver } from './session.registry.js';
import { Session, type SessionTransport } from './session.js';

const push = (n: number, id?: string) => preparePush('tick', JSON.stringify({ n }), id);
const frame = (n: number, seq: number) => `{"event":"tick","data":{"n":${n}},"seq":${seq}}`;

class Recorder implements SessionTransport {
  frames: string[] = [];
  terminated = 0;
  closedWith: number[] = [];
  deliver(push: PreparedPush, seq: number | undefined): void {
    this.write(push.frame(seq));
  }
  write(frame: string): void {
    this.frames.push(frame);
  }
  close(code: number): void {
    this.closedWith.push(code);
  }
  terminate(): void {
    this.terminated++;
  }
}

/** The frames a resume after `lastSeq` replays, or undefined when it cannot. */
function replayAfter(session: Session, lastSeq: number): string[] | undefined {
  if (!session.canReplayAfter(lastSeq)) return undefined;
  const frames: string[] = [];
  for (let seq = lastSeq + 1; seq <= session.lastSeq; seq++) frames.push(session.pushAt(seq)!.frame(seq));
  return frames;
}

describe('Session', () => {
  it('numbers pushes 1, 2, 3 … and writes them to the live transport', () => {
    const session = new Session(true, 10);
    const transport = new Recorder();
    session.attach(transport);
    session.push(push(1));
    session.push(push(2));
    expect(transport.frames).toEqual([frame(1, 1), frame(2, 2)]);
    expect(session.lastSeq).toBe(2);
  });

  it('keeps pushes while detached and replays them after lastSeq', () => {
    const session = new Session(true, 10);
    const transport = new Recorder();
    session.attach(transport);
    session.push(push(1));
    expect(session.detach(transport)).toBe(true);
    expect(session.attached).toBe(false);
    session.push(push(2));
    session.push(push(3));
    expect(transport.frames).toEqual([frame(1, 1)]);
    expect(replayAfter(session, 1)).toEqual([frame(2, 2), frame(3, 3)]);
    expect(replayAfter(session, 3)).toEqual([]);
  });

  it('replayAfter refuses what it cannot honestly answer', () => {
    const session = new Session(true, 3);
    for (let n = 1; n <= 5; n++) session.push(push(n));
    expect(replayAfter(session, 2)).toEqual([frame(3, 3), frame(4, 4), frame(5, 5)]);
    expect(replayAfter(session, 1)).toBeUndefined(); // seq 2 is gone
    expect(replayAfter(session, 6)).toBeUndefined(); // ahead of the server
    expect(replayAfter(session, -1)).toBeUndefined();
    expect(replayAfter(session, 2.5)).toBeUndefined();
    expect(replayAfter(session, Number.NaN)).toBeUndefined();
  });

  it('acknowledge trims the buffer: an older lastSeq can no longer be resumed', () => {
    const session = new Session(true, 10);
    for (let n = 1; n <= 5; n++) session.push(push(n));
    expect(session.acknowledges(3)).toBe(true);
    session.acknowledge(3);
    expect(session.ackedSeq).toBe(3);
    expect(session.acknowledges(3)).toBe(false); // does not move forward
    expect(session.acknowledges(2)).toBe(false);
    expect(session.acknowledges(6)).toBe(false); // beyond what was pushed
    expect(session.acknowledges(4.5)).toBe(false);
    expect(replayAfter(session, 3)).toEqual([frame(4, 4), frame(5, 5)]);
    expect(replayAfter(session, 2)).toBeUndefined();
  });

  it('with sessions off pushes carry no seq and nothing is kept', () => {
    const session = new Session(false, 0);
    const transport = new Recorder();
    session.attach(transport);
    session.push(push(1));
    expect(transport.frames).toEqual(['{"event":"tick","data":{"n":1}}']);
    expect(session.resumable).toBe(false);
    expect(replayAfter(session, 0)).toBeUndefined();
  });

  it('a sequenced session without a buffer (plain client) numbers pushes but cannot be resumed', () => {
    const session = new Session(true, 0);
    const transport = new Recorder();
    session.attach(transport);
    session.push(push(1));
    session.push(push(2));
    expect(transport.frames).toEqual([frame(1, 1), frame(2, 2)]);
    expect(session.resumable).toBe(false);
    expect(replayAfter(session, 1)).toBeUndefined();
  });

  it('answers go to whichever transport is live now and are kept for duplicates', () => {
    const session = new Session(true, 10);
    const first = new Recorder();
    session.attach(first);
    session.answers.markPending(1);
    session.detach(first);
    session.answer(1, 'late answer'); // handled while disconnected
    const second = new Recorder();
    session.attach(second);
    session.answer(2, 'answer 2');
    expect(first.frames).toEqual([]);
    expect(second.frames).toEqual(['answer 2']);
    expect(session.answers.get(1)).toBe('late answer');
  });

  it('takeOver hands back the live transport and detach of a stale one is ignored', () => {
    const session = new Session(true, 10);
    const old = new Recorder();
    session.attach(old);
    expect(session.takeOver()).toBe(old);
    const fresh = new Recorder();
    session.attach(fresh);
    expect(session.detach(old)).toBe(false);
    expect(session.attached).toBe(true);
  });

  describe('snapshot / restore', () => {
    function busySession(): Session {
      const session = new Session(true, 10);
      session.principal = { id: 7, name: 'Ann' };
      session.joinRoom('a');
      session.joinRoom('b');
      for (let n = 1; n <= 6; n++) session.push(push(n, `inst:${n}`));
      session.acknowledge(2);
      session.lastId = 9;
      session.answers.set(8, 'answer 8');
      session.answers.markPending(9);
      return session;
    }

    it('round-trips identity, principal, numbering, rooms, buffer and settled answers', () => {
      const original = busySession();
      const snapshot = JSON.parse(JSON.stringify(original.snapshot()));
      const restored = Session.restore(snapshot, 10);
      expect(restored.id).toBe(original.id);
      // the token does not travel, only its hash: the restored session still knows it when it sees it
      expect(JSON.stringify(snapshot)).not.toContain(original.resumeToken);
      expect(restored.acceptsToken(original.resumeToken)).toBe(true);
      expect(restored.acceptsToken(`${original.resumeToken}x`)).toBe(false);
      expect(Session.restore(snapshot, 10, undefined, original.resumeToken).resumeToken).toBe(original.resumeToken);
      expect(restored.principal).toEqual({ id: 7, name: 'Ann' });
      expect(restored.lastSeq).toBe(6);
      expect(restored.lastId).toBe(9);
      expect(restored.ackedSeq).toBe(2);
      expect([...restored.rooms].sort()).toEqual(['a', 'b']);
      expect(replayAfter(restored, 2)).toEqual(replayAfter(original, 2));
      expect(replayAfter(restored, 1)).toBeUndefined();
      expect(restored.answers.get(8)).toBe('answer 8');
      // a handler still running on the old instance has no answer to carry
      expect(restored.answers.get(9)).not.toBe(ANSWER_PENDING);
      expect(restored.snapshot()).toEqual({ ...snapshot });
    });

    it('a snapshot this version cannot take throws, and gives back every byte it had taken from the budget', () => {
      const original = new Session(true, 10);
      for (let n = 1; n <= 4; n++) original.push(preparePushOf(`e${n}`, 'x'.repeat(10_000)));
      const snapshot = JSON.parse(JSON.stringify(original.snapshot()));
      snapshot.pushes[2].event = '$ready'; // a push this version refuses to send
      const budget = new ReplayBudget(Number.POSITIVE_INFINITY);
      for (let k = 0; k < 3; k++) expect(() => Session.restore(snapshot, 10, { maxBufferedBytes: 1 << 20, budget })).toThrow(TypeError);
      expect(budget.used).toBe(0);
    });

    it('carries binary pushes and binary answers through a JSON snapshot', () => {
      const original = new Session(true, 10);
      original.push(preparePushOf('bin', Buffer.from([1, 2, 3])));
      original.answer(1, { head: Uint8Array.from([0, 2, 0x7b, 0x7d]), payload: Uint8Array.from([9, 9]) });
      const restored = Session.restore(JSON.parse(JSON.stringify(original.snapshot())), 10);
      const frame = restored.pushAt(1)!.wireFrame(1) as { head: Uint8Array; payload: Uint8Array };
      expect(Array.from(frame.payload)).toEqual([1, 2, 3]);
      const answer = restored.answers.get(1) as { head: Uint8Array; payload: Uint8Array };
      expect([Array.from(answer.head), Array.from(answer.payload)]).toEqual([[0, 2, 0x7b, 0x7d], [9, 9]]);
    });

    it('the restored session keeps numbering after the snapshot', () => {
      const restored = Session.restore(busySession().snapshot(), 10);
      const transport = new Recorder();
      restored.attach(transport);
      restored.push(push(7));
      expect(transport.frames).toEqual([frame(7, 7)]);
      expect(replayAfter(restored, 5)).toEqual([frame(6, 6), frame(7, 7)]);
    });

    it('a fully acknowledged session restores with an empty buffer and its lastSeq', () => {
      const session = new Session(true, 10);
      for (let n = 1; n <= 3; n++) session.push(push(n));
      session.acknowledge(3);
      const restored = Session.restore(session.snapshot(), 10);
      expect(restored.lastSeq).toBe(3);
      expect(replayAfter(restored, 3)).toEqual([]);
      expect(replayAfter(restored, 2)).toBeUndefined();
    });

    it('restoring into a smaller buffer keeps the newest pushes and refuses older resumes', () => {
      const restored = Session.restore(busySession().snapshot(), 2);
      expect(replayAfter(restored, 4)).toEqual([frame(5, 5), frame(6, 6)]);
      expect(replayAfter(restored, 3)).toBeUndefined();
    });
  });
});

function fakeSocket(protocol = 'rws.v1', ip = '127.0.0.1'): { socket: ReliableSocket; raw: { terminate: jest.Mock } } {
  const raw = {
    readyState: 1,
    bufferedAmount: 0,
    protocol,
    send: jest.fn(),
    close: jest.fn(),
    terminate: jest.fn(),
  };
  const socket = new ReliableSocket(raw as unknown as WebSocket, {} as IncomingMessage, ip, { maxBufferedBytes: 1 << 20 });
  return { socket, raw };
}

describe('SessionRegistry', () => {
  afterEach(() => jest.useRealTimers());

  function registry(ttlMs = 1000, bufferSize = 10) {
    const sessions = new SessionRegistry({ bufferSize, ttlMs });
    const ended: string[] = [];
    const observer: SessionObserver = {
      sessionStarted: () => undefined,
      sessionEnded: (session) => ended.push(session.id),
      principalChanged: () => undefined,
    };
    sessions.observe(observer);
    return { sessions, ended };
  }

  it("an observer that throws is logged and skipped: the others are told, and the close it was told of completes", () => {
    const sessions = new SessionRegistry({ bufferSize: 10, ttlMs: 1000 });
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const told: string[] = [];
    sessions.observe({
      sessionStarted: () => {
        throw new Error('started: broken observer');
      },
      sessionEnded: () => {
        throw new Error('ended: broken observer');
      },
    });
    sessions.observe({ sessionStarted: (s) => told.push(`started ${s.id}`), sessionEnded: (s) => told.push(`ended ${s.id}`) });
    const { socket } = fakeSocket();
    sessions.add(socket);
    const session = sessions.startSession(socket, undefined);
    expect(() => sessions.remove(socket, 1000)).not.toThrow();
    expect(told).toEqual([`started ${session.id}`, `ended ${session.id}`]);
    expect(sessions.getSession(session.id)).toBeUndefined();
    expect(errors.mock.calls.map(([message]) => String(message))).toEqual([
      expect.stringContaining('started: broken observer'),
      expect.stringContaining('ended: broken observer'),
    ]);
    errors.mockRestore();
  });

  it('a client close with 1000 ends the session at once', () => {
    const { sessions, ended } = registry();
    const { socket } = fakeSocket();
    sessions.add(socket);
    const session = sessions.startSession(socket, undefined);
    sessions.remove(socket, 1000);
    expect(ended).toEqual([session.id]);
    expect(sessions.getSession(session.id)).toBeUndefined();
  });

  it("a plain client's session (it cannot resume) ends with its connection, whatever the code", () => {
    const { sessions, ended } = registry();
    const { socket } = fakeSocket('');
    sessions.add(socket);
    const session = sessions.startSession(socket, undefined);
    sessions.remove(socket, 1006);
    expect(ended).toEqual([session.id]);
  });

  it('any other close keeps the session for ttlMs, then ends it', () => {
    jest.useFakeTimers();
    const { sessions, ended } = registry(500);
    const { socket } = fakeSocket();
    sessions.add(socket);
    const session = sessions.startSession(socket, undefined);
    sessions.remove(socket, 1006);
    jest.advanceTimersByTime(499);
    expect(sessions.getSession(session.id)).toBe(session);
    jest.advanceTimersByTime(2);
    expect(sessions.getSession(session.id)).toBeUndefined();
    expect(ended).toEqual([session.id]);
  });

  it('a resume within ttlMs cancels the expiry; the session outlives the old ttl', () => {
    jest.useFakeTimers();
    const { sessions } = registry(500);
    const first = fakeSocket().socket;
    sessions.add(first);
    const session = sessions.startSession(first, undefined);
    session.push(push(1));
    sessions.remove(first, 1001);
    jest.advanceTimersByTime(400);
    const second = fakeSocket().socket;
    sessions.add(second);
    const resumed = sessions.resumeSession(second, { sessionId: session.id, resumeToken: session.resumeToken, lastSeq: 0 }, () => true);
    expect(resumed).toBe(session);
    expect(replayAfter(session, 0)).toEqual([frame(1, 1)]);
    jest.advanceTimersByTime(1000);
    expect(sessions.getSession(session.id)).toBe(session);
  });

  it('resume: wrong token or refused principal → undefined and the session is untouched', () => {
    const { sessions, ended } = registry();
    const { socket } = fakeSocket();
    sessions.add(socket);
    const session = sessions.startSession(socket, { id: 1 });
    const intruder = fakeSocket().socket;
    expect(sessions.resumeSession(intruder, { sessionId: session.id, resumeToken: 'x'.repeat(22), lastSeq: 0 }, () => true)).toBeUndefined();
    expect(sessions.resumeSession(intruder, { sessionId: session.id, resumeToken: session.resumeToken, lastSeq: 0 }, () => false)).toBeUndefined();
    expect(ended).toEqual([]);
    expect(session.attached).toBe(true);
  });

  it('resume with a lastSeq the buffer no longer covers ends the session (the client must resync)', () => {
    const { sessions, ended } = registry(1000, 2);
    const { socket } = fakeSocket();
    sessions.add(socket);
    const session = sessions.startSession(socket, undefined);
    for (let n = 1; n <= 4; n++) session.push(push(n));
    sessions.remove(socket, 1006);
    const next = fakeSocket().socket;
    expect(sessions.resumeSession(next, { sessionId: session.id, resumeToken: session.resumeToken, lastSeq: 1 }, () => true)).toBeUndefined();
    expect(ended).toEqual([session.id]);
  });

  it('resume of a session still attached terminates the old connection (takeover)', () => {
    const { sessions } = registry();
    const old = fakeSocket();
    sessions.add(old.socket);
    const session = sessions.startSession(old.socket, undefined);
    const next = fakeSocket().socket;
    sessions.add(next);
    expect(sessions.resumeSession(next, { sessionId: session.id, resumeToken: session.resumeToken, lastSeq: 0 }, () => true)).toBeDefined();
    expect(old.raw.terminate).toHaveBeenCalledTimes(1);
    // the old connection's close does not detach the session from the new one
    sessions.remove(old.socket, 1006);
    expect(session.attached).toBe(true);
  });

  it('adopt() restores a snapshot that waits ttlMs for its client; release() ends a session here', () => {
    jest.useFakeTimers();
    const { sessions, ended } = registry(300);
    const source = new Session(true, 10);
    source.push(push(1, 'x:1'));
    const adopted = sessions.adopt(source.snapshot());
    expect(adopted?.id).toBe(source.id);
    expect(sessions.adopt(source.snapshot())).toBeUndefined(); // already here
    jest.advanceTimersByTime(301);
    expect(ended).toEqual([source.id]);

    const { socket, raw } = fakeSocket();
    sessions.add(socket);
    const live = sessions.startSession(socket, undefined);
    sessions.release(live);
    expect(raw.terminate).toHaveBeenCalledTimes(1);
    expect(sessions.getSession(live.id)).toBeUndefined();
  });
});

describe('SessionRegistry: bounds of detached sessions', () => {
  const blob = (n: number, bytes: number) => preparePush('blob', JSON.stringify('x'.repeat(bytes)), `b:${n}`);

  function bounded(bounds: Partial<SessionLifetime>) {
    const sessions = new SessionRegistry({ bufferSize: 100, ttlMs: 60_000, ...bounds });
    const ended: string[] = [];
    sessions.observe({ sessionStarted: () => undefined, principalChanged: () => undefined, sessionEnded: (s) => ended.push(s.id) });
    /** Opens a connection from `ip`, starts its session, optionally drops it; returns the session. */
    const connect = (ip: string, drop = true): Session => {
      const { socket } = fakeSocket('rws.v1', ip);
      sessions.add(socket);
      const session = sessions.startSession(socket, undefined);
      if (drop) sessions.remove(socket, 1006);
      return session;
    };
    const resume = (session: Session, ip: string, lastSeq = session.lastSeq) => {
      const { socket } = fakeSocket('rws.v1', ip);
      sessions.add(socket);
      return sessions.resumeSession(socket, { sessionId: session.id, resumeToken: session.resumeToken, lastSeq }, () => true);
    };
    return { sessions, ended, connect, resume };
  }

  afterEach(() => jest.useRealTimers());

  it('keeps at most maxDetachedSessions, evicting the oldest of the address holding the most', () => {
    jest.useFakeTimers();
    const { sessions, ended, connect, resume } = bounded({ maxDetachedSessions: 4 });
    const quiet = connect('10.0.0.1');
    const noisy = [connect('10.0.0.9'), connect('10.0.0.9'), connect('10.0.0.9')];
    const late = connect('10.0.0.2'); // fifth: the noisy address loses its oldest
    expect(ended).toEqual([noisy[0].id]);
    connect('10.0.0.3');
    expect(ended).toEqual([noisy[0].id, noisy[1].id]);
    expect(sessions.detachedCount).toBe(4);
    expect(resume(noisy[0], '10.0.0.9')).toBeUndefined(); // its client gets missed: true
    expect(resume(quiet, '10.0.0.1')).toBe(quiet);
    expect(resume(late, '10.0.0.2')).toBe(late);
  });

  it('with every address holding one, evicts the oldest detached session', () => {
    jest.useFakeTimers();
    const { ended, connect } = bounded({ maxDetachedSessions: 2 });
    const [a, b] = [connect('10.0.0.1'), connect('10.0.0.2')];
    connect('10.0.0.3');
    expect(ended).toEqual([a.id]);
    connect('10.0.0.4');
    expect(ended).toEqual([a.id, b.id]);
  });

  it("an address's open connections and detached sessions together stay within maxPerIp", () => {
    jest.useFakeTimers();
    const { sessions, ended, connect } = bounded({ maxPerIp: 3 });
    const other = connect('10.0.0.2');
    const dropped = [connect('10.0.0.1'), connect('10.0.0.1')];
    connect('10.0.0.1', false);
    expect(ended).toEqual([]);
    connect('10.0.0.1', false); // 2 open + 2 detached > 3: its own oldest goes, never another address's
    expect(ended).toEqual([dropped[0].id]);
    connect('10.0.0.1', false);
    expect(ended).toEqual([dropped[0].id, dropped[1].id]);
    expect(sessions.getSession(other.id)).toBe(other);
  });

  it('keeps the bytes of all replay buffers within maxTotalBytes, evicting detached sessions first', () => {
    jest.useFakeTimers();
    const one = blob(0, 10_000).byteLength;
    const { sessions, ended, connect, resume } = bounded({ maxTotalBytes: one * 10 });
    const detached = [connect('10.0.0.9'), connect('10.0.0.9'), connect('10.0.0.1')];
    for (const session of detached) for (let n = 0; n < 3; n++) session.push(blob(n, 10_000));
    const live = connect('10.0.0.2', false);
    for (let n = 0; n < 3; n++) live.push(blob(n, 10_000));
    expect(ended).toEqual([detached[0].id]);
    expect(sessions.bufferedBytes).toBeLessThanOrEqual(one * 10);
    for (let n = 0; n < 20; n++) live.push(blob(n, 10_000));
    expect(ended).toEqual(detached.map((session) => session.id));
    expect(sessions.bufferedBytes).toBeLessThanOrEqual(one * 10);
    expect(resume(detached[2], '10.0.0.1', 0)).toBeUndefined();
  });

  it("a session's own buffer stays within maxBufferedBytes; a resume past what it dropped is refused", () => {
    jest.useFakeTimers();
    const one = blob(0, 1000).byteLength;
    const { connect, resume } = bounded({ maxBufferedBytes: one * 5 });
    const session = connect('10.0.0.1');
    for (let n = 0; n < 50; n++) session.push(blob(n, 1000));
    expect(session.bufferedBytes).toBe(one * 5);
    expect(resume(session, '10.0.0.1', 45)).toBe(session);
    const other = connect('10.0.0.1');
    for (let n = 0; n < 50; n++) other.push(blob(n, 1000));
    expect(resume(other, '10.0.0.1', 44)).toBeUndefined();
  });

  it('gives the bytes of ended sessions back', () => {
    jest.useFakeTimers();
    const { sessions, connect } = bounded({ ttlMs: 100 } as Partial<SessionLifetime>);
    const session = connect('10.0.0.1');
    session.push(blob(1, 5000));
    expect(sessions.bufferedBytes).toBeGreaterThan(5000);
    jest.advanceTimersByTime(101);
    expect(sessions.bufferedBytes).toBe(0);
    expect(sessions.detachedCount).toBe(0);
  });
});

describe('ReliableSocket.close', () => {
  it('records the close only once the socket took it: a code or reason ws refuses leaves nothing recorded', () => {
    const { socket, raw } = fakeSocket();
    const close = (raw as unknown as { close: jest.Mock }).close;
    close.mockImplementationOnce(() => {
      throw new TypeError('First argument must be a valid error code number');
    });
    expect(() => socket.close(5000, 'nope')).toThrow(TypeError);
    expect(socket.closedWith).toBeUndefined();
    socket.close(4003, 'kicked');
    expect(socket.closedWith).toEqual({ code: 4003, reason: 'kicked' });
  });

  it('refuses to reply under an event name a client would take for the protocol\'s, or cannot send', () => {
    const { socket, raw } = fakeSocket();
    for (const event of ['$ready', '', 'e'.repeat(129)]) expect(() => socket.reply(event, {}, 1)).toThrow(TypeError);
    expect((raw as unknown as { send: jest.Mock }).send).not.toHaveBeenCalled();
  });
});
