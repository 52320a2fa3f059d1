'use strict';
// A Nest app written in CommonJS, as a user of a CommonJS Nest 11 or 12 project would write it:
// `require('nestjs-reliable-ws')` loads the (ESM) package through Node's require(esm). Plain
// JavaScript, so the decorators are applied with Reflect.decorate and the parameter types that
// TypeScript would emit (design:paramtypes) are given by hand.
// test/commonjs.e2e-spec.ts copies this file into a throwaway app directory whose node_modules
// holds the built package, and talks to it with a ws client.
// Prints "LISTENING <port> <version of @nestjs/core>" on stdout once it listens.
require('reflect-metadata');
const { Injectable, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { ConnectedSocket, MessageBody, SubscribeMessage } = require('@nestjs/websockets');
const { IsString, MaxLength } = require('class-validator');
const { BroadcastService, ReliableGateway, ReliableWsAdapter, ReliableWsModule } = require('nestjs-reliable-ws');

// Never outlive the test by much (unref: does not keep a finished process alive).
setTimeout(() => process.exit(4), 60000).unref();

class SayDto {}
Reflect.decorate([IsString(), MaxLength(20), Reflect.metadata('design:type', String)], SayDto.prototype, 'text', undefined);

class Greeter {
  greet(name) {
    return `hello ${name}`;
  }
}
Reflect.decorate([Injectable()], Greeter);

class ChatGateway {
  constructor(greeter, broadcast) {
    this.greeter = greeter;
    this.broadcast = broadcast;
  }

  async say(body, socket) {
    await this.broadcast.toAll('said', { text: body.text, by: socket.principal.id });
    return { greeting: this.greeter.greet(socket.principal.name), text: body.text };
  }
}
Reflect.decorate(
  [
    SubscribeMessage('say'),
    Reflect.metadata('design:paramtypes', [SayDto, Object]),
    (target, key) => {
      MessageBody()(target, key, 0);
      ConnectedSocket()(target, key, 1);
    },
  ],
  ChatGateway.prototype,
  'say',
  Object.getOwnPropertyDescriptor(ChatGateway.prototype, 'say'),
);
Reflect.decorate([ReliableGateway({ path: '/chat' }), Reflect.metadata('design:paramtypes', [Greeter, BroadcastService])], ChatGateway);

class AppModule {}
Reflect.decorate(
  [
    Module({
      imports: [
        ReliableWsModule.forRoot({
          auth: { verify: (token) => (token === 'let-me-in' ? { id: 'u1', name: 'Ada' } : null) },
        }),
      ],
      providers: [Greeter, ChatGateway],
    }),
  ],
  AppModule,
);

async function main() {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  app.enableShutdownHooks(['SIGTERM']);
  await app.listen(0, '127.0.0.1');
  const { version } = require('@nestjs/core/package.json');
  process.stdout.write(`LISTENING ${app.getHttpServer().address().port} ${version}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
