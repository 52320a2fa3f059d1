/**
 * Chunked transfer end to end: uploads (client → server) and streams (server → client) between a
 * real Nest app on port 0 and ReliableWsClient on `ws`, through a TCP proxy that cuts the
 * connection at random (test/support/chaos-proxy.ts) or holds one direction back
 * (test/support/tcp-proxy.ts), and raw `ws` peers for the wire and for hostile chunk frames.
 * Every wait and loop is bounded.
 */
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { ReliableWsClient, RequestError, type ReliableWsClientOptions, type TransferProgress } from '../lib/client/index.js';
import { ReliableGateway, SessionRegistry, type ReliableSocket } from '../lib/index.js';
import { chunkHeaderJson, decodeServerBinary, encodeBinaryMessage } from '../lib/protocol/index.js';
import { MiB, TRANSFER_OPTIONS, TRANSFER_WINDOW } from './support/transfer-options.js';
import { startApp, type TestApp } from './support/app.js';
import { ChaosProxy } from './support/chaos-proxy.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Every upload the handler got: event, size, hash. */
const uploads: Array<{ size: number; hash: string; isBuffer: boolean }> = [];
const notes: number[] = [];
const sockets = new Map<string, ReliableSocket>();
const streamOutcomes: Array<'resolved' | 'rejected'> = [];
/** What the `held-file` handler waits for before it answers. */
let heldFileGate: Promise<void> = Promise.resolve();

@ReliableGateway({ path: '/ws' })
class TransferGateway {
  handleConnection(socket: ReliableSocket): void {
    sockets.set(socket.id, socket);
  }

  @SubscribeMessage('file')
  file(@MessageBody() data: Buffer): { size: number; hash: string } {
    const hash = sha(data);
    uploads.push({ size: data.length, hash, isBuffer: Buffer.isBuffer(data) });
    return { size: data.length, hash };
  }

  /** Answers the upload's size once `heldFileGate` opens, as a handler that writes it somewhere slow first. */
  @SubscribeMessage('held-file')
  async heldFile(@MessageBody() data: Buffer): Promise<number> {
    await heldFileGate;
    return data.length;
  }

  @SubscribeMessage('note')
  note(@MessageBody() n: number): void {
    notes.push(n);
  }

  /** Streams `size` bytes to the caller after `afterMs`, as a handler that reads a file first; answers how it went. */
  @SubscribeMessage('download-later')
  async downloadLater(@MessageBody() { size, afterMs }: { size: number; afterMs: number }, @ConnectedSocket() socket: ReliableSocket): Promise<string> {
    await sleep(afterMs);
    return socket.stream('file', new Uint8Array(size)).then(
      () => 'resolved',
      (error: Error) => error.message,
    );
  }

  /** Streams `size` random bytes to the caller; answers their hash at once. */
  @SubscribeMessage('download')
  download(@MessageBody() size: number, @ConnectedSocket() socket: ReliableSocket): string {
    const bytes = randomBytes(size);
    socket.stream('file', bytes).then(
      () => streamOutcomes.push('resolved'),
      () => streamOutcomes.push('rejected'),
    );
    return sha(bytes);
  }
}

const OPTIONS = TRANSFER_OPTIONS;
const WINDOW = TRANSFER_WINDOW;

let app: TestApp;
const clients: ReliableWsClient[] = [];
const closers: Array<() => Promise<void> | void> = [];

function client(url: string, options: ReliableWsClientOptions = {}): ReliableWsClient {
  const c = new ReliableWsClient(url, {
    WebSocket,
    reconnect: { initialDelayMs: 10, maxDelayMs: 100, maxRetries: 1000 },
    heartbeat: { intervalMs: 500, timeoutMs: 2000 },
    ...options,
  });
  clients.push(c);
  return c;
}

const ready = (c: ReliableWsClient) =>
  within(new Promise<void>((resolve) => (c.state === 'open' ? resolve() : c.on('$ready', () => resolve()))), 5000, '$ready');

function countResumes(c: ReliableWsClient): { resumed: number; missed: number } {
  const counts = { resumed: 0, missed: 0 };
  c.on('$ready', (info) => {
    if (info.resumed) counts.resumed++;
    if (info.missed) counts.missed++;
  });
  return counts;
}

/**
 * A raw client that records every frame: plain (no subprotocol: its session starts at once), or
 * `rws.v1` (it sends `$hello`; its session outlives a dropped connection).
 */
