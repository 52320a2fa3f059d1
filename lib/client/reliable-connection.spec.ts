import { afterEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { FakeWebSocket, READY } from '../../test/support/fake-web-socket.js';
import { chunkPayloadBytes, decodeBinaryFrame } from '../protocol/index.js';
import { ReliableWsClient } from './reliable-ws-client.js';
import type { ReliableWsClientOptions } from './reliable-ws-client.interfaces.js';

const RECONNECT = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0, maxRetries: 5 };

function setup(options: ReliableWsClientOptions = {}) {
  jest.useFakeTimers({ now: 1_000_000 });
  const client = new ReliableWsClient('ws://example.test/ws', { WebSocket: FakeWebSocket, heartbeat: false, reconnect: RECONNECT, ...options });
  const events: Array<[string, any]> = [];
  for (const name of ['$state', '$ready', '$reconnecting', '$close', '$failed', '$error'] as const) {
    client.on(name, (data: unknown) => events.push([name, data]));
  }
  jest.runAllTicks(); // the client connects in a microtask
  const of = (name: string) => events.filter(([event]) => event === name).map(([, data]) => data);
  return { client, events, of, sockets: FakeWebSocket.instances };
}

afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
  FakeWebSocket.instances = [];
});

describe('ReliableConnection: $ready', () => {
  it.each([
    ['data null', null],
    ['data missing', undefined],
    ['data a string', 'x'],
    ['data an array', [READY]],
    ['sessionId not a string', { ...READY, sessionId: 1 }],
    ['sessionId empty', { ...READY, sessionId: '' }],
    ['resumeToken not a string', { ...READY, resumeToken: {} }],
    ['resumed not a boolean', { ...READY, resumed: 'true' }],
    ['missed not a boolean', { ...READY, missed: 0 }],
    ['lastId negative', { ...READY, resumed: true, lastId: -1 }],
    ['lastId not an integer', { ...READY, resumed: true, lastId: 1.5 }],
    ['lastId beyond 2^53', { ...READY, resumed: true, lastId: 2 ** 53 }],
    ['lastId a string', { ...READY, resumed: true, lastId: '3' }],
    ['heartbeatMs missing', { ...READY, heartbeatMs: undefined }],
    ['streams not an array', { ...READY, resumed: true, lastId: 0, streams: 's1' }],
    ['a stream id that is no id', { ...READY, resumed: true, lastId: 0, streams: [null] }],
    ['more streams than a session holds', { ...READY, resumed: true, lastId: 0, streams: Array.from({ length: 17 }, (_, i) => i) }],
    ['a stream id of 100,000 characters', { ...READY, resumed: true, lastId: 0, streams: ['s'.repeat(100_000)] }],
    ['maxPayloadBytes a string', { ...READY, maxPayloadBytes: '65536' }],
    ['maxPayloadBytes negative', { ...READY, maxPayloadBytes: -1 }],
    ['maxPayloadBytes beyond 2^53', { ...READY, maxPayloadBytes: 2 ** 53 }],
  ])('a $ready with %s is a protocol failure: the socket is dropped and the client reconnects', (_, data) => {
    const { client, of, sockets } = setup();
    sockets[0]!.open();
    expect(() => sockets[0]!.receive(data === undefined ? { event: '$ready' } : { event: '$ready', data })).not.toThrow();
    expect(client.state).toBe('reconnecting');
    expect(client.sessionId).toBeUndefined();
    expect(of('$ready')).toHaveLength(0);
    expect(sockets[0]!.closedWith).toBe(4000);
    expect(of('$close')).toEqual([{ code: 1001, reason: 'malformed $ready' }]);
    expect(of('$reconnecting')).toEqual([{ attempt: 1, delayMs: 100 }]);
    jest.advanceTimersByTime(100);
    sockets[1]!.accept();
    expect(client.state).toBe('open');
  });

  it.each([
    ['resumed', { resumed: true, lastId: 0 }],
    ['fresh', { sessionId: 's9', resumed: false }],
  ])('a second $ready (%s) on an open connection is a protocol failure: the client resumes on a new socket, no send stranded', async (_, second) => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    client.send('a', 1);
    client.send('b', 2);
    const request = client.request('c', 3, { timeoutMs: 5000 }).catch((error: unknown) => error);
    sockets[0]!.receive({ event: '$ready', data: { ...READY, ...second } });
    expect(of('$close')).toEqual([{ code: 1001, reason: 'second $ready' }]);
    expect(of('$ready')).toHaveLength(1);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    expect(sockets[1]!.sentJson()[0]!.data.resume).toEqual({ sessionId: 's1', resumeToken: 't1', lastSeq: 0 });
    sockets[1]!.receive({ event: '$ready', data: { ...READY, resumed: true, lastId: 0 } });
    const resent = sockets[1]!.sentJson().slice(1);
    expect(resent.map((frame) => [frame.event, frame.id])).toEqual([['a', 1], ['b', 2], ['c', 3]]);
    for (const frame of resent) sockets[1]!.receive({ event: '$ack', data: { ref: frame.id } });
    await expect(request).resolves.toBeUndefined();
    expect(client.queueLength).toBe(0);
  });

  it('a $ready { resumed: true } for another session than the one asked for is a protocol failure: the session is kept, no push taken', () => {
    const { client, of, sockets } = setup();
    const news: unknown[] = [];
    client.on('news', (data) => news.push(data));
    sockets[0]!.accept();
    for (const seq of [1, 2, 3]) sockets[0]!.receive({ event: 'news', data: `s1#${seq}`, seq });
    sockets[0]!.fireClose(1012);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    sockets[1]!.receive({ event: '$ready', data: { ...READY, sessionId: 's2', resumeToken: 't2', resumed: true } });
    sockets[1]!.receive({ event: 'news', data: 's2#4', seq: 4 });
    expect(of('$close').at(-1)).toEqual({ code: 1001, reason: '$ready resumed another session' });
    expect(of('$ready')).toHaveLength(1);
    expect(client.sessionId).toBe('s1');
    expect(news).toEqual(['s1#1', 's1#2', 's1#3']);
    jest.advanceTimersByTime(200);
    sockets[2]!.open();
    expect(sockets[2]!.sentJson()[0]!.data.resume).toEqual({ sessionId: 's1', resumeToken: 't1', lastSeq: 3 });
  });

  it('a $ready { resumed: true } to a $hello that asked for no resume is a protocol failure', () => {
    const { client, of, sockets } = setup();
    sockets[0]!.open();
    sockets[0]!.receive({ event: '$ready', data: { ...READY, resumed: true } });
    expect(of('$close')).toEqual([{ code: 1001, reason: '$ready resumed another session' }]);
    expect(client.sessionId).toBeUndefined();
    expect(client.state).toBe('reconnecting');
  });

  it('a malformed $ready after a drop keeps the session to resume', () => {
    const { client, sockets } = setup();
    sockets[0]!.accept();
    sockets[0]!.fireClose(1006);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    sockets[1]!.receive({ event: '$ready', data: { ...READY, resumed: true, lastId: 'junk' } });
    expect(client.sessionId).toBe('s1');
    jest.advanceTimersByTime(200);
    sockets[2]!.open();
    expect(sockets[2]!.sentJson()[0]).toEqual({ event: '$hello', data: { resume: { sessionId: 's1', resumeToken: 't1', lastSeq: 0 } } });
  });
});

