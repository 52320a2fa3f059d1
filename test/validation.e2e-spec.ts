/**
 * Message validation, end to end: class-validator / class-transformer DTOs on `@MessageBody()`
 * parameters of a `@ReliableGateway`, a real Nest app on port 0 and real `ws` clients.
 */
import { UsePipes, ValidationPipe } from '@nestjs/common';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import fc from 'fast-check';
import { ReliableGateway } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { refOf } from './support/answers.js';
import { sleep } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

class CreateDto {
  @IsString()
  @IsNotEmpty()
  text!: string;

  @IsInt()
  @Min(0)
  count!: number;
}

class AuthorDto {
  @IsString()
  @IsNotEmpty()
  name!: string;
}

class TagDto {
  @IsString()
  @MaxLength(10)
  label!: string;
}

class ArticleDto {
  @IsString()
  title!: string;

  @ValidateNested()
  @Type(() => AuthorDto)
  author!: AuthorDto;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(5)
  @ValidateNested({ each: true })
  @Type(() => TagDto)
  tags?: TagDto[];
}

class PipeDto {
  @IsString()
  text!: string;

  @IsInt()
  @Max(10)
  n!: number;
}

/** Handler invocations, reset before each test. */
const calls: Record<string, number> = {};
const count = (name: string): void => {
  calls[name] = (calls[name] ?? 0) + 1;
};

@ReliableGateway({ path: '/ws' })
class ValidatedGateway {
  @SubscribeMessage('create')
  create(@MessageBody() dto: CreateDto) {
    count('create');
    return { isInstance: dto instanceof CreateDto, constructor: dto?.constructor?.name, keys: Object.keys(dto), dto };
  }

  @SubscribeMessage('article')
  article(@MessageBody() dto: ArticleDto) {
    count('article');
    return {
      ok: true,
      isInstance: dto instanceof ArticleDto,
      authorIsInstance: dto.author instanceof AuthorDto,
      tagsAreInstances: (dto.tags ?? []).every((tag) => tag instanceof TagDto),
    };
  }

  @SubscribeMessage('text')
  text(@MessageBody() text: string) {
    count('text');
    return { text, type: typeof text };
  }

  @SubscribeMessage('text-prop')
  textProp(@MessageBody('text') text: string) {
    count('text-prop');
    return { text };
  }

  @SubscribeMessage('piped')
  @UsePipes(new ValidationPipe())
  piped(@MessageBody() dto: PipeDto) {
    count('piped');
    return { isInstance: dto instanceof PipeDto, dto };
  }
}