async function rawPeer(url: string, protocol?: 'rws.v1') {
  const ws = new WebSocket(url, protocol ? [protocol] : []);
  closers.push(() => ws.terminate());
  if (protocol) ws.once('open', () => ws.send(JSON.stringify({ event: '$hello', data: {} })));
  const texts: any[] = [];
  const binaries: Array<ReturnType<typeof decodeServerBinary>> = [];
  ws.on('message', (data, binary) => {
    if (binary) binaries.push(decodeServerBinary(new Uint8Array(data as Buffer)));
    else texts.push(JSON.parse(String(data)));
  });
  await waitUntil(() => texts.some((t) => t.event === '$ready'), { what: '$ready' });
  const sessionId: string = texts.find((t) => t.event === '$ready').data.sessionId;
  return { ws, texts, binaries, sessionId, send: (message: unknown) => ws.send(JSON.stringify(message)) };
}

beforeAll(async () => {
  app = await startApp(OPTIONS, [TransferGateway]);
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const close of closers.splice(0)) await close();
  uploads.length = 0;
  notes.length = 0;
  streamOutcomes.length = 0;
});

afterAll(async () => {
  await app.close();
});

describe('upload (client → server)', () => {
  it('5 MiB through random cuts: every byte once, one handler run, monotonic progress', async () => {
    const proxy = await ChaosProxy.start(app.port);
    closers.push(() => proxy.close());
    const c = client(proxy.url('/ws'));
    const sessions = countResumes(c);
    await ready(c);
    const data = randomBytes(5 * MiB);
    const progress: number[] = [];
    const cutAt = [0.2, 0.45, 0.7, 0.9].map((share) => share * data.length);
    proxy.startChaos(40, 200);
    const reply = await within(
      c.upload<{ size: number; hash: string }>('file', data, {
        onProgress: (sent, total) => {
          expect(total).toBe(data.length);
          progress.push(sent);
          // Besides the random cuts, one at each of these points, so that the upload surely resumes.
          if (cutAt.length > 0 && sent >= cutAt[0]) {
            cutAt.shift();
            setImmediate(() => proxy.cutAll());
          }
        },
      }),
      30_000,
      'the upload',
    );
    proxy.stopChaos();
    expect(reply).toEqual({ size: data.length, hash: sha(data) });
    expect(uploads).toEqual([{ size: data.length, hash: sha(data), isBuffer: true }]);
    expect(sessions.resumed).toBeGreaterThanOrEqual(4);
    expect(sessions.missed).toBe(0);
    expect(progress.at(-1)).toBe(data.length);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThan(progress[i - 1]);
    await sleep(200);
    expect(uploads).toHaveLength(1); // no second run after late duplicates
    expect(sockets.get(c.sessionId!)!.session.transfers.heldBytes).toBe(0);
  });

  it('never has more than the window unacknowledged (acks held back by the proxy)', async () => {
    const proxy = await TcpProxy.start(app.port);
    closers.push(() => proxy.close());
    const c = client(proxy.url('/ws'));
    await ready(c);
    const data = randomBytes(4 * MiB);
    let seen = 0;
    let stalled = false;
    const done = c.upload('file', data, {
      onProgress: (sent) => {
        seen = sent;
        // At the first acknowledgement, before the rest can be acknowledged (on a busy machine a poll comes after the whole upload).
        if (stalled) return;
        stalled = true;
        proxy.stall('down');
      },
    });
    done.catch(() => undefined); // awaited below; a failed expectation must not leave it unhandled
    await waitUntil(() => stalled, { what: 'the first acknowledgement' });
    const upload = () => [...sockets.get(c.sessionId!)!.session.transfers['uploads'].values()][0] as { received: number } | undefined;
    // Acks already past the proxy when it stalled reach the client: `seen` is the last one it got.
    await waitUntil(() => (upload()?.received ?? 0) - seen > WINDOW / 2, { what: 'the client to use its window' });
    await sleep(300);
    const heldBack = upload()!.received;
    await sleep(300);
    expect(upload()!.received).toBe(heldBack); // stopped, waiting for acks
    expect(heldBack - seen).toBeLessThanOrEqual(WINDOW);
    expect(heldBack - seen).toBeGreaterThan(WINDOW / 2); // it did use the window
    proxy.resume();
    await within(done, 20_000, 'the upload');
    expect(uploads).toHaveLength(1);
  });

  it('progress reaches the total when the last acknowledgement is lost in a cut and the reply comes from the cache', async () => {
    const proxy = await TcpProxy.start(app.port);
    closers.push(() => proxy.close());
    const c = client(proxy.url('/ws'));
    const sessions = countResumes(c);
    await ready(c);
    // Within the window of the first acknowledgement: the rest goes out after it, with nothing more to wait for.
    const data = randomBytes(WINDOW + 24 * 1024);
    const progress: number[] = [];
    const done = c.upload('file', data, {
      onProgress: (sent) => {
        // Held from the first acknowledgement on: the last one and the reply never reach this connection.
        if (progress.length === 0) proxy.stall('down');
        progress.push(sent);
      },
    });
    await waitUntil(() => uploads.length === 1, { what: 'the handler' });
    await waitUntil(() => proxy.heldDownBytes > 0, { what: 'the reply to be held back' });
    proxy.cutAll();
    proxy.resume();
    await expect(within(done, 5000, 'the upload')).resolves.toEqual({ size: data.length, hash: sha(data) });
    expect(sessions.resumed).toBe(1);
    expect(progress[0]).toBeLessThan(data.length);
    expect(progress.at(-1)).toBe(data.length);
    expect(uploads).toHaveLength(1);
  });

  it('over the budget: PAYLOAD_TOO_LARGE, the connection and other messages unharmed; cancel frees the budget', async () => {
    const small = await startApp({ ...OPTIONS, maxTransferBytes: MiB }, [TransferGateway]);
    closers.push(() => small.close());
    const c = client(small.wsUrl('/ws'));
    const closes: number[] = [];
    c.on('$close', ({ code }) => closes.push(code));
    await ready(c);
    c.send('note', 1);
    const tooLarge = await c.upload('file', randomBytes(MiB + 1)).catch((error: RequestError) => error);
    c.send('note', 2);
    expect(tooLarge).toBeInstanceOf(RequestError);
    expect(tooLarge).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });

    // A first upload of 0.9 MiB, aborted after its first acknowledgement, then another: only fits if the first was freed.
    const controller = new AbortController();
    const errors: unknown[] = [];
    c.on('$error', (error) => errors.push(error));
    const first = c.upload('file', randomBytes(0.9 * MiB), { signal: controller.signal, onProgress: () => controller.abort() });
    await expect(within(first, 5000, 'the aborted upload')).rejects.toMatchObject({ code: 'ABORTED' });
    const second = randomBytes(0.9 * MiB);
    await expect(within(c.upload('file', second), 10_000, 'the second upload')).resolves.toEqual({ size: second.length, hash: sha(second) });
    c.send('note', 3);
    await waitUntil(() => notes.length === 3, { what: 'every note' });
    expect(notes.sort()).toEqual([1, 2, 3]);
    expect(uploads.map((u) => u.hash)).toEqual([sha(second)]);
    expect(closes).toEqual([]);
    expect(errors).toEqual([]); // chunks of the cancelled upload still in flight are not reported
  });

  it("an upload's bytes count against the budget until its handler answers: one more that does not fit is refused meanwhile", async () => {
    const small = await startApp({ ...OPTIONS, maxTransferBytes: MiB }, [TransferGateway]);
    closers.push(() => small.close());
    const c = client(small.wsUrl('/ws'));
    await ready(c);
    let open!: () => void;
    heldFileGate = new Promise<void>((resolve) => (open = resolve));
    const size = 600 * 1024;
    let allSent!: () => void;
    const handlerRuns = new Promise<void>((resolve) => (allSent = resolve));
    const first = c.upload('held-file', randomBytes(size), { onProgress: (received) => received === size && allSent() });
    await within(handlerRuns, 10_000, 'every byte of the first upload acknowledged (its handler runs)');

    const second = await within(c.upload('held-file', randomBytes(size)).catch((error: unknown) => error), 5000, 'the second upload');
    expect(second).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    open();
    await expect(within(first, 5000, 'the first answer')).resolves.toBe(size);
    await expect(within(c.upload('held-file', randomBytes(size)), 10_000, 'an upload after the answer')).resolves.toBe(size);
  });

  it('an upload to an event without handler, or of garbage, is refused at once', async () => {
    const c = client(app.wsUrl('/ws'));
    await expect(c.upload('nobody', new Uint8Array(10))).rejects.toMatchObject({ code: 'UNKNOWN_EVENT' });
    await expect(c.upload('file', new Uint8Array(0))).resolves.toEqual({ size: 0, hash: sha(new Uint8Array(0)) });
  });

  it('hostile chunk frames never crash the server, are answered BAD_MESSAGE, and hold nothing', async () => {
    const peer = await rawPeer(app.wsUrl('/ws'));
    peer.send({ event: '$upload', data: { transfer: 'real', event: 'file', size: 100_000 }, id: 'u' });
    await waitUntil(() => peer.texts.some((t) => t.event === '$chunk-ack'), { what: 'the acceptance' });
    const transfer = fc.oneof(fc.constant('real'), fc.nat(5), fc.string({ maxLength: 5 }), fc.constant(null), fc.double());
    const header = fc.record({ event: fc.constant('$chunk'), transfer, offset: fc.oneof(fc.nat(200_000), fc.integer(), fc.constant('0')) }, { requiredKeys: ['event'] });
    const frames = fc.sample(fc.tuple(header, fc.uint8Array({ maxLength: 2000 })), { numRuns: 300, seed: 14 });
    let valid = 0;
    let expectedReceived = 0;
    for (const [h, payload] of frames) {
      const ok = h.transfer === 'real' && h.offset === expectedReceived && payload.length > 0 && expectedReceived + payload.length <= 100_000;
      if (ok) {
        valid++;
        expectedReceived += payload.length;
      }
      peer.ws.send(encodeBinaryMessage(JSON.stringify(h), payload));
    }
    const bad = frames.length - valid;
    await waitUntil(() => peer.texts.filter((t) => t.event === '$error').length === bad, { what: `${bad} errors`, timeoutMs: 10_000 });
    expect(peer.texts.filter((t) => t.event === '$error').every((t) => t.data.code === 'BAD_MESSAGE')).toBe(true);
    const transfers = sockets.get(peer.sessionId)!.session.transfers;
    expect(transfers.heldBytes).toBe(100_000);
    // The real upload is still consistent: the rest of it completes it.
    for (let offset = expectedReceived; offset < 100_000; offset += 16_000) {
      peer.ws.send(encodeBinaryMessage(chunkHeaderJson('real', offset), randomBytes(Math.min(16_000, 100_000 - offset))));
    }
    await waitUntil(() => peer.texts.some((t) => t.ref === 'u' && t.event === 'file'), { what: 'the handler reply' });
    expect(peer.texts.find((t) => t.ref === 'u').data.size).toBe(100_000);
    expect(transfers.heldBytes).toBe(0);
    peer.send({ event: '$upload', data: { transfer: 'big', event: 'file', size: 17 * MiB }, id: 'big' });
    await waitUntil(() => peer.texts.some((t) => t.event === '$error' && t.data.ref === 'big'), { what: 'the refusal' });
    expect(peer.texts.find((t) => t.data?.ref === 'big').data.code).toBe('PAYLOAD_TOO_LARGE');
    expect(transfers.heldBytes).toBe(0);
  });
});