describe('ReliableConnection: hostile frames', () => {
  const JUNK: unknown[] = [null, undefined, 0, -1, 2 ** 53, 1e300, '', '1', 'x', true, [], [1], {}, { ref: '1' }, { ref: {} }, { transfer: null }];
  const EVENTS = ['$ready', '$pong', '$ack', '$error', '$chunk-ack', '$stream', '$chunk', '$cancel', '$state', '$failed', '$x', 'app'];

  it('no text frame of any system event with junk data, ref or seq throws out of onmessage', () => {
    const { client, sockets } = setup({ reconnect: { ...RECONNECT, maxRetries: 10_000 } });
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    sockets[0]!.accept();
    void client.request('pending', null).catch(() => undefined);
    for (const event of EVENTS) {
      for (const data of JUNK) {
        for (const extra of [{}, { ref: data }, { seq: data }]) {
          const socket = FakeWebSocket.last;
          if (socket.readyState !== 1) socket.accept();
          expect(() => socket.receive({ event, data, ...extra })).not.toThrow();
        }
      }
    }
    for (const text of ['', 'null', '[]', '{"event":1}', '{"event":"$ready","data":{"sessionId":"s","lastId":1e999}}', '\u0000']) {
      expect(() => FakeWebSocket.last.receive(text)).not.toThrow();
    }
    expect(logged).not.toHaveBeenCalled(); // handled, not caught by the last resort
  });

  it('no binary frame throws out of onmessage', () => {
    const { sockets } = setup();
    sockets[0]!.accept();
    const header = (json: string) => {
      const head = new TextEncoder().encode(json);
      return Uint8Array.of(head.length >> 8, head.length & 0xff, ...head, 1, 2, 3);
    };
    const frames = [
      new Uint8Array(0),
      Uint8Array.of(0xff),
      Uint8Array.of(0xff, 0xff, 1),
      header('null'),
      header('{"event":"$chunk"}'),
      header('{"event":"$chunk","transfer":{},"offset":-1}'),
      header('{"event":"$ready"}'),
      header('{"event":"x","ref":"1"}'),
      header('{"event":"x","seq":"2"}'),
    ];
    for (const frame of frames) expect(() => sockets[0]!.receive(frame)).not.toThrow();
  });
});

