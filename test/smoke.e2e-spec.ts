import { MessageBody, SubscribeMessage, ConnectedSocket } from '@nestjs/websockets';
import { BadRequestException } from '@nestjs/common';
import { ReliableGateway, type ReliableSocket } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
import { TestClient } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
  @SubscribeMessage('nothing')
  nothing() {}
  @SubscribeMessage('bad')
  bad() {
    throw new BadRequestException('nope');
  }
  @SubscribeMessage('boom')
  async boom() {
    throw new Error('secret internals');
  }
  @SubscribeMessage('push')
  push(@ConnectedSocket() socket: ReliableSocket) {
    socket.send('pushed', 1);
    socket.send('pushed', 2);
  }
}

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => { t = await startApp({}, [EchoGateway]); });
  afterAll(() => t.close());

  it('works', async () => {
    const c = await TestClient.ready(t.wsUrl('/ws'));
    expect((await c.request('echo', { a: 1 }, 1))).toEqual({ event: 'echo', data: { a: 1 }, ref: 1 });
    expect((await c.request('nothing', null, 2))).toEqual({ event: '$ack', data: { ref: 2 } });
    expect((await c.request('bad', null, 3)).data).toMatchObject({ code: 'BAD_MESSAGE', ref: 3 });
    expect((await c.request('boom', null, 4)).data).toEqual({ code: 'INTERNAL', message: 'Internal error', ref: 4 });
    expect((await c.request('nope', null, 5)).data).toMatchObject({ code: 'UNKNOWN_EVENT', ref: 5 });
    c.send('{bad');
    expect((await c.next()).data.code).toBe('BAD_MESSAGE');
    c.send({ event: 'push', id: 6 });
    expect(await c.next((f) => f.event === 'pushed')).toEqual({ event: 'pushed', data: 1, seq: 1 });
    expect(await c.next((f) => f.event === 'pushed')).toEqual({ event: 'pushed', data: 2, seq: 2 });
    c.send({ event: '$ping', data: 'x' });
    expect(await c.next((f) => f.event === '$pong')).toEqual({ event: '$pong', data: 'x' });
    const h = await fetch(t.httpUrl('/health/ws'));
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok', connections: 1 });
    c.close();
  });
});
