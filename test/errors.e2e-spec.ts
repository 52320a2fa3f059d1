import {
  BadRequestException,
  ForbiddenException,
  HttpException,
  Injectable,
  InternalServerErrorException,
  ServiceUnavailableException,
  UnauthorizedException,
  UseGuards,
  UsePipes,
  ValidationPipe,
  type CanActivate,
} from '@nestjs/common';
import { MessageBody, SubscribeMessage, WsException } from '@nestjs/websockets';
import { Type } from 'class-transformer';
import { IsInt, IsString, MaxLength, Min, MinLength, ValidateNested } from 'class-validator';
import { EMPTY, from, of, throwError, delay as delayed } from 'rxjs';
import { ReliableGateway, ReliableWsException } from '../lib/index.js';
import { startAppWithoutRateLimit } from './support/lenient-app.js';
import type { TestApp } from './support/app.js';
import { watchProcessErrors } from './support/process-errors.js';
import { getHealth } from './support/health.js';
import { sleep } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

class AuthorDto {
  @IsString()
  name!: string;
}

class SayDto {
  @IsString()
  text!: string;

  @IsInt()
  @Min(0)
  room!: number;
}

class StrictDto {
  @IsString()
  @MinLength(3)
  @MaxLength(5)
  word!: string;
}

class PostDto {
  @IsString()
  title!: string;

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

@Injectable()
class AllowGuard implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

@ReliableGateway({ path: '/ws' })
class ErrorsGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }

  @SubscribeMessage('other')
  other(@MessageBody() data: unknown) {
    return { event: 'answered', data: { got: data } };
  }

  @SubscribeMessage('nothing')
  nothing() {}

  @SubscribeMessage('async')
  async asyncEcho(@MessageBody() data: unknown) {
    await sleep(20);
    return { later: data };
  }

  @SubscribeMessage('async-nothing')
  async asyncNothing() {
    await sleep(5);
  }

  @SubscribeMessage('observable')
  observable(@MessageBody() data: unknown) {
    return of(data).pipe(delayed(10));
  }

  @SubscribeMessage('observable-many')
  observableMany() {
    return from([1, 2, 3]);
  }

  @SubscribeMessage('observable-empty')
  observableEmpty() {
    return EMPTY;
  }

  @SubscribeMessage('observable-error')
  observableError() {
    return throwError(() => new Error('secret from an observable'));
  }

  @SubscribeMessage('say')
  @UsePipes(new ValidationPipe())
  say(@MessageBody() msg: SayDto) {
    return { ok: true, text: msg.text, isDto: msg instanceof SayDto };
  }

  @SubscribeMessage('strict')
  @UsePipes(new ValidationPipe())
  strict(@MessageBody() msg: StrictDto) {
    return msg.word;
  }

  @SubscribeMessage('post')
  @UsePipes(new ValidationPipe())
  post(@MessageBody() msg: PostDto) {
    return msg.author.name;
  }

  @SubscribeMessage('post-raw-errors')
  @UsePipes(new ValidationPipe({ exceptionFactory: (errors) => new BadRequestException(errors) }))
  postRawErrors(@MessageBody() msg: PostDto) {
    return msg.author.name;
  }

  @SubscribeMessage('unauthorized')
  unauthorized() {
    throw new UnauthorizedException('who are you');
  }

  @SubscribeMessage('forbidden')
  forbidden() {
    throw new ForbiddenException('not yours');
  }

  @SubscribeMessage('guarded')
  @UseGuards(DenyGuard)
  guarded() {
    return 'should never run';
  }

  @SubscribeMessage('allowed')
  @UseGuards(AllowGuard)
  allowed() {
    return 'ran';
  }

  @SubscribeMessage('slow-down')
  slowDown() {
    throw new HttpException('slow down', 429);
  }

  @SubscribeMessage('crash')
  crash() {
    throw new Error('secret');
  }

  @SubscribeMessage('crash-async')
  async crashAsync() {
    await sleep(1);
    throw new Error('secret async');
  }

  @SubscribeMessage('crash-500')
  crash500() {
    throw new InternalServerErrorException('secret db password');
  }

  @SubscribeMessage('crash-503')
  crash503() {
    throw new ServiceUnavailableException('secret upstream host');
  }

  @SubscribeMessage('room-full')
  roomFull() {
    throw new ReliableWsException({ code: 'ROOM_FULL', message: 'full', details: { max: 2 } });
  }

  @SubscribeMessage('ws-exception')
  wsException() {
    throw new WsException('text');
  }
}