describe('ReliableConnection: close()', () => {
  it('close() after $hello went out: the $ready that still arrives changes nothing, no reconnect', () => {
    const { client, of, sockets } = setup();
    sockets[0]!.open();
    expect(sockets[0]!.sentJson()[0]!.event).toBe('$hello');
    client.close();
    expect(sockets[0]!.closedWith).toBe(1000);
    sockets[0]!.receive({ event: '$ready', data: READY });
    sockets[0]!.receive({ event: 'news', data: 1, seq: 1 });
    sockets[0]!.fireClose(1000);
    jest.advanceTimersByTime(60_000);
    expect(client.state).toBe('closed');
    expect(client.sessionId).toBeUndefined();
    expect(of('$state')).toEqual(['connecting', 'closed']);
    expect(of('$ready')).toHaveLength(0);
    expect(of('$reconnecting')).toHaveLength(0);
    expect(sockets).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it.each([
    ['fails', (): Promise<string> => new Promise((_, reject) => setTimeout(() => reject(new Error('idp down')), 100))],
    ['never answers', (): Promise<string> => new Promise(() => undefined)],
    ['answers late', (): Promise<string> => new Promise((resolve) => setTimeout(() => resolve('late'), 100))],
  ])('close() while an async token function is pending: whether it then %s, nothing reconnects or opens', async (_, token) => {
    const { client, of, sockets } = setup({ token, connectTimeoutMs: 300 });
    await jest.advanceTimersByTimeAsync(10);
    client.close();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe('closed');
    expect(of('$state')).toEqual(['connecting', 'closed']);
    expect(of('$reconnecting')).toEqual([]);
    expect(of('$failed')).toEqual([]);
    expect(sockets).toHaveLength(0);
    expect(() => client.send('x', 1)).toThrow('cannot send on a closed client');
  });

  it('close() before the socket opened: a late open sends no $hello', () => {
    const { client, sockets } = setup();
    client.close();
    sockets[0]!.open();
    expect(sockets[0]!.sent).toHaveLength(0);
    expect(client.state).toBe('closed');
  });
});

describe('ReliableConnection: many unanswered sends', () => {
  it('keeps order and resends what is unanswered after a reconnect, also past sends answered out of order', () => {
    const { client, sockets } = setup();
    sockets[0]!.accept();
    for (let i = 1; i <= 5; i++) client.send('note', i);
    sockets[0]!.receive({ event: '$ack', data: { ref: 2 } });
    sockets[0]!.receive({ event: '$ack', data: { ref: 4 } });
    client.send('note', 6);
    expect(sockets[0]!.sentJson().slice(1).map((frame) => frame.id)).toEqual([1, 2, 3, 4, 5, 6]);
    sockets[0]!.fireClose(1006);
    client.send('note', 7);
    jest.advanceTimersByTime(100);
    sockets[1]!.accept({ resumed: true, lastId: 3 });
    // The server took ids 1 to 3; the rest are numbered after them, in queue order.
    expect(sockets[1]!.sentJson().slice(1)).toEqual([
      { event: 'note', data: 5, id: 4 },
      { event: 'note', data: 6, id: 5 },
      { event: 'note', data: 7, id: 6 },
    ]);
    client.send('note', 8);
    expect(sockets[1]!.sentJson().at(-1)).toEqual({ event: 'note', data: 8, id: 7 });
    expect(client.queueLength).toBe(4);
  });
});

describe('ReliableConnection: a message larger than the server takes in one frame', () => {
  it('is refused with PAYLOAD_TOO_LARGE (never sent, so never a 1009 loop); what is queued behind it goes out', async () => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept({ maxPayloadBytes: 1024 });
    const big = client.request('big', 'x'.repeat(2000));
    client.send('big-send', 'é'.repeat(600)); // 1,200 bytes of UTF-8 in 600 characters
    const small = client.request('small', 1);
    await expect(big).rejects.toMatchObject({ name: 'RequestError', code: 'PAYLOAD_TOO_LARGE' });
    expect(of('$error').map((error) => error.code)).toEqual(['PAYLOAD_TOO_LARGE']);
    const sent = sockets[0]!.sentJson().slice(1);
    expect(sent.map((frame) => frame.event)).toEqual(['small']);
    sockets[0]!.receive({ event: 'small', data: 'ok', ref: sent[0]!.id });
    await expect(small).resolves.toBe('ok');
    expect(client.state).toBe('open');
  });

  it('one just within the limit goes out', () => {
    const { client, sockets } = setup();
    sockets[0]!.accept({ maxPayloadBytes: 1024 });
    const frameOverhead = '{"event":"fits","data":"","id":1}'.length;
    client.send('fits', 'y'.repeat(1024 - frameOverhead));
    expect(sockets[0]!.sentJson().slice(1).map((frame) => frame.event)).toEqual(['fits']);
  });
});

describe('ReliableConnection: a token provider that never answers', () => {
  it('is given up on after connectTimeoutMs, like a connection: the client reconnects and asks again', async () => {
    let asked = 0;
    const { client, of, sockets } = setup({
      connectTimeoutMs: 2000,
      token: () => {
        asked++;
        return asked === 1 ? new Promise<string>(() => undefined) : 'fresh';
      },
    });
    await jest.advanceTimersByTimeAsync(1999);
    expect(sockets).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(of('$reconnecting')).toEqual([{ attempt: 1, delayMs: 100 }]);
    await jest.advanceTimersByTimeAsync(100);
    sockets[0]!.accept();
    expect(client.state).toBe('open');
    expect(asked).toBe(2);
  });
});

describe('ReliableConnection: closes soon after $ready', () => {
  it('a 4001 right after $ready, with a token function that returns the same expired token: one retry at once, then $failed', async () => {
    let fetched = 0;
    const { client, of, sockets } = setup({
      token: () => {
        fetched++;
        return 'expired';
      },
    });
    await jest.advanceTimersByTimeAsync(0); // the token provider
    sockets[0]!.accept();
    sockets[0]!.fireClose(4001, 'credentials expired');
    expect(of('$reconnecting')).toEqual([{ attempt: 1, delayMs: 0 }]);
    await jest.advanceTimersByTimeAsync(0);
    sockets[1]!.accept();
    jest.advanceTimersByTime(500);
    sockets[1]!.fireClose(4001, 'credentials expired');
    expect(client.state).toBe('failed');
    expect(of('$failed')).toHaveLength(1);
    jest.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(2);
    expect(fetched).toBe(2);
  });

  it('a 4001 after the connection stayed open a while is retried at once with a fresh token, every time', async () => {
    const { client, of, sockets } = setup({ token: () => 'fresh' });
    await jest.advanceTimersByTimeAsync(0); // the token provider
    for (let i = 0; i < 3; i++) {
      FakeWebSocket.last.accept();
      jest.advanceTimersByTime(1000);
      FakeWebSocket.last.fireClose(4001, 'credentials expired');
      await jest.advanceTimersByTimeAsync(0); // the reconnect timer, then the token provider
    }
    expect(of('$reconnecting')).toEqual([0, 0, 0].map((delayMs) => ({ attempt: 1, delayMs })));
    expect(sockets).toHaveLength(4);
    expect(client.state).toBe('reconnecting');
  });
});

describe('ReliableConnection: answers', () => {
  it('a $error whose ref is the string "1" answers no send (ids are numbers): it is emitted as $error, not swallowed', async () => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    client.send('fire', 1);
    const request = client.request('ask', null, { timeoutMs: 1000 });
    const [send, ask] = sockets[0]!.sentJson().slice(1);
    expect([send!.id, ask!.id]).toEqual([1, 2]);
    sockets[0]!.receive({ event: '$error', data: { code: 'FORBIDDEN', message: 'no', ref: '1' } });
    sockets[0]!.receive({ event: '$error', data: { code: 'FORBIDDEN', message: 'no', ref: '2' } });
    expect(of('$error').map((error) => error.ref)).toEqual(['1', '2']);
    expect(client.queueLength).toBe(2);
    sockets[0]!.receive({ event: '$error', data: { code: 'FORBIDDEN', message: 'no', ref: 2 } });
    await expect(request).rejects.toMatchObject({ code: 'FORBIDDEN' });
    sockets[0]!.receive({ event: '$error', data: { code: 'FORBIDDEN', message: 'no', ref: 1 } });
    expect(of('$error').map((error) => error.ref)).toEqual(['1', '2', 1]);
    expect(client.queueLength).toBe(0);
  });
});

