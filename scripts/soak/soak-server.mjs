// The server of the soak test: a Nest app on the built package (dist/), in a process of its own.
// Plain ESM JavaScript, so the decorators are applied by hand.
//   SOAK_LIB           path of the built lib/index.js (default: dist/lib/index.js of this repo)
//   SOAK_HEARTBEAT_MS  heartbeat.intervalMs and timeoutMs (default 5000)
//   SOAK_TICK_MS       how often the room "active" gets a push (default 1000)
// Tokens "user-<n>" verify to { id }, "hang" never settles, "slow" settles after 4 s, anything
// else is refused. Handlers: echo, join (the room "active"), and circular, bigint, too-deep
// (return values JSON cannot carry). GET /probe answers { rss, heapUsed }; GET /probe/gc
// collects garbage first (start it with --expose-gc).
// Prints "LISTENING <port>" on stdout once it listens.
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const libPath = process.env.SOAK_LIB ?? resolve(ROOT, 'dist/lib/index.js');
const { BroadcastService, ReliableGateway, ReliableWsAdapter, ReliableWsModule } = await import(pathToFileURL(libPath).href);

const HEARTBEAT_MS = Number(process.env.SOAK_HEARTBEAT_MS ?? 5000);
const TICK_MS = Number(process.env.SOAK_TICK_MS ?? 1000);
const ROOM = 'active';

function verify(token) {
  if (token === 'hang') return new Promise(() => undefined);
  if (token === 'slow') return new Promise((done) => setTimeout(() => done({ id: 'slow' }), 4000));
  return /^user-\d+$/.test(token) ? { id: token } : null;
}

function circularValue() {
  const value = { a: 1 };
  value.self = value;
  return value;
}

function deeplyNested(levels) {
  let value = [];
  for (let level = 1; level < levels; level++) value = [value];
  return value;
}

class SoakGateway {
  constructor(broadcast) {
    this.broadcast = broadcast;
  }

  echo(data) {
    return data;
  }

  async join(socket) {
    await this.broadcast.join(socket.id, ROOM);
    return { joined: ROOM };
  }

  circular() {
    return circularValue();
  }

  bigint() {
    return { n: 10n };
  }

  tooDeep() {
    return deeplyNested(100000);
  }
}
const handlers = { echo: 'echo', join: 'join', circular: 'circular', bigint: 'bigint', 'too-deep': 'tooDeep' };
for (const [event, method] of Object.entries(handlers)) {
  SubscribeMessage(event)(SoakGateway.prototype, method, Object.getOwnPropertyDescriptor(SoakGateway.prototype, method));
}
MessageBody()(SoakGateway.prototype, 'echo', 0);
ConnectedSocket()(SoakGateway.prototype, 'join', 0);
Reflect.defineMetadata('design:paramtypes', [BroadcastService], SoakGateway);
ReliableGateway({ path: '/ws' })(SoakGateway);

class ProbeController {
  probe() {
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heapUsed };
  }

  /** The heap right after a full collection (the process runs with --expose-gc). */
  collected() {
    globalThis.gc();
    return this.probe();
  }
}
for (const [path, method] of [['probe', 'probe'], ['probe/gc', 'collected']]) {
  Get(path)(ProbeController.prototype, method, Object.getOwnPropertyDescriptor(ProbeController.prototype, method));
}
Controller()(ProbeController);

const options = {
  auth: { verify, timeoutMs: 2000 },
  heartbeat: { intervalMs: HEARTBEAT_MS, timeoutMs: HEARTBEAT_MS },
  // Every frame reaches the protocol and the handlers: the hostile phase is not cut short by 4029.
  rateLimit: false,
  // Raised for the test: the clients come from a few loopback addresses.
  maxConnectionsPerIp: 5000,
};

class AppModule {}
Module({ imports: [ReliableWsModule.forRoot(options)], providers: [SoakGateway], controllers: [ProbeController] })(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new ReliableWsAdapter(app));
app.enableShutdownHooks();
await app.listen(0, '127.0.0.1');

const broadcast = app.get(BroadcastService);
let tick = 0;
setInterval(() => {
  tick++;
  broadcast.toRoom(ROOM, 'tick', { tick, at: Date.now() }).catch((error) => console.error(`tick ${tick} failed: ${error.message}`));
}, TICK_MS);

process.stdout.write(`LISTENING ${app.getHttpServer().address().port}\n`);
