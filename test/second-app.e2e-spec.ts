import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { ReliableGateway } from '../lib/index.js';
import { startApp } from './support/app.js';
import { within } from './support/wait.js';
import { TestClient } from './support/ws-client.js';

@ReliableGateway({ path: '/ws' })
class ReliableEcho {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

@WebSocketGateway({ path: '/stock' })
class StockEcho {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return { event: 'echoed', data };
  }
}

@Module({ providers: [StockEcho] })
class StockModule {}

describe('another WebSocket adapter lives in a second Nest application', () => {
  it('a ReliableWsModule app and an app on the stock WsAdapter run side by side in one process', async () => {
    const reliable = await startApp({}, [ReliableEcho]);
    const stock = await NestFactory.create(StockModule, { logger: false });
    stock.useWebSocketAdapter(new WsAdapter(stock));
    await stock.listen(0, '127.0.0.1');
    const client = await TestClient.ready(reliable.wsUrl('/ws'));
    const { port } = stock.getHttpServer().address() as AddressInfo;
    const raw = new WebSocket(`ws://127.0.0.1:${port}/stock`);
    const opened = new Promise((resolve) => raw.once('open', resolve));
    try {
      expect(await client.request('echo', 'reliable', 1)).toEqual({ event: 'echo', data: 'reliable', ref: 1 });
      await within(opened, 5000, 'the stock gateway to open');
      const answer = within(
        new Promise<string>((resolve) => raw.once('message', (data) => resolve(data.toString()))),
        5000,
        'the stock answer',
      );
      raw.send(JSON.stringify({ event: 'echo', data: 'stock' }));
      expect(JSON.parse(await answer)).toEqual({ event: 'echoed', data: 'stock' }); // no envelope, no $ready: stock Nest
    } finally {
      client.terminate();
      raw.terminate();
      await within(Promise.all([reliable.close(), stock.close()]), 15000, 'closing both apps');
    }
  });
});