describe('ReliableConnection: malformed $error and answers', () => {
  const binary = (header: object) => {
    const head = new TextEncoder().encode(JSON.stringify(header));
    return Uint8Array.of(0, head.length, ...head, 1, 2);
  };

  it.each([
    ['a $error without code', { event: '$error', data: { ref: 1 } }, 'malformed $error'],
    ['a $error with an empty code', { event: '$error', data: { code: '', message: 'm', ref: 1 } }, 'malformed $error'],
    ['a $error without message', { event: '$error', data: { code: 'X', ref: 1 } }, 'malformed $error'],
    ['a binary $error', binary({ event: '$error', ref: 1 }), 'malformed answer'],
    ['a binary $ack', binary({ event: '$ack', ref: 1 }), 'malformed answer'],
    ['a text answer named like a system event', { event: '$state', data: 'closed', ref: 1 }, 'malformed answer'],
  ])('%s answers nothing: a protocol failure, and the request, asked again after the resume, gets its real answer', async (_, frame, reason) => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    let outcome: unknown;
    const request = client.request('q', 1, { timeoutMs: 5000 }).then(
      (data) => (outcome = { data }),
      (error: unknown) => (outcome = error),
    );
    sockets[0]!.receive(frame as object);
    await Promise.resolve();
    expect(outcome).toBeUndefined();
    expect(of('$close')).toEqual([{ code: 1001, reason }]);
    expect(of('$error')).toEqual([]);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    sockets[1]!.receive({ event: '$ready', data: { ...READY, resumed: true, lastId: 1 } });
    expect(sockets[1]!.sentJson().slice(1)).toEqual([{ event: 'q', data: 1, id: 1 }]);
    sockets[1]!.receive({ event: '$error', data: { code: 'FORBIDDEN', message: 'no', ref: 1 } });
    await request;
    expect(outcome).toMatchObject({ name: 'RequestError', code: 'FORBIDDEN', message: 'no' });
  });

  it.each([
    ['null', null],
    ['a string', 'just a string'],
    ['an array', [1, 2]],
    ['a code that is no string', { code: 7, message: 'm' }],
    ['a ref that is no id', { code: 'X', message: 'm', ref: {} }],
    ['retryAfterMs not a number', { code: 'RATE_LIMITED', message: 'm', retryAfterMs: '5' }],
  ])('a $error whose data is %s is never emitted as a $error event: a protocol failure', (_, data) => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    sockets[0]!.receive({ event: '$error', data });
    expect(of('$error')).toEqual([]);
    expect(of('$close')).toEqual([{ code: 1001, reason: 'malformed $error' }]);
    expect(client.state).toBe('reconnecting');
  });

  it('a well-formed $error that answers nothing is still emitted, with its fields', () => {
    const { of, sockets } = setup();
    sockets[0]!.accept();
    const error = { code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 250, details: { x: 1 } };
    sockets[0]!.receive({ event: '$error', data: error });
    expect(of('$error')).toEqual([error]);
    expect(of('$close')).toEqual([]);
  });
});