describe('upload: exactly once per id', () => {
  it('an $upload under an id already answered, whose answer is no longer kept, is a duplicate: the handler does not run again', async () => {
    const peer = await rawPeer(app.wsUrl('/ws'), 'rws.v1');
    peer.send({ event: '$upload', data: { transfer: 'a', event: 'file', size: 10 }, id: 1 });
    await waitUntil(() => peer.texts.some((t) => t.event === '$chunk-ack'), { what: 'the acceptance' });
    peer.ws.send(encodeBinaryMessage(chunkHeaderJson('a', 0), new Uint8Array(10)));
    await waitUntil(() => peer.texts.some((t) => t.ref === 1), { what: 'the upload reply' });
    const LATER = 140; // more than the answers kept (at least 100): the answer to id 1 goes
    for (let id = 2; id <= LATER; id++) peer.send({ event: 'note', data: id, id });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === LATER), { what: 'the last note answer' });
    peer.send({ event: '$upload', data: { transfer: 'b', event: 'file', size: 10 }, id: 1 });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === 1), { what: 'the answer to the old id' });
    expect(peer.texts.find((t) => t.data?.ref === 1)).toEqual({ event: '$ack', data: { ref: 1, duplicate: true } });
    peer.ws.send(encodeBinaryMessage(chunkHeaderJson('b', 0), new Uint8Array(10)));
    peer.send({ event: 'note', data: 0, id: LATER + 1 });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === LATER + 1), { what: 'the answer after it' });
    expect(uploads).toHaveLength(1);
    expect(peer.texts.filter((t) => t.event === 'file')).toHaveLength(1);
    expect(sockets.get(peer.sessionId)!.session.transfers.heldBytes).toBe(0);
  });
});

