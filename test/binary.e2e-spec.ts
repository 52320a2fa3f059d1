/**
 * Binary messages end to end: real Nest apps on port 0, ReliableWsClient on `ws`, raw `ws`
 * peers for the wire format, a TCP proxy for a dropped connection, and the shared Redis (with a
 * unique channel prefix) for a broadcast between two instances. Every wait is bounded.
 */
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { IsString } from 'class-validator';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { ReliableWsClient, RequestError, type ReliableWsClientOptions } from '../lib/client/index.js';
import { BroadcastService, ReliableGateway, type ReliableSocket, type ReliableWsOptions } from '../lib/index.js';
import { decodeServerBinary, encodeBinaryMessage } from '../lib/protocol/index.js';
import { startApp, type TestApp } from './support/app.js';
import { REDIS_URL, uniquePrefix } from './support/redis.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { sleep, waitUntil, within } from './support/wait.js';

class NoteDto {
  @IsString()
  text!: string;
}

const received: Array<{ event: string; isBuffer: boolean; bytes: Buffer }> = [];
const sockets = new Map<string, ReliableSocket>();

@ReliableGateway({ path: '/ws' })
class BinaryGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  handleConnection(socket: ReliableSocket): void {
    sockets.set(socket.id, socket);
  }

  @SubscribeMessage('blob')
  blob(@MessageBody() data: Buffer): void {
    received.push({ event: 'blob', isBuffer: Buffer.isBuffer(data), bytes: Buffer.from(data) });
  }

  /** Answers the bytes reversed, as a Buffer. */
  @SubscribeMessage('reverse')
  reverse(@MessageBody() data: Uint8Array): Buffer {
    return Buffer.from(data).reverse();
  }

  @SubscribeMessage('note')
  note(@MessageBody() note: NoteDto): { ok: true } {
    return { ok: true };
  }

  /** Pushes `count` binary pushes of `size` bytes to this client. */
  @SubscribeMessage('push-me')
  pushMe(@MessageBody() data: { count: number; size: number }, @ConnectedSocket() socket: ReliableSocket): void {
    for (let i = 0; i < data.count; i++) socket.send('bin', Buffer.alloc(data.size, i));
  }

  @SubscribeMessage('join')
  async join(@MessageBody() room: string, @ConnectedSocket() socket: ReliableSocket): Promise<void> {
    await this.broadcast.join(socket.id, room);
  }

  @SubscribeMessage('shout')
  async shout(@MessageBody() data: { room: string; hex: string }): Promise<void> {
    await this.broadcast.toRoom(data.room, 'heard', Buffer.from(data.hex, 'hex'));
  }
}

const OPTIONS: ReliableWsOptions = { allowedOrigins: '*', rateLimit: false, heartbeat: { intervalMs: 1000, timeoutMs: 2000 } };

let app: TestApp;
const clients: ReliableWsClient[] = [];
const closers: Array<() => Promise<void> | void> = [];

function client(url: string, options: ReliableWsClientOptions = {}): ReliableWsClient {
  const c = new ReliableWsClient(url, { WebSocket, reconnect: { initialDelayMs: 20, maxDelayMs: 100, maxRetries: 1000 }, ...options });
  clients.push(c);
  return c;
}

const ready = (c: ReliableWsClient) =>
  within(new Promise<void>((resolve) => (c.state === 'open' ? resolve() : c.on('$ready', () => resolve()))), 5000, '$ready');

beforeAll(async () => {
  app = await startApp(OPTIONS, [BinaryGateway]);
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const close of closers.splice(0)) await close();
  received.length = 0;
});

afterAll(async () => {
  await app.close();
});