describe('ReliableConnection: $ack answers', () => {
  it('$ack { ref } resolves a request with undefined; $ack { ref, duplicate: true } rejects it with ANSWER_LOST', async () => {
    const { client, sockets } = setup();
    sockets[0]!.accept();
    const handled = client.request('ask', 1);
    const lost = client.request('ask', 2);
    sockets[0]!.receive({ event: '$ack', data: { ref: 1 } });
    sockets[0]!.receive({ event: '$ack', data: { ref: 2, duplicate: true } });
    await expect(handled).resolves.toBeUndefined();
    await expect(lost).rejects.toMatchObject({ name: 'RequestError', code: 'ANSWER_LOST' });
    expect(client.queueLength).toBe(0);
  });

  it('a send answered $ack { ref, duplicate: true } is done: it leaves the queue and reports nothing', () => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    client.send('fire', 1);
    sockets[0]!.receive({ event: '$ack', data: { ref: 1, duplicate: true } });
    expect(client.queueLength).toBe(0);
    expect(of('$error')).toEqual([]);
  });
});

describe('ReliableConnection: pushes named like the client\'s own events', () => {
  // `$ready` and `$error` are protocol frames, handled as such (see above).
  const OWN = ['$state', '$failed', '$close', '$reconnecting', '$progress', '$tabs', '$x'];

  it('drops text and binary pushes and refuses streams whose event starts with "$"; their seq still counts', () => {
    const { client, events, sockets } = setup();
    sockets[0]!.accept();
    const before = events.length;
    const heard: string[] = [];
    for (const name of OWN) client.on(name as any, () => heard.push(name));
    let seq = 0;
    for (const name of OWN) {
      sockets[0]!.receive({ event: name, data: name === '$state' ? 'closed' : 'spoof', seq: ++seq });
      const head = new TextEncoder().encode(JSON.stringify({ event: name, seq: ++seq }));
      sockets[0]!.receive(Uint8Array.of(0, head.length, ...head, 1));
      sockets[0]!.receive({ event: '$stream', data: { transfer: `s${seq}`, event: name, size: 0, offset: 0 } });
    }
    expect(heard).toEqual([]);
    expect(events.length).toBe(before);
    expect(client.state).toBe('open');
    const cancels = sockets[0]!.sentJson().filter((frame) => frame.event === '$cancel');
    expect(cancels.map((frame) => frame.data)).toEqual(OWN.map((_, i) => ({ transfer: `s${2 * (i + 1)}`, direction: 'down' })));
    const news: unknown[] = [];
    client.on('news', (data) => news.push(data));
    sockets[0]!.receive({ event: 'news', data: 'old', seq });
    sockets[0]!.receive({ event: 'news', data: 'new', seq: seq + 1 });
    expect(news).toEqual(['new']);
  });
});

describe('ReliableConnection: frames the application must not see', () => {
  const binary = (header: object) => {
    const head = new TextEncoder().encode(JSON.stringify(header));
    return Uint8Array.of(0, head.length, ...head, 1);
  };

  it('drops pushes and refuses streams whose event is empty or longer than 128 characters; their seq still counts', () => {
    const { client, sockets } = setup();
    sockets[0]!.accept();
    const heard: unknown[] = [];
    for (const name of ['', 'x'.repeat(129)]) client.on(name as any, (data: unknown) => heard.push(data));
    sockets[0]!.receive({ event: '', data: 'empty', seq: 1 });
    sockets[0]!.receive(binary({ event: '', seq: 2 }));
    sockets[0]!.receive({ event: 'x'.repeat(129), data: 'long', seq: 3 });
    sockets[0]!.receive({ event: '$stream', data: { transfer: 't1', event: '', size: 0, offset: 0 } });
    expect(heard).toEqual([]);
    expect(sockets[0]!.sentJson().filter((frame) => frame.event === '$cancel')).toEqual([{ event: '$cancel', data: { transfer: 't1', direction: 'down' } }]);
    const news: unknown[] = [];
    client.on('news', (data) => news.push(data));
    sockets[0]!.receive({ event: 'news', data: 4, seq: 4 });
    expect(news).toEqual([4]);
    expect(client.state).toBe('open');
  });

  it('ignores pushes and streams that come before the connection\'s $ready: not emitted, not acknowledged', () => {
    const { client, sockets } = setup();
    const news: unknown[] = [];
    client.on('news', (data) => news.push(data));
    client.on('file', (data) => news.push(data));
    sockets[0]!.open();
    sockets[0]!.receive({ event: 'news', data: 'early', seq: 1 });
    sockets[0]!.receive(binary({ event: 'news', seq: 1 }));
    sockets[0]!.receive({ event: '$stream', data: { transfer: 't1', event: 'file', size: 0, offset: 0 } });
    sockets[0]!.receive({ event: '$ready', data: READY });
    jest.advanceTimersByTime(1000);
    expect(news).toEqual([]);
    expect(sockets[0]!.sentJson().map((frame) => frame.event)).toEqual(['$hello']);
    sockets[0]!.receive({ event: 'news', data: 'live', seq: 1 });
    expect(news).toEqual(['live']);
  });
});