describe('upload: the client keeps to the window', () => {
  it('also when the server accepts it again from less than it had acknowledged (a session moved to another instance)', async () => {
    const WINDOW_OF_SERVER = 64 * 1024;
    // A server of the protocol's shape: the first connection acknowledges 4 windows and is cut; the second accepts from 0 and acknowledges nothing.
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => server.once('listening', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    let connections = 0;
    let bytesAfterRestart = 0;
    server.on('connection', (ws) => {
      const connection = ++connections;
      let received = 0;
      const send = (event: string, data: unknown) => ws.send(JSON.stringify({ event, data }));
      ws.on('message', (raw, binary) => {
        if (binary) {
          const chunk = decodeServerBinary(new Uint8Array(raw as Buffer))!;
          if (connection > 1) return void (bytesAfterRestart += chunk.data!.byteLength);
          received += chunk.data!.byteLength;
          send('$chunk-ack', { transfer: chunk.transfer, received });
          if (received >= 4 * WINDOW_OF_SERVER) ws.terminate();
          return;
        }
        const { event, data } = JSON.parse(String(raw));
        const resumed = connection > 1;
        if (event === '$hello') send('$ready', { sessionId: 's', resumeToken: 't', resumed, missed: false, lastId: resumed ? 1 : 0, heartbeatMs: 60_000, maxPayloadBytes: 65536 });
        if (event === '$upload') send('$chunk-ack', { transfer: data.transfer, received: 0, window: WINDOW_OF_SERVER, maxFrameBytes: 16 * 1024 });
      });
    });
    const c = client(`ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`, { heartbeat: false });
    void c.upload('file', randomBytes(MiB)).catch(() => undefined);
    await waitUntil(() => connections === 2 && bytesAfterRestart > 0, { what: 'chunks after the restart' });
    await sleep(300);
    expect(bytesAfterRestart).toBeLessThanOrEqual(WINDOW_OF_SERVER);
  });
});

describe('upload: a buffer the process cannot allocate', () => {
  it('refuses the upload (PAYLOAD_TOO_LARGE to its id, budget given back) instead of throwing out of the frame handler', async () => {
    const GiB = 1024 * MiB;
    const huge = await startApp({ ...OPTIONS, maxTransferBytes: 6 * GiB, resume: { ttlMs: 30_000, maxTotalBytes: 8 * GiB } }, [TransferGateway]);
    closers.push(() => huge.close());
    const peer = await rawPeer(huge.wsUrl('/ws'));
    const size = 5 * GiB; // above what one Buffer may hold
    peer.send({ event: '$upload', data: { transfer: 'huge', event: 'file', size }, id: 'u' });
    await waitUntil(() => peer.texts.some((t) => t.event === '$chunk-ack'), { what: 'the acceptance' });
    peer.ws.send(encodeBinaryMessage(chunkHeaderJson('huge', 0), new Uint8Array(1000)));
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === 'u'), { what: 'the answer to the upload' });
    expect(peer.texts.find((t) => t.data?.ref === 'u')).toMatchObject({ event: '$error', data: { code: 'PAYLOAD_TOO_LARGE', details: { transfer: 'huge', size } } });
    expect(sockets.get(peer.sessionId)!.session.transfers.heldBytes).toBe(0);
    peer.send({ event: 'note', data: 1, id: 'n' });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === 'n'), { what: 'the note answer' });
  });
});

