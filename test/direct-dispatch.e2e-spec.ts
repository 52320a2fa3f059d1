/**
 * `@ReliableGateway` handlers that nothing else enhances run without Nest's per-message pipeline
 * (lib/adapter/direct-handlers.ts). The same gateway in an app with a global interceptor goes
 * through Nest's pipeline: every answer, of every kind of handler result and failure, must be
 * the same frame on both.
 */
import 'reflect-metadata';
import { Injectable, Module, UseGuards, type CallHandler, type CanActivate, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage, WsException } from '@nestjs/websockets';
import { Type } from 'class-transformer';
import { IsInt, IsString, Min, ValidateNested } from 'class-validator';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { EMPTY, Observable, of, throwError } from 'rxjs';
import { RateLimit, ReliableGateway, ReliableSocket, ReliableWsAdapter, ReliableWsException, ReliableWsModule } from '../lib/index.js';
import { waitUntil } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

const TOKEN = 'direct-token';
const USERS: Record<string, { id: string }> = { [TOKEN]: { id: 'u1' }, 'direct-token-2': { id: 'u2' } };

class AuthorDto {
  @IsString()
  name!: string;
}

class PostDto {
  @IsString()
  title!: string;

  @IsInt()
  @Min(0)
  votes!: number;

  @ValidateNested()
  @Type(() => AuthorDto)
  author!: AuthorDto;
}

@Injectable()
class DenyGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

let neverSubscribed = 0;

@ReliableGateway({ path: '/ws' })
class ParityGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }

  @SubscribeMessage('event-reply')
  eventReply(@MessageBody() data: unknown) {
    return { event: 'replied', data: { got: data } };
  }

  /** A reply under the protocol's name, as a client would take it for the server's own `$ready`. */
  @SubscribeMessage('dollar-reply')
  dollarReply() {
    return { event: '$ready', data: { sessionId: 'forged', resumed: false, missed: false, lastId: 0, heartbeatMs: 1 } };
  }

  @SubscribeMessage('async')
  async later(@MessageBody() data: unknown) {
    await new Promise((resolve) => setImmediate(resolve));
    return { later: data };
  }

  @SubscribeMessage('observable')
  observable(@MessageBody() data: unknown): Observable<unknown> {
    return of({ first: data }, { second: data });
  }

  @SubscribeMessage('empty')
  empty(): Observable<never> {
    return EMPTY;
  }

  /** An observable that never emits (it waits for an event that never comes); counts its live subscriptions. */
  @SubscribeMessage('never')
  never(): Observable<never> {
    return new Observable<never>(() => {
      neverSubscribed++;
      return () => neverSubscribed--;
    });
  }

  @SubscribeMessage('nothing')
  nothing(): void {}

  @SubscribeMessage('coded')
  coded(): never {
    throw new ReliableWsException({ code: 'NOT_FOUND', message: 'no such room' });
  }

  @SubscribeMessage('ws-exception')
  wsException(): never {
    throw new WsException({ code: 'TEAPOT', message: 'short and stout' });
  }

  @SubscribeMessage('crash')
  crash(): never {
    throw new Error('secret internals');
  }

  @SubscribeMessage('rejects')
  async rejects(): Promise<never> {
    throw new ReliableWsException({ code: 'CONFLICT', message: 'taken' });
  }

  @SubscribeMessage('observable-error')
  observableError(): Observable<never> {
    return throwError(() => new ReliableWsException({ code: 'GONE', message: 'went away' }));
  }

  @SubscribeMessage('post')
  post(@MessageBody() post: PostDto) {
    return { isDto: post instanceof PostDto, nested: post.author instanceof AuthorDto, post };
  }

  @SubscribeMessage('title')
  title(@MessageBody('title') title: string, @ConnectedSocket() socket: ReliableSocket) {
    return { title, socket: socket instanceof ReliableSocket, user: socket.principal };
  }

  @SubscribeMessage('limited')
  @RateLimit({ points: 2, durationMs: 60_000 })
  limited() {
    return 'ok';
  }

  @SubscribeMessage('denied')
  @UseGuards(DenyGuard)
  denied() {
    return 'never';
  }

  @SubscribeMessage('unserializable')
  unserializable(@MessageBody() kind: unknown) {
    if (kind === 'bigint') return { big: 1n };
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    return circular;
  }

  @SubscribeMessage('throwing-getter')
  throwingGetter() {
    return {
      get boom(): never {
        throw new Error('getter');
      },
    };
  }

  @SubscribeMessage('pipeline')
  pipeline() {
    return { direct: (new Error().stack ?? '').includes('direct-handlers') };
  }
}