describe('ReliableConnection: a server that sends but does not read', () => {
  const announce = { event: '$stream', data: { transfer: 's1', event: 'file', size: 1024 * 1024, offset: 0 } };
  const replies = (socket: FakeWebSocket) => socket.sentJson().filter((frame) => frame.event === '$chunk-ack' || frame.event === '$cancel');

  const chunkOf = (offset: number) => {
    const head = new TextEncoder().encode(JSON.stringify({ event: '$chunk', transfer: 's1', offset }));
    return Uint8Array.of(0, head.length, ...head, 7);
  };

  it.each([
    ['re-announces a stream ($chunk-ack each)', announce],
    ['sends 1-byte chunks ($chunk-ack each)', undefined],
    ['announces "$" streams ($cancel each)', { event: '$stream', data: { transfer: 'x', event: '$x', size: 1, offset: 0 } }],
  ])('%s: replies beyond maxBufferedBytes behind a full socket buffer drop the socket, and the client resumes', (_, frame) => {
    const { client, of, sockets } = setup({ maxBufferedBytes: 1000 });
    sockets[0]!.accept();
    sockets[0]!.receive(announce);
    sockets[0]!.bufferedAmount = 1001; // the server stopped reading
    const before = replies(sockets[0]!).length;
    for (let i = 0; i < 1000 && client.state === 'open'; i++) sockets[0]!.receive(frame ?? chunkOf(i));
    const written = replies(sockets[0]!).slice(before);
    expect(of('$close')).toEqual([{ code: 1001, reason: 'the server does not read' }]);
    expect(JSON.stringify(written).length).toBeLessThan(1000 + 100);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    expect(sockets[1]!.sentJson()[0]!.data.resume).toEqual({ sessionId: 's1', resumeToken: 't1', lastSeq: 0 });
  });

  it('replies while the socket buffer has room, however many, drop nothing', () => {
    const { client, of, sockets } = setup({ maxBufferedBytes: 1000 });
    sockets[0]!.accept();
    for (let i = 0; i < 1000; i++) sockets[0]!.receive(announce);
    expect(replies(sockets[0]!)).toHaveLength(1000);
    expect(of('$close')).toEqual([]);
    expect(client.state).toBe('open');
  });

  it('a socket buffer that drains in between starts the count over', () => {
    const { of, sockets } = setup({ maxBufferedBytes: 1000 });
    sockets[0]!.accept();
    for (let round = 0; round < 10; round++) {
      sockets[0]!.bufferedAmount = 1001;
      for (let i = 0; i < 10; i++) sockets[0]!.receive(announce);
      sockets[0]!.bufferedAmount = 0;
      sockets[0]!.receive(announce);
    }
    expect(of('$close')).toEqual([]);
  });
});

describe('ReliableConnection: upload pump', () => {
  it('writes at most 16 chunk frames per turn of the event loop, however small the frames the server asks for', async () => {
    const { client, sockets } = setup();
    sockets[0]!.accept();
    const SIZE = 2000;
    const done = client.upload('file', new Uint8Array(SIZE));
    const announce = sockets[0]!.sentJson().find((frame) => frame.event === '$upload')!;
    const chunks = () => sockets[0]!.sent.filter((frame) => typeof frame !== 'string').length;
    sockets[0]!.receive({ event: '$chunk-ack', data: { transfer: announce.data.transfer, received: 0, window: SIZE, maxFrameBytes: 1 } });
    expect(chunks()).toBe(16);
    let turns = 1;
    for (let previous = 16; chunks() < SIZE && turns < 1000; turns++) {
      jest.runOnlyPendingTimers(); // the next turn
      expect(chunks() - previous).toBeLessThanOrEqual(16);
      previous = chunks();
    }
    expect(chunks()).toBe(SIZE);
    expect(turns).toBe(SIZE / 16);
    sockets[0]!.receive({ event: 'file', data: 'stored', ref: announce.id });
    await expect(done).resolves.toBe('stored');
  });

  /**
   * Uploads `size` bytes to a server that accepts with `window` and `maxFrameBytes` and acknowledges
   * each chunk as it arrives; returns the chunks written and the most bytes ever unacknowledged.
   */
  async function uploadedChunks(size: number, window: number, maxFrameBytes: number) {
    FakeWebSocket.instances = [];
    const { client, sockets } = setup();
    sockets[0]!.accept();
    const done = client.upload('file', new Uint8Array(size));
    const announce = sockets[0]!.sentJson().find((frame) => frame.event === '$upload')!;
    const transfer = announce.data.transfer;
    const chunks: Array<{ offset: number; length: number }> = [];
    const readChunks = () => {
      const binary = sockets[0]!.sent.filter((frame): frame is Uint8Array => typeof frame !== 'string');
      for (const frame of binary.slice(chunks.length)) {
        const decoded = decodeBinaryFrame(frame);
        if (!decoded.ok) throw new Error(decoded.reason);
        chunks.push({ offset: decoded.header.offset as number, length: decoded.payload.byteLength });
      }
    };
    sockets[0]!.receive({ event: '$chunk-ack', data: { transfer, received: 0, window, maxFrameBytes } });
    let acked = 0;
    let mostUnacknowledged = 0;
    for (let i = 0, turns = 0; acked < size && turns < size + 100; turns++) {
      readChunks();
      if (i === chunks.length) jest.runOnlyPendingTimers(); // nothing new: the next turn
      for (; i < chunks.length; i++) {
        const last = chunks.at(-1)!;
        mostUnacknowledged = Math.max(mostUnacknowledged, last.offset + last.length - acked);
        acked = chunks[i]!.offset + chunks[i]!.length;
        sockets[0]!.receive({ event: '$chunk-ack', data: { transfer, received: acked } }); // as the server acknowledges each chunk
        readChunks();
      }
    }
    sockets[0]!.receive({ event: 'file', data: 'stored', ref: announce.id });
    await expect(done).resolves.toBe('stored');
    client.close();
    return { whole: chunkPayloadBytes(transfer, size, maxFrameBytes, window), chunks, acked, mostUnacknowledged };
  }

  it('writes whole chunks: each as large as the frame allows, sent once the window takes all of it, however the window and frame divide', async () => {
    const SIZE = 300_000;
    const WINDOW = 64 * 1024;
    // neither divides the other: filling the window to the byte would leave small chunks behind
    const { whole, chunks, acked, mostUnacknowledged } = await uploadedChunks(SIZE, WINDOW, 10_000);
    expect(acked).toBe(SIZE);
    expect(new Set(chunks.slice(0, -1).map(({ length }) => length))).toEqual(new Set([whole]));
    expect(chunks.at(-1)!.length).toBe(SIZE - whole * (chunks.length - 1));
    expect(mostUnacknowledged).toBeLessThanOrEqual(WINDOW);
  });

  it('writes whole chunks for any window and frame size a server asks for, never more than the window unacknowledged', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 64 * 1024 }),
        fc.integer({ min: 0, max: 32 * 1024 }),
        async (size, window, maxFrameBytes) => {
          const { whole, chunks, acked, mostUnacknowledged } = await uploadedChunks(size, window, maxFrameBytes);
          expect(acked).toBe(size);
          expect(chunks.slice(0, -1).every(({ length }) => length === whole)).toBe(true);
          expect(chunks.length).toBe(Math.ceil(size / whole));
          expect(mostUnacknowledged).toBeLessThanOrEqual(window);
        },
      ),
      { numRuns: 25, seed: 16 },
    );
  });
});