describe('stream: event names', () => {
  it('socket.stream() rejects a protocol ("$") or over-long event name with a TypeError, sending nothing', async () => {
    const peer = await rawPeer(app.wsUrl('/ws'));
    const socket = sockets.get(peer.sessionId)!;
    await expect(socket.stream('$ready', new Uint8Array(10))).rejects.toThrow(TypeError);
    await expect(socket.stream('x'.repeat(129), new Uint8Array(10))).rejects.toThrow(TypeError);
    expect(socket.session.transfers.heldBytes).toBe(0);
    peer.send({ event: 'note', data: 1, id: 'n' });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === 'n'), { what: 'the note answer' });
    expect(peer.texts.filter((t) => t.event === '$stream')).toEqual([]);
  });
});

describe('upload: a $chunk frame that carries an id', () => {
  it('is answered to that id: $ack { ref } beside the $chunk-ack, or a refusal with ref', async () => {
    const peer = await rawPeer(app.wsUrl('/ws'));
    peer.send({ event: '$upload', data: { transfer: 'ided', event: 'file', size: 20 }, id: 'u' });
    await waitUntil(() => peer.texts.some((t) => t.event === '$chunk-ack'), { what: 'the acceptance' });
    peer.ws.send(encodeBinaryMessage('{"event":"$chunk","transfer":"ided","offset":0,"id":"c1"}', new Uint8Array(10)));
    peer.ws.send(encodeBinaryMessage('{"event":"$chunk","transfer":"ided","offset":99,"id":"c2"}', new Uint8Array(10)));
    peer.ws.send(encodeBinaryMessage('{"event":"$chunk","transfer":"none","offset":0,"id":"c3"}', new Uint8Array(10)));
    const answerTo = (ref: string) => peer.texts.filter((t) => t.ref === ref || t.data?.ref === ref);
    await waitUntil(() => ['c1', 'c2', 'c3'].every((ref) => answerTo(ref).length > 0), { what: 'an answer to each chunk id' });
    expect(answerTo('c1')).toEqual([{ event: '$ack', data: { ref: 'c1' } }]);
    for (const ref of ['c2', 'c3']) expect(answerTo(ref)).toMatchObject([{ event: '$error', data: { code: 'BAD_MESSAGE', ref } }]);
  });
});

