// THROWAWAY tooling check (to be deleted): decorator metadata + ESM imports under ts-jest.
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { WebSocket, WebSocketServer } from 'ws';
import { jest } from '@jest/globals';

@Injectable()
class Dep {
  value(): number {
    return 42;
  }
}

@Injectable()
class Consumer {
  constructor(private readonly dep: Dep) {}
  get(): number {
    return this.dep.value();
  }
}

describe('tooling check', () => {
  it('emits design:paramtypes metadata', () => {
    expect(Reflect.getMetadata('design:paramtypes', Consumer)).toEqual([Dep]);
  });

  it('resolves DI through @nestjs/testing', async () => {
    const moduleRef = await Test.createTestingModule({ providers: [Dep, Consumer] }).compile();
    expect(moduleRef.get(Consumer).get()).toBe(42);
    await moduleRef.close();
  });

  it('imports ws (ESM named exports) and jest from @jest/globals', async () => {
    expect(typeof WebSocket).toBe('function');
    const fn = jest.fn();
    const wss = new WebSocketServer({ port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const port = (wss.address() as { port: number }).port;
    wss.on('connection', (s) => s.send('hi'));
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const msg = await new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    fn(msg);
    expect(fn).toHaveBeenCalledWith('hi');
    ws.close();
    await new Promise<void>((r) => wss.close(() => r()));
  });
});