describe('validation (e2e)', () => {
  const open: TestClient[] = [];
  const connect = async (t: TestApp): Promise<TestClient> => {
    const client = await TestClient.ready(t.wsUrl('/ws'));
    open.push(client);
    return client;
  };
  beforeEach(() => {
    for (const key of Object.keys(calls)) delete calls[key];
  });
  afterEach(() => {
    for (const client of open.splice(0)) client.terminate();
  });

  describe('default options (whitelist, forbidNonWhitelisted, forbidUnknownValues)', () => {
    let t: TestApp;
    let c: TestClient;
    let nextId = 1;
    // generous limit: this suite sends many messages on purpose, rate limiting is not under test
    beforeAll(async () => {
      t = await startApp({ rateLimit: { points: 100_000, durationMs: 1000, maxViolations: 1000 } }, [ValidatedGateway]);
    });
    afterAll(() => t.close());
    beforeEach(async () => {
      c = await connect(t);
    });

    const expectFailure = async (event: string, data: unknown) => {
      const id = nextId++;
      const frame = await c.request(event, data, id);
      expect(frame.event).toBe('$error');
      expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.any(String), ref: id });
      expect(Array.isArray(frame.data.details)).toBe(true);
      for (const detail of frame.data.details) {
        expect(Object.keys(detail).sort()).toEqual(['constraints', 'property']);
        expect(typeof detail.property).toBe('string');
        expect(Object.keys(detail.constraints).length).toBeGreaterThan(0);
      }
      return frame.data.details as Array<{ property: string; constraints: Record<string, string> }>;
    };

    it('a valid DTO reaches the handler as an INSTANCE of the DTO class', async () => {
      const frame = await c.request('create', { text: 'hello', count: 3 }, 1);
      expect(frame).toEqual({
        event: 'create',
        data: { isInstance: true, constructor: 'CreateDto', keys: ['text', 'count'], dto: { text: 'hello', count: 3 } },
        ref: 1,
      });
      expect(calls.create).toBe(1);
    });

    it('missing field → VALIDATION_FAILED with details for that property; the handler does not run', async () => {
      const details = await expectFailure('create', { text: 'hello' });
      expect(details).toEqual([{ property: 'count', constraints: expect.objectContaining({ isInt: expect.any(String) }) }]);
      expect(calls.create).toBeUndefined();
    });

    it('wrong type → VALIDATION_FAILED naming the property and the broken constraint', async () => {
      const details = await expectFailure('create', { text: 42, count: 1 });
      expect(details).toEqual([{ property: 'text', constraints: expect.objectContaining({ isString: expect.any(String) }) }]);
      expect(calls.create).toBeUndefined();
    });

    it('extra field (forbidNonWhitelisted by default) → VALIDATION_FAILED', async () => {
      const details = await expectFailure('create', { text: 'a', count: 1, admin: true });
      expect(details).toEqual([{ property: 'admin', constraints: { whitelistValidation: expect.stringContaining('admin') } }]);
      expect(calls.create).toBeUndefined();
    });

    it('a non-object body for a DTO → VALIDATION_FAILED', async () => {
      for (const data of [null, 'text', 5, [1, 2], true]) await expectFailure('create', data);
      const id = nextId++;
      c.send({ event: 'create', id }); // no data at all
      const frame = await c.next((f) => refOf(f) === id);
      expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED', ref: id });
      expect(calls.create).toBeUndefined();
    });

    it('nested DTO: the error property is a dotted path like author.name', async () => {
      const details = await expectFailure('article', { title: 't', author: { name: '' } });
      expect(details).toEqual([{ property: 'author.name', constraints: { isNotEmpty: expect.any(String) } }]);
      const extra = await expectFailure('article', { title: 't', author: { name: 'x', role: 'admin' } });
      expect(extra).toEqual([{ property: 'author.role', constraints: { whitelistValidation: expect.any(String) } }]);
      expect(calls.article).toBeUndefined();
    });

    it('array of nested DTOs: the error property is a path like tags.1.label', async () => {
      const details = await expectFailure('article', {
        title: 't',
        author: { name: 'a' },
        tags: [{ label: 'ok' }, { label: 'much-too-long-label' }, { label: 'fine' }],
      });
      expect(details).toEqual([{ property: 'tags.1.label', constraints: { maxLength: expect.any(String) } }]);
      expect(calls.article).toBeUndefined();
    });

    it('valid nested DTOs are instances all the way down', async () => {
      const frame = await c.request('article', { title: 't', author: { name: 'a' }, tags: [{ label: 'x' }, { label: 'y' }] }, 'valid');
      expect(frame).toEqual({
        event: 'article',
        data: { ok: true, isInstance: true, authorIsInstance: true, tagsAreInstances: true },
        ref: 'valid',
      });
      expect(calls.article).toBe(1);
    });

    it('__proto__ / constructor keys in a payload neither pass validation nor pollute prototypes', async () => {
      const id = nextId++;
      c.send(`{"event":"create","id":${id},"data":{"text":"a","count":1,"__proto__":{"polluted":true}}}`);
      const frame = await c.next((f) => refOf(f) === id);
      expect(['$error', 'create']).toContain(frame.event);
      if (frame.event === '$error') expect(frame.data.code).toBe('VALIDATION_FAILED');
      else expect(frame.data.dto).toEqual({ text: 'a', count: 1 });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((CreateDto.prototype as unknown as Record<string, unknown>).polluted).toBeUndefined();
      const id2 = nextId++;
      c.send(`{"event":"create","id":${id2},"data":{"text":"a","count":1,"constructor":{"prototype":{"polluted":true}}}}`);
      const frame2 = await c.next((f) => refOf(f) === id2);
      // class-transformer skips such keys: rejected as non-whitelisted or silently dropped, never copied
      if (frame2.event === '$error') expect(frame2.data).toMatchObject({ code: 'VALIDATION_FAILED', ref: id2 });
      else expect(frame2.data.dto).toEqual({ text: 'a', count: 1 });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('a DTO body of more than 1,000 values → VALIDATION_FAILED (maxValues) before class-validator walks it', async () => {
      // 1 + 2 properties + 997 unknown ones: 1,000 values, so class-validator runs and counts 997 problems
      const data: Record<string, unknown> = { text: 'x', count: 1 };
      for (let k = 0; k < 997; k++) data[`u${k}`] = k;
      const walked = await c.request('create', data, nextId++);
      expect(walked.data.message).toBe('Validation failed (997 problems, the first 20 in details)');
      data.u997 = 997;
      const id = nextId++;
      expect(await c.request('create', data, id)).toEqual({
        event: '$error',
        data: {
          code: 'VALIDATION_FAILED',
          message: 'Validation failed',
          details: [{ property: 'data', constraints: { maxValues: 'data must hold at most 1000 values' } }],
          ref: id,
        },
      });
    });

    it('a 64 KiB frame of 20,000 nested items is refused the same way; the connection stays open', async () => {
      const tags = Array.from({ length: 20_000 }, () => ({}));
      const id = nextId++;
      const frame = await c.request('article', { title: 't', author: { name: 'a' }, tags }, id);
      expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ property: 'data', constraints: { maxValues: expect.any(String) } }], ref: id });
      expect(calls.article).toBeUndefined();
      expect((await c.request('article', { title: 't', author: { name: 'a' }, tags: [{ label: 'x' }] }, nextId++)).data).toMatchObject({ ok: true });
    });

    it('the connection stays open after failures, and the next valid message is handled', async () => {
      await expectFailure('create', {});
      await expectFailure('article', { title: 1 });
      expect(c.raw.readyState).toBe(c.raw.OPEN);
      expect((await c.request('create', { text: 'x', count: 0 }, 'after')).data.isInstance).toBe(true);
    });

    it('@MessageBody() text: string with a number → VALIDATION_FAILED with property "data"', async () => {
      const details = await expectFailure('text', 123);
      expect(details).toEqual([{ property: 'data', constraints: { isString: expect.any(String) } }]);
      expect(calls.text).toBeUndefined();
      expect((await c.request('text', 'hi', 'ok')).data).toEqual({ text: 'hi', type: 'string' });
    });

    it('@MessageBody("text") reads (and checks) that property of the payload', async () => {
      expect((await c.request('text-prop', { text: 'hi', other: 1 }, 'p1')).data).toEqual({ text: 'hi' });
      const details = await expectFailure('text-prop', { text: 7 });
      expect(details).toEqual([{ property: 'text', constraints: { isString: expect.any(String) } }]);
      const missing = await expectFailure('text-prop', {});
      expect(missing).toEqual([{ property: 'text', constraints: { isString: expect.any(String) } }]);
      expect(calls['text-prop']).toBe(1);
    });

    it("Nest's own @UsePipes(new ValidationPipe()) on a handler also answers VALIDATION_FAILED with details", async () => {
      const ok = await c.request('piped', { text: 'a', n: 1 }, 'ok');
      expect(ok).toEqual({ event: 'piped', data: { isInstance: true, dto: { text: 'a', n: 1 } }, ref: 'ok' });
      const details = await expectFailure('piped', { text: 'a', n: 11 });
      expect(details.map((d) => d.property)).toEqual(['n']);
      expect(calls.piped).toBe(1);
    });

    describe('property: random JSON payloads', () => {
      it('every message with an id gets exactly one answer: a reply or VALIDATION_FAILED, never INTERNAL', async () => {
        const tag = fc.record({ label: fc.oneof(fc.string({ maxLength: 15 }), fc.jsonValue()) }, { requiredKeys: [] });
        const nearlyValid = fc.record(
          {
            title: fc.oneof(fc.string(), fc.jsonValue()),
            author: fc.oneof(fc.record({ name: fc.oneof(fc.string(), fc.jsonValue()) }, { requiredKeys: [] }), fc.jsonValue()),
            tags: fc.oneof(fc.array(tag, { maxLength: 7 }), fc.jsonValue()),
            extra: fc.jsonValue(),
          },
          { requiredKeys: [] },
        );
        const payload = fc.oneof(fc.jsonValue(), nearlyValid, fc.constant(undefined));
        const event = fc.constantFrom('article', 'create', 'text', 'text-prop');
        const sent: Array<{ id: number; event: string; data: unknown }> = [];

        await fc.assert(
          fc.asyncProperty(event, payload, async (ev, data) => {
            const id = 10_000 + sent.length;
            sent.push({ id, event: ev, data });
            const frame = await c.request(ev, data, id, 5000);
            if (frame.event === '$error') return frame.data.code === 'VALIDATION_FAILED' && Array.isArray(frame.data.details);
            return frame.event === ev && frame.ref === id;
          }),
          { numRuns: 200 },
        );
        // exactly one answer each: request() took the first answer of every id, so a second one
        // would still be recorded; give stragglers a moment to arrive
        await sleep(200);
        const ids = new Set(sent.map((s) => s.id));
        expect(c.frames.filter((f) => ids.has(refOf(f) as number))).toEqual([]);
        expect(c.frames.filter((f) => f.event === '$error')).toEqual([]);
        // the server is still up and serving
        expect(c.raw.readyState).toBe(c.raw.OPEN);
        expect((await c.request('create', { text: 'x', count: 1 }, 'alive')).data.isInstance).toBe(true);
        const fresh = await connect(t);
        expect((await fresh.request('create', { text: 'y', count: 2 }, 'alive2')).data.isInstance).toBe(true);
      });
    });
  });

  describe('validation: false', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ validation: false }, [ValidatedGateway]);
    });
    afterAll(() => t.close());

    it('disables validation: the handler gets the raw payload', async () => {
      const c = await connect(t);
      const frame = await c.request('create', { text: 42, extra: true }, 1);
      expect(frame).toEqual({
        event: 'create',
        data: { isInstance: false, constructor: 'Object', keys: ['text', 'extra'], dto: { text: 42, extra: true } },
        ref: 1,
      });
      expect((await c.request('text', 123, 2)).data).toEqual({ text: 123, type: 'number' });
      expect(calls).toMatchObject({ create: 1, text: 1 });
    });

    it("Nest's ValidationPipe still works on its own → VALIDATION_FAILED with details", async () => {
      const c = await connect(t);
      const frame = await c.request('piped', { text: 5, n: 1 }, 3);
      expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED', ref: 3 });
      expect(frame.data.details).toEqual([{ property: 'text', constraints: expect.any(Object) }]);
      expect(calls.piped).toBeUndefined();
      expect((await c.request('piped', { text: 'a', n: 2 }, 4)).event).toBe('piped');
    });
  });

  describe('validation: { maxValues: 10_000 }', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ validation: { maxValues: 10_000 } }, [ValidatedGateway]);
    });
    afterAll(() => t.close());

    it('a payload failing in thousands of places gets a small answer: 20 details, texts cut short, the count in the message', async () => {
      const data: Record<string, unknown> = { text: 'x', count: 1, ['k'.repeat(300)]: 1 };
      for (let k = 0; k < 5000; k++) data[`u${k}`] = k; // 5,001 properties that should not exist
      const c = await connect(t);
      const frame = await c.request('create', data, 1);
      expect(frame.data).toMatchObject({ code: 'VALIDATION_FAILED', message: 'Validation failed (5001 problems, the first 20 in details)', ref: 1 });
      expect(frame.data.details).toHaveLength(20);
      expect(frame.data.details[0].property).toBe(`${'k'.repeat(200)}…`);
      expect(JSON.stringify(frame).length).toBeLessThan(20 * 500);
      expect(calls.create).toBeUndefined();
      expect(c.raw.readyState).toBe(c.raw.OPEN);
    });
  });

  describe('validation: { forbidNonWhitelisted: false }', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp({ validation: { forbidNonWhitelisted: false } }, [ValidatedGateway]);
    });
    afterAll(() => t.close());

    it('extra fields pass, stripped by whitelist: the handler does not see them', async () => {
      const c = await connect(t);
      const frame = await c.request('create', { text: 'a', count: 1, admin: true, nested: { x: 1 } }, 1);
      expect(frame).toEqual({
        event: 'create',
        data: { isInstance: true, constructor: 'CreateDto', keys: ['text', 'count'], dto: { text: 'a', count: 1 } },
        ref: 1,
      });
      // other rules still apply
      expect((await c.request('create', { text: 'a' }, 2)).data).toMatchObject({ code: 'VALIDATION_FAILED', ref: 2 });
      expect(calls.create).toBe(1);
    });
  });
});