describe('stream (server → client)', () => {
  it('5 MiB through random cuts arrives intact, once, with progress; stream() resolves', async () => {
    const proxy = await ChaosProxy.start(app.port);
    closers.push(() => proxy.close());
    const c = client(proxy.url('/ws'));
    const sessions = countResumes(c);
    const files: Uint8Array[] = [];
    const progress: TransferProgress[] = [];
    c.on('file', (data: Uint8Array) => files.push(data));
    c.on('$progress', (p) => {
      progress.push(p);
      if (p.received > (progress.length % 7) * 700_000 && progress.length % 7 === 0) setImmediate(() => proxy.cutAll());
    });
    await ready(c);
    const hash = await c.request<string>('download', 5 * MiB);
    proxy.startChaos(40, 200);
    await waitUntil(() => files.length === 1, { what: 'the stream', timeoutMs: 30_000, intervalMs: 50 });
    proxy.stopChaos();
    expect(files[0].byteLength).toBe(5 * MiB);
    expect(sha(files[0])).toBe(hash);
    expect(sessions.missed).toBe(0);
    expect(sessions.resumed).toBeGreaterThanOrEqual(1);
    const received = progress.map((p) => p.received);
    for (let i = 1; i < received.length; i++) expect(received[i]).toBeGreaterThan(received[i - 1]);
    expect(progress.at(-1)).toMatchObject({ event: 'file', received: 5 * MiB, total: 5 * MiB, direction: 'down' });
    await waitUntil(() => streamOutcomes.length === 1, { what: 'stream() to settle' });
    expect(streamOutcomes).toEqual(['resolved']);
    await sleep(200);
    expect(files).toHaveLength(1);
  });

  it('never more than the window unacknowledged: a peer that does not ack gets at most the window', async () => {
    const peer = await rawPeer(app.wsUrl('/ws'));
    peer.send({ event: 'download', data: 2 * MiB, id: 1 });
    await waitUntil(() => peer.binaries.length > 0, { what: 'chunks' });
    await sleep(300);
    const bytes = () => peer.binaries.reduce((sum, m) => sum + (m!.event === '$chunk' ? m!.data!.byteLength : 0), 0);
    const unacked = bytes();
    expect(unacked).toBeLessThanOrEqual(WINDOW);
    expect(unacked).toBeGreaterThan(WINDOW / 2);
    const transfer = peer.texts.find((t) => t.event === '$stream').data.transfer;
    peer.send({ event: '$chunk-ack', data: { transfer, received: unacked } });
    await waitUntil(() => bytes() > unacked, { what: 'more chunks after an ack' });
    await sleep(200);
    expect(bytes()).toBeLessThanOrEqual(unacked + WINDOW);
    peer.send({ event: '$cancel', data: { transfer, direction: 'down' } });
    await waitUntil(() => streamOutcomes.length === 1, { what: 'the refused stream to reject' });
    expect(streamOutcomes).toEqual(['rejected']);
    expect(sockets.get(peer.sessionId)!.session.transfers.heldBytes).toBe(0);
  });

  it('an acknowledgement of bytes never sent is refused BAD_MESSAGE and does not complete the stream', async () => {
    const peer = await rawPeer(app.wsUrl('/ws'));
    peer.send({ event: 'download', data: 2 * MiB, id: 1 });
    await waitUntil(() => peer.binaries.length > 0, { what: 'chunks' });
    await sleep(200);
    const transfer = peer.texts.find((t) => t.event === '$stream').data.transfer;
    const sent = peer.binaries.reduce((sum, m) => sum + m!.data!.byteLength, 0);
    expect(sent).toBeLessThan(2 * MiB);
    peer.send({ event: '$chunk-ack', data: { transfer, received: 2 * MiB }, id: 'lie' });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === 'lie'), { what: 'the answer to the false ack' });
    expect(peer.texts.find((t) => t.data?.ref === 'lie')).toMatchObject({ event: '$error', data: { code: 'BAD_MESSAGE', details: { transfer } } });
    peer.send({ event: '$chunk-ack', data: { transfer, received: sent }, id: 'true' });
    await waitUntil(() => peer.texts.some((t) => t.data?.ref === 'true'), { what: 'the answer to the true ack' });
    expect(peer.texts.find((t) => t.data?.ref === 'true')).toEqual({ event: '$ack', data: { ref: 'true' } });
    expect(streamOutcomes).toEqual([]);
    peer.send({ event: '$cancel', data: { transfer, direction: 'down' } });
    await waitUntil(() => streamOutcomes.length === 1, { what: 'the refused stream to reject' });
    expect(streamOutcomes).toEqual(['rejected']);
  });

  it('a stream above the client maxTransferBytes is refused with a PAYLOAD_TOO_LARGE $error', async () => {
    const c = client(app.wsUrl('/ws'), { maxTransferBytes: 1000 });
    const errors: any[] = [];
    c.on('$error', (error) => errors.push(error));
    await ready(c);
    await c.request('download', 5000);
    await waitUntil(() => errors.length === 1 && streamOutcomes.length === 1, { what: 'the refusal' });
    expect(errors[0]).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { event: 'file', size: 5000 } });
    expect(streamOutcomes).toEqual(['rejected']);
  });
});

