import 'reflect-metadata';
import { Module, UseInterceptors, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { ReliableGateway, WsRateLimitInterceptor, WsValidationInterceptor } from '../lib/index.js';
import { startApp } from './support/app.js';
import { TestClient } from './support/ws-client.js';

const HINT = 'add ReliableWsModule.forRoot() (or forRootAsync()) to the imports of your root module';

@ReliableGateway({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

/** The module's interceptors on a plain gateway, each on its own. */
@WebSocketGateway({ path: '/rl' })
@UseInterceptors(WsRateLimitInterceptor)
class RateLimitedGateway {}

@WebSocketGateway({ path: '/val' })
@UseInterceptors(WsValidationInterceptor)
class ValidatedGateway {}

function appModule(providers: Type[]): Type {
  @Module({ providers })
  class AppModule {}
  return AppModule;
}

describe('a @ReliableGateway without ReliableWsModule fails at startup with the line to add', () => {
  it('NestFactory.create() rejects naming ReliableWsModule.forRoot(), not an unresolved WsAuthGuard dependency', async () => {
    const creating = NestFactory.create(appModule([EchoGateway]), { logger: false, abortOnError: false });
    await expect(creating).rejects.toThrow(`WsAuthGuard needs ReliableWsModule: ${HINT}`);
    await expect(creating).rejects.not.toThrow(/can't resolve dependencies/i);
  });

  it.each([
    ['WsRateLimitInterceptor', RateLimitedGateway],
    ['WsValidationInterceptor', ValidatedGateway],
  ])('%s on a plain gateway without the module gives the same message', async (name, gateway) => {
    const creating = NestFactory.create(appModule([gateway]), { logger: false, abortOnError: false });
    await expect(creating).rejects.toThrow(`${name} needs ReliableWsModule: ${HINT}`);
  });

  it('with ReliableWsModule.forRoot() imported, the same gateway starts and answers', async () => {
    const t = await startApp({}, [EchoGateway]);
    const client = await TestClient.ready(t.wsUrl('/ws'));
    try {
      expect(await client.request('echo', 'hi', 1)).toEqual({ event: 'echo', data: 'hi', ref: 1 });
    } finally {
      client.terminate();
      await t.close();
    }
  });
});