describe('ReliableConnection: an upload the server gave up', () => {
  it("its chunks still in flight, refused by the server, are not reported as $error events: the upload's own answer said it all", async () => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    const done = client.upload('file', new Uint8Array(5000));
    const announce = sockets[0]!.sentJson().find((frame) => frame.event === '$upload')!;
    const { transfer } = announce.data;
    sockets[0]!.receive({ event: '$chunk-ack', data: { transfer, received: 0, window: 5000, maxFrameBytes: 1000 } });
    sockets[0]!.receive({ event: '$error', data: { code: 'PAYLOAD_TOO_LARGE', message: 'cannot allocate', ref: announce.id, details: { transfer, size: 5000 } } });
    await expect(done).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    for (let k = 0; k < 3; k++) {
      sockets[0]!.receive({ event: '$error', data: { code: 'BAD_MESSAGE', message: `no upload with transfer id ${transfer}`, details: { transfer } } });
    }
    expect(of('$error')).toEqual([]);
    // Another transfer's refusal is still reported.
    sockets[0]!.receive({ event: '$error', data: { code: 'BAD_MESSAGE', message: 'no upload', details: { transfer: transfer + 100 } } });
    expect(of('$error')).toHaveLength(1);
  });
});

describe('ReliableConnection: push seq', () => {
  it('drops a push whose seq is not a safe integer above the last one: a string does not bypass dedup, 1e300 blocks nothing', () => {
    const { client, sockets } = setup();
    sockets[0]!.accept();
    const news: unknown[] = [];
    client.on('news', (data) => news.push(data));
    for (const seq of ['1', 1e300, 2 ** 53, 1.5, -1, 0, null, {}]) sockets[0]!.receive({ event: 'news', data: seq, seq });
    sockets[0]!.receive({ event: 'news', data: 'first', seq: 1 });
    sockets[0]!.receive({ event: 'news', data: 'again', seq: 1 });
    sockets[0]!.receive({ event: 'news', data: 'unsequenced' });
    sockets[0]!.receive({ event: 'news', data: 'second', seq: 2 });
    expect(news).toEqual(['first', 'unsequenced', 'second']);
    jest.advanceTimersByTime(1250);
    expect(sockets[0]!.sentJson().filter((frame) => frame.event === '$ack')).toEqual([{ event: '$ack', data: { seq: 2 } }]);
  });

  it.each([
    ['by default', 1000, 0, {}],
    ['by default', 1000, 0.37, {}],
    ['with ackDelayMs: 50', 50, 0.999, { ackDelayMs: 50 }],
  ])('acknowledges %s (%p ms, phase %p) cumulatively, about once per period, each push within 1.25 periods, only when new pushes came', (_, delayMs, phase, options) => {
    jest.spyOn(Math, 'random').mockReturnValue(phase);
    const { sockets } = setup(options);
    sockets[0]!.accept();
    const acks = () => sockets[0]!.sentJson().filter((frame) => frame.event === '$ack');
    for (const seq of [1, 2, 3]) sockets[0]!.receive({ event: 'news', data: seq, seq });
    expect(acks()).toEqual([]);
    jest.advanceTimersByTime(1.25 * delayMs);
    expect(acks()).toEqual([{ event: '$ack', data: { seq: 3 } }]);
    jest.advanceTimersByTime(10 * delayMs);
    expect(acks()).toHaveLength(1);
    // a push every tenth of the period for five periods: an ack per period, each sent with a push
    let sentWithPush = 0;
    for (let seq = 4; seq < 54; seq++) {
      const before = acks().length;
      sockets[0]!.receive({ event: 'news', data: seq, seq });
      if (acks().length > before) sentWithPush++;
      jest.advanceTimersByTime(delayMs / 10);
    }
    expect(sentWithPush).toBeGreaterThanOrEqual(4);
    jest.advanceTimersByTime(1.25 * delayMs);
    const seqs = acks().map((frame) => frame.data.seq);
    expect(seqs.length).toBeGreaterThanOrEqual(1 + 5);
    expect(seqs.length).toBeLessThanOrEqual(1 + 6);
    expect(seqs.at(-1)).toBe(53);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('with the longest ackDelayMs a timer holds, an ack waits for its period (a longer timer would fire at once)', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.99); // due almost a whole period away: with the grace, beyond what a timer holds
    const client = new ReliableWsClient('ws://example.test/ws', { WebSocket: FakeWebSocket, heartbeat: false, reconnect: RECONNECT, ackDelayMs: 2 ** 31 - 1 });
    await Promise.resolve(); // the client connects in a microtask
    const socket = FakeWebSocket.instances[0]!;
    socket.accept();
    socket.receive({ event: 'news', data: 1, seq: 1 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(socket.sentJson().filter((frame) => frame.event === '$ack')).toEqual([]);
    client.close();
  });

  it('clients that receive one broadcast ack at moments of their own, spread over the whole delay', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const phases = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    const random = jest.spyOn(Math, 'random');
    for (const phase of phases) random.mockReturnValueOnce(phase);
    for (const _ of phases) new ReliableWsClient('ws://example.test/ws', { WebSocket: FakeWebSocket, heartbeat: false, reconnect: RECONNECT });
    jest.runAllTicks();
    const sockets = FakeWebSocket.instances;
    for (const socket of sockets) socket.accept();
    for (const socket of sockets) socket.receive({ event: 'news', data: 'everyone', seq: 1 });
    const ackedAfter = new Map<FakeWebSocket, number>();
    for (let ms = 1; ms <= 1250; ms++) {
      jest.advanceTimersByTime(1);
      for (const socket of sockets) {
        if (!ackedAfter.has(socket) && socket.sentJson().some((frame) => frame.event === '$ack')) ackedAfter.set(socket, ms);
      }
    }
    const moments = [...ackedAfter.values()];
    expect(moments).toHaveLength(phases.length);
    expect(new Set(moments).size).toBe(phases.length);
    expect(Math.max(...moments) - Math.min(...moments)).toBeGreaterThanOrEqual(800);
  });
});

describe('ReliableConnection: seq and lastId the client can check', () => {
  it.each([
    ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
    ['a gap', 5],
  ])('a push whose seq skips ahead (%s) is a protocol failure: the client resumes from the last seq it had, later pushes flow', (_, skipped) => {
    const { client, of, sockets } = setup();
    const news: unknown[] = [];
    client.on('news', (data) => news.push(data));
    sockets[0]!.accept();
    sockets[0]!.receive({ event: 'news', data: 1, seq: 1 });
    sockets[0]!.receive({ event: 'news', data: 'skipped', seq: skipped });
    sockets[0]!.receive({ event: 'news', data: 2, seq: 2 });
    expect(news).toEqual([1]);
    expect(of('$close')).toEqual([{ code: 1001, reason: 'push seq gap' }]);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    expect(sockets[1]!.sentJson()[0]!.data.resume).toEqual({ sessionId: 's1', resumeToken: 't1', lastSeq: 1 });
    sockets[1]!.receive({ event: '$ready', data: { ...READY, resumed: true } });
    for (const seq of [2, 3]) sockets[1]!.receive({ event: 'news', data: seq, seq });
    expect(news).toEqual([1, 2, 3]);
  });

  it('a resumed $ready whose lastId is above every id the client sent (MAX_SAFE_INTEGER) is a protocol failure: ids stay the ones it sent', async () => {
    const { client, of, sockets } = setup();
    sockets[0]!.accept();
    const answers = [1, 2].map((n) => client.request('q', n, { timeoutMs: 5000 }));
    sockets[0]!.fireClose(1012);
    jest.advanceTimersByTime(100);
    sockets[1]!.open();
    sockets[1]!.receive({ event: '$ready', data: { ...READY, resumed: true, lastId: Number.MAX_SAFE_INTEGER } });
    expect(of('$close').at(-1)).toEqual({ code: 1001, reason: '$ready lastId beyond the ids sent' });
    expect(sockets[1]!.sentJson().slice(1)).toEqual([]);
    jest.advanceTimersByTime(200);
    sockets[2]!.open();
    sockets[2]!.receive({ event: '$ready', data: { ...READY, resumed: true, lastId: 2 } });
    const retried = sockets[2]!.sentJson().slice(1);
    expect(retried.map((frame) => frame.id)).toEqual([1, 2]);
    for (const frame of retried) sockets[2]!.receive({ event: 'q', data: `answer ${frame.id}`, ref: frame.id });
    await expect(Promise.all(answers)).resolves.toEqual(['answer 1', 'answer 2']);
  });
});

describe('ReliableConnection: heartbeat across a wall-clock step (NTP, a laptop waking)', () => {
  it.each([
    ['back', -60_000],
    ['forward', 60_000],
  ])('a step %s between $ping and $pong is no heartbeat timeout', (_, stepMs) => {
    const { client, of, sockets } = setup({ heartbeat: { intervalMs: 1000, timeoutMs: 500 } });
    sockets[0]!.accept();
    jest.advanceTimersByTime(1000);
    const ping = sockets[0]!.sentJson().find((frame) => frame.event === '$ping');
    expect(ping).toBeDefined();
    jest.setSystemTime(Date.now() + stepMs);
    jest.advanceTimersByTime(100);
    sockets[0]!.receive({ event: '$pong', data: ping!.data });
    jest.advanceTimersByTime(450);
    expect(client.state).toBe('open');
    expect(of('$close')).toEqual([]);
    expect(sockets).toHaveLength(1);
  });
});