describe('stream: frames as large as the send buffer allows', () => {
  it('flows when maxPayloadBytes is above half of backpressure.maxBufferedBytes (or above all of it)', async () => {
    for (const maxPayloadBytes of [WINDOW, 2 * WINDOW]) {
      const wide = await startApp({ ...OPTIONS, maxPayloadBytes }, [TransferGateway]);
      closers.push(() => wide.close());
      const c = client(wide.wsUrl('/ws'));
      const received = new Promise<Uint8Array>((resolve) => c.on('file', (bytes) => resolve(bytes as Uint8Array)));
      await ready(c);
      const hash = await within(c.request<string>('download', MiB), 5000, 'the download request');
      expect(sha(await within(received, 10_000, `the stream with maxPayloadBytes ${maxPayloadBytes}`))).toBe(hash);
    }
  });
});

describe('the instance budget (resume.maxTotalBytes)', () => {
  it('gets back what a stream reserved when the relief it caused evicted its own detached session', async () => {
    const server = await startApp({ ...OPTIONS, resume: { ttlMs: 30_000, maxTotalBytes: 4 * MiB } }, [TransferGateway]);
    closers.push(() => server.close());
    const registry = server.app.get(SessionRegistry);
    const holder = await rawPeer(server.wsUrl('/ws'));
    const baseline = registry.bufferedBytes;
    for (let round = 1; round <= 2; round++) {
      // A client asks for a download and is gone before the handler streams: its session is detached.
      const leaving = await rawPeer(server.wsUrl('/ws'), 'rws.v1');
      leaving.send({ event: 'download-later', data: { size: MiB, afterMs: 1000 }, id: 1 });
      await sleep(50);
      leaving.ws.terminate();
      await waitUntil(() => registry.detachedCount === 1, { what: 'the detached session' });
      // A live upload holds all but half a MiB of the budget, so the stream's reservation needs relief.
      const transfer = `hold${round}`;
      holder.send({ event: '$upload', data: { transfer, event: 'file', size: 3.5 * MiB - baseline }, id: transfer });
      await waitUntil(() => holder.texts.some((t) => t.event === '$chunk-ack' && t.data.transfer === transfer), { what: 'the upload' });
      await waitUntil(() => registry.detachedCount === 0, { what: 'the detached session evicted', timeoutMs: 5000 });
      holder.send({ event: '$cancel', data: { transfer }, id: `cancel${round}` });
      await waitUntil(() => holder.texts.some((t) => t.data?.ref === `cancel${round}`), { what: 'the cancel' });
      expect(registry.bufferedBytes).toBe(baseline);
    }
  });
});

