import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { request } from 'node:http';
import { BroadcastService, ReliableGateway, type ReliableSocket } from '../../lib/index.js';
import { waitUntil } from './wait.js';
import { TestClient, type Frame } from './ws-client.js';

/** What a handler reports about the promise a BroadcastService method returned. */
export interface CallResult {
  promise: boolean;
  resolvedUndefined: boolean;
  rooms?: string[];
}

async function report(call: unknown, rooms?: string[]): Promise<CallResult> {
  const promise = call instanceof Promise;
  const value = await call;
  return { promise, resolvedUndefined: value === undefined, ...(rooms ? { rooms } : {}) };
}

/** A gateway that exposes every BroadcastService method as a handler (constructor-injected). */
@ReliableGateway({ path: '/ws' })
export class BroadcastGateway {
  constructor(private readonly broadcast: BroadcastService) {}

  @SubscribeMessage('join')
  async join(@MessageBody() body: { room: string; sessionId?: string }, @ConnectedSocket() socket: ReliableSocket) {
    const result = await report(this.broadcast.join(body.sessionId ?? socket.id, body.room));
    return { ...result, rooms: this.broadcast.roomsOf(socket.id) };
  }

  @SubscribeMessage('leave')
  async leave(@MessageBody() body: { room: string; sessionId?: string }, @ConnectedSocket() socket: ReliableSocket) {
    const result = await report(this.broadcast.leave(body.sessionId ?? socket.id, body.room));
    return { ...result, rooms: this.broadcast.roomsOf(socket.id) };
  }

  @SubscribeMessage('toRoom')
  toRoom(
    @MessageBody() body: { room: string; event: string; data: unknown; exceptSelf?: boolean },
    @ConnectedSocket() socket: ReliableSocket,
  ) {
    const options = body.exceptSelf ? { except: socket.id } : undefined;
    return report(this.broadcast.toRoom(body.room, body.event, body.data, options));
  }

  @SubscribeMessage('toAll')
  toAll(@MessageBody() body: { event: string; data: unknown; exceptSelf?: boolean }, @ConnectedSocket() socket: ReliableSocket) {
    const options = body.exceptSelf ? { except: socket.id } : undefined;
    return report(this.broadcast.toAll(body.event, body.data, options));
  }

  @SubscribeMessage('toClient')
  toClient(@MessageBody() body: { sessionId: string; event: string; data: unknown }) {
    return report(this.broadcast.toClient(body.sessionId, body.event, body.data));
  }

  @SubscribeMessage('toUser')
  toUser(@MessageBody() body: { userId: string | number; event: string; data: unknown }) {
    return report(this.broadcast.toUser(body.userId, body.event, body.data));
  }

  @SubscribeMessage('rooms')
  rooms(@ConnectedSocket() socket: ReliableSocket) {
    return { rooms: this.broadcast.roomsOf(socket.id) };
  }
}

/** A plain HTTP controller pushing through BroadcastService: broadcasts from outside any gateway. */
@Controller('bc')
export class BroadcastController {
  constructor(private readonly broadcast: BroadcastService) {}

  @Post('all')
  @HttpCode(200)
  all(@Body() body: { event: string; data: unknown; except?: string }) {
    return report(this.broadcast.toAll(body.event, body.data, body.except ? { except: body.except } : undefined));
  }

  @Post('room')
  @HttpCode(200)
  room(@Body() body: { room: string; event: string; data: unknown; except?: string }) {
    return report(this.broadcast.toRoom(body.room, body.event, body.data, body.except ? { except: body.except } : undefined));
  }

  @Post('client')
  @HttpCode(200)
  client(@Body() body: { sessionId: string; event: string; data: unknown }) {
    return report(this.broadcast.toClient(body.sessionId, body.event, body.data));
  }

  @Post('user')
  @HttpCode(200)
  user(@Body() body: { userId: string | number; event: string; data: unknown }) {
    return report(this.broadcast.toUser(body.userId, body.event, body.data));
  }

  @Post('join')
  @HttpCode(200)
  join(@Body() body: { sessionId: string; room: string }) {
    return report(this.broadcast.join(body.sessionId, body.room), undefined);
  }

  @Post('leave')
  @HttpCode(200)
  leave(@Body() body: { sessionId: string; room: string }) {
    return report(this.broadcast.leave(body.sessionId, body.room), undefined);
  }

  @Get('rooms/:sessionId')
  rooms(@Param('sessionId') sessionId: string) {
    return { rooms: this.broadcast.roomsOf(sessionId) };
  }
}

/** POSTs (or GETs, without a body) JSON on a fresh connection, with a deadline. */
export function httpJson(
  url: string,
  body?: unknown,
  timeoutMs = 5000,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method: payload === undefined ? 'GET' : 'POST',
        agent: false,
        timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
        response.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A connected client and its session id (from `$ready`). */
export interface Peer {
  client: TestClient;
  sessionId: string;
  /** The session's resume token (resumable peers only). */
  resumeToken?: string;
}

/** Opens a plain client and waits for its `$ready`. */
/**
 * Connects a client and waits for its session. A `resumable` one speaks `rws.v1` (opens with
 * `$hello`), so its session outlives a dropped connection; a plain client's does not.
 */
export async function connectPeer(url: string, { resumable = false } = {}): Promise<Peer> {
  const client = new TestClient(url, resumable ? 'rws.v1' : undefined);
  await client.open();
  if (resumable) client.send({ event: '$hello', data: {} });
  const ready = await client.next((frame) => frame.event === '$ready');
  return { client, sessionId: ready.data.sessionId as string, resumeToken: ready.data.resumeToken as string | undefined };
}

/** Pushes recorded by a client for an event (not removed from the record). */
export function pushesOf(client: TestClient, event: string): Frame[] {
  return client.frames.filter((frame) => frame.event === event);
}

/** Every push (a frame with a seq) a client has recorded. */
export function allPushes(client: TestClient): Frame[] {
  return client.frames.filter((frame) => frame.seq !== undefined);
}

/** Waits (bounded) until a client has recorded at least `count` frames of an event. */
export async function waitForPushes(client: TestClient, event: string, count: number, timeoutMs = 5000): Promise<Frame[]> {
  return waitUntil(
    () => {
      const found = pushesOf(client, event);
      return found.length >= count ? found : undefined;
    },
    { timeoutMs, intervalMs: 10, what: `${count} "${event}" push(es); got ${pushesOf(client, event).length}` },
  );
}

/** Asserts that a handler answered with a reply (not an `$error`) and returns its data. */
export async function call(client: TestClient, event: string, data: unknown, id: number): Promise<any> {
  const answer = await client.request(event, data, id);
  if (answer.event === '$error') throw new Error(`${event} answered $error: ${JSON.stringify(answer.data)}`);
  return answer.data;
}

/** Closes clients that are still open and waits (bounded) for their close. */
export async function closeAll(clients: TestClient[]): Promise<void> {
  await Promise.all(
    clients.splice(0).map(async (client) => {
      if (client.raw.readyState === client.raw.CLOSED) return;
      client.close();
      await client.closed(3000).catch(() => client.terminate());
    }),
  );
}