@ReliableGateway({ path: '/sync-throw' })
class SyncThrowingConnectGateway {
  handleConnection() {
    throw new Error('connect exploded');
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

@ReliableGateway({ path: '/async-throw' })
class AsyncRejectingConnectGateway {
  async handleConnection() {
    await sleep(5);
    throw new Error('async connect exploded');
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

const disconnects: string[] = [];

@ReliableGateway({ path: '/bad-disconnect' })
class ThrowingDisconnectGateway {
  handleDisconnect() {
    disconnects.push('sync');
    throw new Error('disconnect exploded');
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

@ReliableGateway({ path: '/bad-async-disconnect' })
class RejectingDisconnectGateway {
  async handleDisconnect() {
    disconnects.push('async');
    await sleep(1);
    throw new Error('async disconnect exploded');
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

describe('errors and replies', () => {
  let t: TestApp;
  let c: TestClient;
  let nextId = 1000;

  /** The connection still works: a good message gets its correct reply. */
  async function expectStillOpen(client = c): Promise<void> {
    const id = nextId++;
    expect(await client.request('echo', { alive: id }, id)).toEqual({ event: 'echo', data: { alive: id }, ref: id });
  }

  async function errorFor(event: string, data: unknown, id: number | string): Promise<Frame['data']> {
    const frame = await c.request(event, data, id);
    expect(frame.event).toBe('$error');
    expect(frame).not.toHaveProperty('seq');
    expect(frame).not.toHaveProperty('ref');
    expect(frame.data.ref).toBe(id);
    expect(typeof frame.data.message).toBe('string');
    return frame.data;
  }

  beforeAll(async () => {
    t = await startAppWithoutRateLimit({}, [
      ErrorsGateway,
      SyncThrowingConnectGateway,
      AsyncRejectingConnectGateway,
      ThrowingDisconnectGateway,
      RejectingDisconnectGateway,
    ]);
  });
  beforeEach(async () => {
    c = await TestClient.ready(t.wsUrl('/ws'));
  });
  afterEach(async () => {
    expect(c.frames.filter((f) => f.event !== '$ready')).toEqual([]);
    c.close();
  });
  afterAll(() => t.close());

  describe('replies', () => {
    it('correlates the reply with the id: { event, data, ref }', async () => {
      expect(await c.request('echo', { a: [1, 'x', null] }, 1)).toEqual({ event: 'echo', data: { a: [1, 'x', null] }, ref: 1 });
      expect(await c.request('echo', 'str', 'my-id')).toEqual({ event: 'echo', data: 'str', ref: 'my-id' });
      expect(await c.request('echo', 0, 0)).toEqual({ event: 'echo', data: 0, ref: 0 });
      expect(await c.request('echo', null, 2)).toEqual({ event: 'echo', data: null, ref: 2 });
      expect(await c.request('echo', false, 3)).toEqual({ event: 'echo', data: false, ref: 3 });
    });

    it('replies to concurrent requests each with its own ref', async () => {
      for (let i = 1; i <= 20; i++) c.send({ event: i % 2 ? 'async' : 'echo', data: i, id: i });
      for (let i = 1; i <= 20; i++) {
        const reply = await c.next((f) => f.ref === i);
        expect(reply).toEqual(i % 2 ? { event: 'async', data: { later: i }, ref: i } : { event: 'echo', data: i, ref: i });
      }
    });

    it('a handler returning { event, data } picks the reply event', async () => {
      expect(await c.request('other', 5, 1)).toEqual({ event: 'answered', data: { got: 5 }, ref: 1 });
    });

    it('a handler returning nothing answers an id with $ack { ref }', async () => {
      expect(await c.request('nothing', null, 1)).toEqual({ event: '$ack', data: { ref: 1 } });
      expect(await c.request('nothing', null, 'abc')).toEqual({ event: '$ack', data: { ref: 'abc' } });
      expect(await c.request('async-nothing', null, 2)).toEqual({ event: '$ack', data: { ref: 2 } });
      expect(await c.request('observable-empty', null, 3)).toEqual({ event: '$ack', data: { ref: 3 } });
    });

    it('a handler returning nothing gets no answer at all without id', async () => {
      c.send({ event: 'nothing', data: 1 });
      c.send({ event: 'async-nothing' });
      c.send({ event: 'observable-empty' });
      c.send({ event: 'echo', data: 'after', id: 9 });
      // The next frame is the answer to the later message: nothing was sent for the others.
      expect(await c.next()).toEqual({ event: 'echo', data: 'after', ref: 9 });
      await sleep(50);
      expect(c.frames).toEqual([]);
    });

    it('a handler returning a value without id still replies, without ref', async () => {
      c.send({ event: 'echo', data: 'no id' });
      expect(await c.next()).toEqual({ event: 'echo', data: 'no id' });
      c.send({ event: 'other', data: 1 });
      expect(await c.next()).toEqual({ event: 'answered', data: { got: 1 } });
    });

    it('async handlers reply once they resolve', async () => {
      expect(await c.request('async', 'x', 1)).toEqual({ event: 'async', data: { later: 'x' }, ref: 1 });
    });

    it('an Observable result is awaited and answered exactly once', async () => {
      expect(await c.request('observable', { o: 1 }, 1)).toEqual({ event: 'observable', data: { o: 1 }, ref: 1 });
      expect(await c.request('observable-many', null, 2)).toEqual({ event: 'observable-many', data: 1, ref: 2 });
      c.send({ event: 'echo', data: 'sentinel', id: 3 });
      expect(await c.next()).toEqual({ event: 'echo', data: 'sentinel', ref: 3 });
      await sleep(30);
      expect(c.frames).toEqual([]);
    });

    it('a guard that allows lets the handler run', async () => {
      expect(await c.request('allowed', null, 1)).toEqual({ event: 'allowed', data: 'ran', ref: 1 });
    });
  });

  describe('BAD_MESSAGE', () => {
    const badWithoutRef: Array<[string, string]> = [
      ['not JSON', '{bad'],
      ['empty frame', ''],
      ['a JSON array', '[{"event":"echo","id":1}]'],
      ['a JSON string', '"echo"'],
      ['a JSON number', '42'],
      ['JSON null', 'null'],
      ['id -1', '{"event":"echo","id":-1}'],
      ['id 1.5', '{"event":"echo","id":1.5}'],
      ['id {}', '{"event":"echo","id":{}}'],
      ['id []', '{"event":"echo","id":[]}'],
      ['id true', '{"event":"echo","id":true}'],
      ['id null', '{"event":"echo","id":null}'],
      ['id ""', '{"event":"echo","id":""}'],
      ['id beyond 2^53', '{"event":"echo","id":9007199254740993}'],
      ['id of 129 chars', JSON.stringify({ event: 'echo', id: 'i'.repeat(129) })],
      ['bad id and bad event', '{"event":5,"id":-3}'],
    ];

    it.each(badWithoutRef)('%s → $error BAD_MESSAGE without ref, connection stays open', async (_name, frame) => {
      c.send(frame);
      const error = await c.next();
      expect(error.event).toBe('$error');
      expect(error.data.code).toBe('BAD_MESSAGE');
      expect(typeof error.data.message).toBe('string');
      expect(error.data).not.toHaveProperty('ref');
      await expectStillOpen();
    });

    const badWithRef: Array<[string, Record<string, unknown>]> = [
      ['missing event', { data: 1 }],
      ['empty event', { event: '' }],
      ['event of 129 chars', { event: 'e'.repeat(129) }],
      ['event a number', { event: 7 }],
      ['event null', { event: null }],
      ['event an object', { event: { name: 'echo' } }],
      ['event an array', { event: ['echo'] }],
    ];

    it.each(badWithRef)('%s → $error BAD_MESSAGE with the (valid) id as ref', async (_name, frame) => {
      const id = nextId++;
      c.send({ ...frame, id });
      expect((await c.next()).data).toMatchObject({ code: 'BAD_MESSAGE', ref: id });
      c.send({ ...frame, id: `s${id}` });
      expect((await c.next()).data).toMatchObject({ code: 'BAD_MESSAGE', ref: `s${id}` });
      await expectStillOpen();
    });

    it('an event of exactly 128 characters is a valid envelope (UNKNOWN_EVENT, not BAD_MESSAGE)', async () => {
      expect((await errorFor('e'.repeat(128), null, 1)).code).toBe('UNKNOWN_EVENT');
    });

    it('a string id of 128 characters is valid', async () => {
      const id = 'k'.repeat(128);
      expect(await c.request('echo', 1, id)).toEqual({ event: 'echo', data: 1, ref: id });
    });

    it('a binary frame → $error BAD_MESSAGE, connection stays open', async () => {
      c.raw.send(Buffer.from(JSON.stringify({ event: 'echo', data: 1, id: 1 })), { binary: true });
      const error = await c.next();
      expect(error.event).toBe('$error');
      expect(error.data.code).toBe('BAD_MESSAGE');
      expect(c.frames).toEqual([]);
      await expectStillOpen();
    });
  });

  describe('UNKNOWN_EVENT', () => {
    it('an application event without handler', async () => {
      expect((await errorFor('no-such-event', 1, 1)).code).toBe('UNKNOWN_EVENT');
      c.send({ event: 'no-such-event' });
      const error = await c.next();
      expect(error.data.code).toBe('UNKNOWN_EVENT');
      expect(error.data).not.toHaveProperty('ref');
      await expectStillOpen();
    });

    it('an unknown $-prefixed system event', async () => {
      expect((await errorFor('$foo', {}, 2)).code).toBe('UNKNOWN_EVENT');
      expect((await errorFor('$echo', 'x', 3)).code).toBe('UNKNOWN_EVENT');
      await expectStillOpen();
    });
  });

  describe('VALIDATION_FAILED (ValidationPipe + class-validator DTO)', () => {
    it('a valid DTO reaches the handler as an instance', async () => {
      expect(await c.request('say', { text: 'hi', room: 1 }, 1)).toEqual({
        event: 'say',
        data: { ok: true, text: 'hi', isDto: true },
        ref: 1,
      });
    });

    it('details is an array of { property, constraints }', async () => {
      const error = await errorFor('say', { text: 5, room: -1 }, 2);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(Array.isArray(error.details)).toBe(true);
      for (const detail of error.details) {
        expect(Object.keys(detail).sort()).toEqual(['constraints', 'property']);
        expect(typeof detail.property).toBe('string');
        expect(Object.keys(detail.constraints).length).toBeGreaterThan(0);
        for (const text of Object.values(detail.constraints)) expect(typeof text).toBe('string');
      }
      expect(error.details.map((d: { property: string }) => d.property).sort()).toEqual(['room', 'text']);
      // Keyed by class-validator's constraint names, as in its ValidationError.constraints.
      expect(error.details).toEqual(
        expect.arrayContaining([
          { property: 'text', constraints: { isString: 'text must be a string' } },
          { property: 'room', constraints: { min: 'room must not be less than 0' } },
        ]),
      );
      await expectStillOpen();
    });

    it('a missing body fails validation too', async () => {
      const error = await errorFor('say', undefined, 3);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details).toEqual([{ property: expect.any(String), constraints: expect.any(Object) }]);
      await expectStillOpen();
    });

    it('nested properties are reported with a dotted path', async () => {
      const error = await errorFor('post', { title: 't', author: { name: 42 } }, 4);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details).toEqual([{ property: 'author.name', constraints: { isString: 'name must be a string' } }]);
    });

    it('a property failing several constraints is one entry carrying all of them', async () => {
      const error = await errorFor('strict', { word: 7 }, 5);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details).toHaveLength(1);
      expect(error.details[0].property).toBe('word');
      expect(Object.keys(error.details[0].constraints).sort()).toEqual(['isString', 'maxLength', 'minLength']);
      await expectStillOpen();
    });

    it('a ValidationPipe whose exceptionFactory passes the raw errors gives class-validator constraint names', async () => {
      const error = await errorFor('post-raw-errors', { title: 1, author: { name: 2 } }, 6);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details).toEqual([
        { property: 'title', constraints: { isString: 'title must be a string' } },
        { property: 'author.name', constraints: { isString: 'name must be a string' } },
      ]);
    });
  });

  describe('exceptions thrown by handlers and guards', () => {
    it('UnauthorizedException → UNAUTHENTICATED', async () => {
      expect(await errorFor('unauthorized', null, 1)).toEqual({ code: 'UNAUTHENTICATED', message: 'who are you', ref: 1 });
      await expectStillOpen();
    });

    it('ForbiddenException → FORBIDDEN', async () => {
      expect(await errorFor('forbidden', null, 2)).toEqual({ code: 'FORBIDDEN', message: 'not yours', ref: 2 });
      await expectStillOpen();
    });

    it('a guard returning false → FORBIDDEN, the handler does not run', async () => {
      const error = await errorFor('guarded', null, 3);
      expect(error.code).toBe('FORBIDDEN');
      await expectStillOpen();
    });

    it("HttpException('slow down', 429) → RATE_LIMITED", async () => {
      const error = await errorFor('slow-down', null, 4);
      expect(error).toMatchObject({ code: 'RATE_LIMITED', message: 'slow down', ref: 4 });
      await expectStillOpen();
    });

    it("a plain Error('secret') → INTERNAL without leaking the message", async () => {
      for (const [event, id] of [
        ['crash', 5],
        ['crash-async', 6],
        ['observable-error', 7],
      ] as const) {
        const error = await errorFor(event, null, id);
        expect(error).toEqual({ code: 'INTERNAL', message: 'Internal error', ref: id });
        expect(JSON.stringify(error)).not.toMatch(/secret/);
      }
      await expectStillOpen();
    });

    it('a 5xx HttpException → INTERNAL without leaking its message', async () => {
      for (const [event, id] of [
        ['crash-500', 8],
        ['crash-503', 9],
      ] as const) {
        const error = await errorFor(event, null, id);
        expect(error.code).toBe('INTERNAL');
        expect(JSON.stringify(error)).not.toMatch(/secret/);
      }
      await expectStillOpen();
    });

    it('ReliableWsException passes its own code and details through', async () => {
      expect(await errorFor('room-full', null, 10)).toEqual({
        code: 'ROOM_FULL',
        message: 'full',
        details: { max: 2 },
        ref: 10,
      });
      await expectStillOpen();
    });

    it("WsException('text') → INTERNAL with message 'text'", async () => {
      expect(await errorFor('ws-exception', null, 11)).toEqual({ code: 'INTERNAL', message: 'text', ref: 11 });
      await expectStillOpen();
    });

    it('a failing handler without id still reports $error, without ref', async () => {
      c.send({ event: 'forbidden' });
      expect(await c.next()).toEqual({ event: '$error', data: { code: 'FORBIDDEN', message: 'not yours' } });
      c.send({ event: 'crash' });
      expect(await c.next()).toEqual({ event: '$error', data: { code: 'INTERNAL', message: 'Internal error' } });
      await expectStillOpen();
    });

    it('errors of concurrent messages are each reported against their own id', async () => {
      const events = ['crash-async', 'echo', 'forbidden', 'async', 'unauthorized', 'nothing'];
      events.forEach((event, i) => c.send({ event, data: i, id: 100 + i }));
      const answers = [];
      for (let i = 0; i < events.length; i++) answers.push(await c.next((f) => (f.ref ?? f.data?.ref) === 100 + i));
      expect(answers).toEqual([
        { event: '$error', data: { code: 'INTERNAL', message: 'Internal error', ref: 100 } },
        { event: 'echo', data: 1, ref: 101 },
        { event: '$error', data: { code: 'FORBIDDEN', message: 'not yours', ref: 102 } },
        { event: 'async', data: { later: 3 }, ref: 103 },
        { event: '$error', data: { code: 'UNAUTHENTICATED', message: 'who are you', ref: 104 } },
        { event: '$ack', data: { ref: 105 } },
      ]);
    });
  });

  describe('failing lifecycle hooks', () => {
    let watch: ReturnType<typeof watchProcessErrors>;
    beforeEach(() => {
      // Jest itself also fails the test on an uncaught exception or unhandled rejection.
      watch = watchProcessErrors();
    });
    afterEach(() => {
      watch.stop();
      expect(watch.errors).toEqual([]);
    });

    it.each([
      ['synchronously', '/sync-throw'],
      ['asynchronously', '/async-throw'],
    ])('a handleConnection that throws %s closes that client with 1011; the app keeps running', async (_how, path) => {
      const victim = new TestClient(t.wsUrl(path));
      await victim.open();
      expect((await victim.closed()).code).toBe(1011);
      await sleep(30);
      await expectStillOpen();
      const other = await TestClient.ready(t.wsUrl('/ws'));
      await expectStillOpen(other);
      other.close();
      expect((await getHealth(t.httpUrl('/health/ws'))).status).toBe(200);
    });

    it.each([
      ['synchronously', '/bad-disconnect', 'sync'],
      ['asynchronously', '/bad-async-disconnect', 'async'],
    ])('a handleDisconnect that throws %s does not crash the app', async (_how, path, marker) => {
      disconnects.length = 0;
      const d = await TestClient.ready(t.wsUrl(path));
      await expectStillOpen(d);
      d.close();
      await d.closed();
      const dropped = await TestClient.ready(t.wsUrl(path));
      dropped.terminate();
      await sleep(50);
      expect(disconnects).toEqual([marker, marker]);
      await expectStillOpen();
      expect((await getHealth(t.httpUrl('/health/ws'))).status).toBe(200);
    });
  });
});