describe('rate limit: transfer frames that hardly move a transfer on are not free', () => {
  const LIMITED = { ...OPTIONS, rateLimit: { points: 50, durationMs: 1000, maxViolations: 20 } };
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startApp(LIMITED, [TransferGateway]);
  });
  afterAll(() => limited.close());

  const closeCode = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const rateLimited = (peer: { texts: any[] }) => peer.texts.filter((t) => t.event === '$error' && t.data.code === 'RATE_LIMITED');

  it('a flood of $chunk-acks that acknowledge nothing new is limited, then closed 4029', async () => {
    const peer = await rawPeer(limited.wsUrl('/ws'));
    const closed = closeCode(peer.ws);
    peer.send({ event: 'download', data: MiB, id: 1 });
    await waitUntil(() => peer.texts.some((t) => t.event === '$stream'), { what: 'the stream' });
    const transfer = peer.texts.find((t) => t.event === '$stream').data.transfer;
    // one burst past the protocol bucket (500) and maxViolations (20), small enough for the answers to stay below the send bound
    for (let k = 0; k < 700; k++) {
      peer.send({ event: '$chunk-ack', data: { transfer, received: 0 }, id: `a${k}` });
    }
    expect(await within(closed, 10_000, 'the close')).toBe(4029);
    expect(rateLimited(peer).length).toBeGreaterThan(0);
  });

  it('so is a flood of 1-byte chunks of an upload', async () => {
    const peer = await rawPeer(limited.wsUrl('/ws'));
    const closed = closeCode(peer.ws);
    peer.send({ event: '$upload', data: { transfer: 'u', event: 'file', size: 100_000 }, id: 'u' });
    await waitUntil(() => peer.texts.some((t) => t.event === '$chunk-ack'), { what: 'the acceptance' });
    for (let offset = 0; offset < 700; offset++) {
      peer.ws.send(encodeBinaryMessage(chunkHeaderJson('u', offset), new Uint8Array(1)));
    }
    expect(await within(closed, 10_000, 'the close')).toBe(4029);
    expect(rateLimited(peer).length).toBeGreaterThan(0);
  });

  it('whole chunks and their acknowledgements stay free: 3 MiB each way through the client, nothing limited', async () => {
    const c = client(limited.wsUrl('/ws'));
    const errors: unknown[] = [];
    const closes: number[] = [];
    c.on('$error', (error) => errors.push(error));
    c.on('$close', ({ code }) => closes.push(code));
    const received = new Promise<Uint8Array>((resolve) => c.on('file', (bytes) => resolve(bytes as Uint8Array)));
    await ready(c);
    const up = randomBytes(3 * MiB);
    await expect(within(c.upload('file', up), 20_000, 'the upload')).resolves.toEqual({ size: up.length, hash: sha(up) });
    const hash = await within(c.request('download', 3 * MiB), 5000, 'the download request');
    expect(sha(await within(received, 20_000, 'the stream'))).toBe(hash);
    expect(errors).toEqual([]);
    expect(closes).toEqual([]);
  });

  it.each([
    [4096, 8 * MiB],
    [1024, 2 * MiB], // the least frame: a whole chunk is under 1 KiB beside its header, and free all the same
  ])('so do small frames (%i bytes): %i bytes each way, thousands of chunks a second, nothing limited, every chunk of the stream whole', async (maxPayloadBytes, size) => {
    const small = await startApp({ ...LIMITED, maxPayloadBytes }, [TransferGateway]);
    closers.push(() => small.close());
    const c = client(small.wsUrl('/ws'));
    const errors: unknown[] = [];
    const closes: number[] = [];
    c.on('$error', (error) => errors.push(error));
    c.on('$close', ({ code }) => closes.push(code));
    await ready(c);
    const up = randomBytes(size);
    await expect(within(c.upload('file', up), 30_000, 'the upload')).resolves.toEqual({ size: up.length, hash: sha(up) });
    const received = new Promise<Uint8Array>((resolve) => c.on('file', (bytes) => resolve(bytes as Uint8Array)));
    const hash = await within(c.request('download', size), 5000, 'the download request');
    expect(sha(await within(received, 30_000, 'the stream'))).toBe(hash);
    expect(errors).toEqual([]);
    expect(closes).toEqual([]);

    // What the client receives: chunks all of one size, the last one shorter.
    const peer = await rawPeer(small.wsUrl('/ws'));
    peer.send({ event: 'download', data: MiB, id: 1 });
    let acked = 0;
    for (let turns = 0; acked < MiB && turns < 2000; turns++) {
      await waitUntil(() => peer.binaries.length > 0 && endOf(peer.binaries.at(-1)!) > acked, { what: 'the next chunk' });
      acked = endOf(peer.binaries.at(-1)!);
      peer.send({ event: '$chunk-ack', data: { transfer: peer.binaries[0]!.transfer, received: acked } });
    }
    const lengths = peer.binaries.map((chunk) => chunk!.data!.byteLength);
    expect(acked).toBe(MiB);
    expect(new Set(lengths.slice(0, -1)).size).toBe(1);
    expect(lengths[0]).toBeGreaterThan(maxPayloadBytes - 100);
    expect(lengths.at(-1)!).toBeLessThanOrEqual(lengths[0]!);
  });
});

/** The offset just past a `$chunk` frame's bytes. */
const endOf = (chunk: NonNullable<ReturnType<typeof decodeServerBinary>>) => (chunk.offset as number) + chunk.data!.byteLength;

describe('uploads with resume: false', () => {
  it('hold at most 256 MiB for all connections together: the upload past it is refused PAYLOAD_TOO_LARGE', async () => {
    const perSession = 60 * MiB; // four fit in 256 MiB with their bookkeeping, five do not
    const server = await startApp({ ...OPTIONS, resume: false, maxTransferBytes: perSession }, [TransferGateway]);
    closers.push(() => server.close());
    const answers: string[] = [];
    for (let k = 0; k < 5; k++) {
      const peer = await rawPeer(server.wsUrl('/ws'));
      peer.send({ event: '$upload', data: { transfer: 't', event: 'file', size: perSession }, id: 'u' });
      const answer = await waitUntil(() => peer.texts.find((t) => t.event === '$chunk-ack' || t.data?.ref === 'u'), { what: 'an answer' });
      answers.push(answer.event === '$chunk-ack' ? 'accepted' : answer.data.code);
    }
    expect(answers).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'PAYLOAD_TOO_LARGE']);
  });
});