/** Every handler direct: its connections share one handler table. */
@ReliableGateway({ path: '/all-direct' })
class AllDirectGateway {
  @SubscribeMessage('whoami')
  whoami(@MessageBody() data: unknown, @ConnectedSocket() socket: ReliableSocket) {
    return { data, user: socket.principal, session: socket.id, direct: (new Error().stack ?? '').includes('direct-handlers') };
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

@Injectable()
class PassThroughInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

interface Server {
  close(): Promise<void>;
  client(path?: string, token?: string): Promise<TestClient>;
}

async function startServer(throughNest: boolean): Promise<Server> {
  @Module({
    imports: [
      ReliableWsModule.forRoot({
        auth: { verify: (token) => USERS[token] ?? null, mode: 'any' },
        rateLimit: { points: 10_000, durationMs: 1000 },
      }),
    ],
    providers: [ParityGateway, AllDirectGateway, DenyGuard],
  })
  class ParityModule {}
  const app = await NestFactory.create(ParityModule, { logger: false });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  if (throughNest) app.useGlobalInterceptors(new PassThroughInterceptor());
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  const clients: TestClient[] = [];
  return {
    async client(path = '/ws', token = TOKEN) {
      const client = new TestClient(`ws://127.0.0.1:${port}${path}?token=${token}`, 'rws.v1');
      clients.push(client);
      await client.open();
      client.send({ event: '$hello', data: {} });
      await client.next((frame) => frame.event === '$ready');
      return client;
    },
    async close() {
      for (const client of clients) client.raw.terminate();
      await app.close();
    },
  };
}

/** The answer to one request, with what depends on timing left out. */
async function answer(client: TestClient, event: string, data: unknown, id: number): Promise<Frame> {
  const frame = await client.request(event, data, id);
  if (frame.data && typeof frame.data === 'object' && 'retryAfterMs' in frame.data) {
    return { ...frame, data: { ...frame.data, retryAfterMs: 'some' } };
  }
  return frame;
}

describe('direct dispatch: the same answers as through Nest’s pipeline', () => {
  let direct: Server;
  let nest: Server;
  let directClient: TestClient;
  let nestClient: TestClient;
  let nextId = 1;

  beforeAll(async () => {
    direct = await startServer(false);
    nest = await startServer(true);
    directClient = await direct.client();
    nestClient = await nest.client();
  });

  afterAll(async () => {
    await direct?.close();
    await nest?.close();
  });

  async function both(event: string, data: unknown): Promise<[Frame, Frame]> {
    const id = nextId++;
    return Promise.all([answer(directClient, event, data, id), answer(nestClient, event, data, id)]);
  }

  it('takes the direct path only where nothing else enhances the handler', async () => {
    const [viaDirect, viaNest] = await both('pipeline', null);
    expect(viaDirect.data).toEqual({ direct: true });
    expect(viaNest.data).toEqual({ direct: false });
  });

  const cases: Array<[string, string, unknown, (frame: Frame) => void]> = [
    ['a value', 'echo', { a: [1, 'two', null] }, (frame) => expect(frame).toMatchObject({ event: 'echo', data: { a: [1, 'two', null] } })],
    ['{ event, data }', 'event-reply', 7, (frame) => expect(frame).toMatchObject({ event: 'replied', data: { got: 7 } })],
    ['a promise', 'async', 'x', (frame) => expect(frame.data).toEqual({ later: 'x' })],
    ['an observable (its first value)', 'observable', 1, (frame) => expect(frame.data).toEqual({ first: 1 })],
    ['an empty observable', 'empty', null, (frame) => expect(frame.event).toBe('$ack')],
    ['nothing', 'nothing', null, (frame) => expect(frame.event).toBe('$ack')],
    ['a ReliableWsException', 'coded', null, (frame) => expect(frame.data).toMatchObject({ code: 'NOT_FOUND', message: 'no such room' })],
    ['a WsException', 'ws-exception', null, (frame) => expect(frame.data).toMatchObject({ code: 'TEAPOT' })],
    ['an Error (INTERNAL, no details)', 'crash', null, (frame) => expect(JSON.stringify(frame)).not.toContain('secret')],
    ['a rejection', 'rejects', null, (frame) => expect(frame.data).toMatchObject({ code: 'CONFLICT' })],
    ['an observable error', 'observable-error', null, (frame) => expect(frame.data).toMatchObject({ code: 'GONE' })],
    ['a valid DTO (an instance)', 'post', { title: 't', votes: 1, author: { name: 'n' } }, (frame) => expect(frame.data).toMatchObject({ isDto: true, nested: true })],
    ['an invalid DTO', 'post', { title: 5, votes: -1, author: {} }, (frame) => expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED' })],
    ['a string where a DTO is declared', 'post', 'not an object', (frame) => expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED' })],
    ['a body property and the socket', 'title', { title: 'hi' }, (frame) => expect(frame.data).toEqual({ title: 'hi', socket: true, user: { id: 'u1' } })],
    ['a BigInt result', 'unserializable', 'bigint', (frame) => expect(frame.data).toMatchObject({ code: 'INTERNAL' })],
    ['a circular result', 'unserializable', 'circular', (frame) => expect(frame.data).toMatchObject({ code: 'INTERNAL' })],
    ['a result with a throwing getter', 'throwing-getter', null, (frame) => expect(frame.data).toMatchObject({ code: 'INTERNAL' })],
    ['a method guard (through Nest on both)', 'denied', null, (frame) => expect(frame.data).toMatchObject({ code: 'FORBIDDEN' })],
  ];

  it.each(cases)('answers %s alike', async (_name, event, data, check) => {
    const [viaDirect, viaNest] = await both(event, data);
    expect(viaDirect).toEqual(viaNest);
    check(viaDirect);
  });

  it('charges the rate limit alike', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await both('limited', null));
    for (const [viaDirect, viaNest] of answers) expect(viaDirect).toEqual(viaNest);
    expect(answers.map(([frame]) => frame.data?.code ?? frame.data)).toEqual(['ok', 'ok', 'RATE_LIMITED']);
  });

  it('a gateway whose handlers are all direct answers each connection as itself', async () => {
    const clients = await Promise.all([direct.client('/all-direct'), direct.client('/all-direct', 'direct-token-2'), direct.client('/all-direct')]);
    const replies = await Promise.all(clients.map((client, i) => client.request('whoami', i, 1)));
    expect(replies.map((reply) => reply.data.user)).toEqual([{ id: 'u1' }, { id: 'u2' }, { id: 'u1' }]);
    expect(replies.map((reply) => reply.data.data)).toEqual([0, 1, 2]);
    expect(replies.every((reply) => reply.data.direct)).toBe(true);
    expect(new Set(replies.map((reply) => reply.data.session)).size).toBe(3);
    clients[0].raw.terminate();
    expect((await clients[1].request('echo', 'still here', 2)).data).toBe('still here');
    expect((await clients[2].request('no-such-event', null, 2)).data).toMatchObject({ code: 'UNKNOWN_EVENT' });
  });

  it('answers a reply under a `$` event name with INTERNAL, alike', async () => {
    const [viaDirect, viaNest] = await both('dollar-reply', null);
    expect(viaDirect).toEqual(viaNest);
    expect(viaDirect).toMatchObject({ event: '$error', data: { code: 'INTERNAL' } });
  });

  it('a handler observable still waiting when its session ends is unsubscribed, on both paths', async () => {
    for (const server of [direct, nest]) {
      const client = await server.client();
      for (let id = 1; id <= 20; id++) client.send({ event: 'never', data: null, id });
      await waitUntil(() => neverSubscribed === 20, { what: '20 waiting handler observables' });
      client.raw.close(1000); // ends the session
      await waitUntil(() => neverSubscribed === 0, { what: 'every one of them unsubscribed' });
    }
  });

  it('answers any payload alike (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('echo', 'post', 'title', 'event-reply'), fc.jsonValue({ maxDepth: 3 }), async (event, data) => {
        const [viaDirect, viaNest] = await both(event, data);
        expect(viaDirect).toEqual(viaNest);
      }),
      { numRuns: 150, interruptAfterTimeLimit: 20_000 },
    );
  }, 30_000);
});