describe('binary messages', () => {
  it('client.send(bytes) reaches a Buffer-typed handler as a Buffer', async () => {
    const c = client(app.wsUrl('/ws'));
    const bytes = randomBytes(30_000);
    c.send('blob', bytes);
    c.send('blob', new Uint8Array(0));
    await waitUntil(() => received.length === 2, { what: 'both blobs' });
    expect(received[0]).toMatchObject({ event: 'blob', isBuffer: true });
    expect(received[0].bytes.equals(bytes)).toBe(true);
    expect(received[1].bytes.length).toBe(0);
  });

  it('client.request(bytes) gets a Buffer reply as a Uint8Array', async () => {
    const c = client(app.wsUrl('/ws'));
    const bytes = randomBytes(1000);
    const reply = await within(c.request<Uint8Array>('reverse', bytes), 5000, 'reply');
    expect(reply).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(reply).equals(Buffer.from(bytes).reverse())).toBe(true);
  });

  it('the wire format: [u16 header length][header JSON][payload], with ref, and seq on pushes', async () => {
    const ws = new WebSocket(app.wsUrl('/ws'));
    closers.push(() => ws.terminate());
    const frames: Array<{ binary: boolean; data: Buffer }> = [];
    ws.on('message', (data, binary) => frames.push({ binary, data: data as Buffer }));
    await waitUntil(() => frames.length >= 1, { what: '$ready' });
    ws.send(encodeBinaryMessage('{"event":"reverse","id":"r1"}', Uint8Array.from([1, 2, 3])));
    ws.send(JSON.stringify({ event: 'push-me', data: { count: 2, size: 5 }, id: 2 }));
    await waitUntil(() => frames.filter((f) => f.binary).length === 3, { what: 'reply and two pushes' });
    // Handlers run concurrently: the reply and the pushes may come in either order.
    const binaryFrames = frames.filter((f) => f.binary);
    const binary = binaryFrames.map((f) => decodeServerBinary(new Uint8Array(f.data)));
    const reply = binary.findIndex((m) => m!.event === 'reverse');
    expect(binary[reply]).toMatchObject({ event: 'reverse', ref: 'r1' });
    expect(Array.from(binary[reply]!.data!)).toEqual([3, 2, 1]);
    expect(binaryFrames[reply].data.readUInt16BE(0)).toBe(Buffer.byteLength('{"event":"reverse","ref":"r1"}'));
    expect(binary.filter((m) => m!.event === 'bin').map((m) => [m!.event, m!.seq, Array.from(m!.data!)])).toEqual([
      ['bin', 1, [0, 0, 0, 0, 0]],
      ['bin', 2, [1, 1, 1, 1, 1]],
    ]);
  });

  it('bad binary frames are answered BAD_MESSAGE and the connection keeps working', async () => {
    const ws = new WebSocket(app.wsUrl('/ws'));
    closers.push(() => ws.terminate());
    const texts: any[] = [];
    ws.on('message', (data, binary) => binary || texts.push(JSON.parse(String(data))));
    await waitUntil(() => texts.length >= 1, { what: '$ready' });
    const long = Buffer.alloc(2 + 1100, 0x20);
    long.writeUInt16BE(1100, 0);
    for (const frame of [Buffer.from([7]), long, encodeBinaryMessage('{"event":"$ping","id":5}', new Uint8Array(1)), encodeBinaryMessage('{"id":6}', new Uint8Array(1))]) {
      ws.send(frame);
    }
    await waitUntil(() => texts.filter((t) => t.event === '$error').length === 4, { what: 'four errors' });
    expect(texts.filter((t) => t.event === '$error').map((t) => t.data.code)).toEqual(['BAD_MESSAGE', 'BAD_MESSAGE', 'BAD_MESSAGE', 'BAD_MESSAGE']);
    ws.send(JSON.stringify({ event: '$ping', data: 1, id: 9 }));
    await waitUntil(() => texts.some((t) => t.event === '$pong' && t.ref === 9), { what: 'pong' });
  });

  it('a binary push is sequenced, kept and replayed once after a resume', async () => {
    const proxy = await TcpProxy.start(app.port);
    closers.push(() => proxy.close());
    const c = client(proxy.url('/ws'));
    const got: number[] = [];
    c.on('bin', (data: Uint8Array) => got.push(data[0]));
    await ready(c);
    const socket = sockets.get(c.sessionId!)!;
    socket.send('bin', Buffer.from([1]));
    await waitUntil(() => got.length === 1, { what: 'the first push' });
    let resumed = 0;
    c.on('$ready', (info) => info.resumed && resumed++);
    proxy.stall('down'); // pushes sent now never reach this connection
    socket.send('bin', Buffer.from([2]));
    socket.send('bin', Buffer.from([3]));
    await sleep(50);
    proxy.cutAll();
    proxy.resume();
    await waitUntil(() => resumed === 1 && got.length === 3, { what: 'the replay', timeoutMs: 5000 });
    await sleep(100);
    expect(got).toEqual([1, 2, 3]);
  });

  it('BroadcastService sends binary to a room (payload shared by the recipients)', async () => {
    const a = client(app.wsUrl('/ws'));
    const b = client(app.wsUrl('/ws'));
    const heard: string[] = [];
    for (const c of [a, b]) c.on('heard', (data: Uint8Array) => heard.push(Buffer.from(data).toString('hex')));
    await Promise.all([ready(a), ready(b)]);
    await a.request('join', 'r');
    await b.request('join', 'r');
    await a.request('shout', { room: 'r', hex: 'cafe00ff' });
    await waitUntil(() => heard.length === 2, { what: 'both members' });
    expect(heard).toEqual(['cafe00ff', 'cafe00ff']);
  });

  it('validation: a DTO body refuses binary, a Buffer body refuses JSON', async () => {
    const c = client(app.wsUrl('/ws'));
    const dto = await c.request('note', new Uint8Array([1])).catch((error: RequestError) => error);
    expect(dto).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ property: 'data', constraints: { isObject: expect.any(String) } }] });
    const buffer = await c.request('reverse', { text: 'x' }).catch((error: RequestError) => error);
    expect(buffer).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ property: 'data', constraints: { isBinary: expect.any(String) } }] });
    await expect(c.request('note', { text: 'fine' })).resolves.toEqual({ ok: true });
  });
});

describe('binary broadcast through Redis', () => {
  it('reaches a client on another instance intact, base64 on the bus', async () => {
    const channelPrefix = uniquePrefix('bin');
    const options: ReliableWsOptions = { ...OPTIONS, broadcast: { redis: REDIS_URL, channelPrefix } };
    const [one, two] = await Promise.all([startApp(options, [BinaryGateway]), startApp(options, [BinaryGateway])]);
    closers.push(() => one.close(), () => two.close());
    const onTwo = client(two.wsUrl('/ws'));
    const onOne = client(one.wsUrl('/ws'));
    const heard: Buffer[] = [];
    onTwo.on('heard', (data: Uint8Array) => heard.push(Buffer.from(data)));
    await Promise.all([ready(onOne), ready(onTwo)]);
    await onTwo.request('join', 'x');
    const bytes = randomBytes(20_000);
    await onOne.request('shout', { room: 'x', hex: bytes.toString('hex') });
    await waitUntil(() => heard.length === 1, { what: 'the broadcast on the other instance' });
    expect(heard[0].equals(bytes)).toBe(true);
  });
});
