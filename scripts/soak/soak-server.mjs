// The server of the soak test: a Nest app on the built package (dist/), in a process of its own.
// Plain ESM JavaScript, so the decorators are applied by hand.
//   SOAK_LIB           path of the built lib/index.js (default: dist/lib/index.js of this repo)
//   SOAK_HEARTBEAT_MS  heartbeat.intervalMs and timeoutMs (default 5000)
//   SOAK_TICK_MS       how often the room "active" gets a push (default 1000)
// The gateway and the tokens: test/support/hostile-gateway.mjs ("slow" settles after 4 s; join
// enters the room "active"). GET /probe answers { rss, heapUsed }; GET /probe/gc
// collects garbage first (start it with --expose-gc).
// Prints "LISTENING <port>" on stdout once it listens.
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hostileGateway, hostileVerify } from '../../test/support/hostile-gateway.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const libPath = process.env.SOAK_LIB ?? resolve(ROOT, 'dist/lib/index.js');
const lib = await import(pathToFileURL(libPath).href);
const { BroadcastService, ReliableWsAdapter, ReliableWsModule } = lib;

const HEARTBEAT_MS = Number(process.env.SOAK_HEARTBEAT_MS ?? 5000);
const TICK_MS = Number(process.env.SOAK_TICK_MS ?? 1000);
const ROOM = 'active';

const verify = hostileVerify(4000);
const SoakGateway = hostileGateway(lib, ROOM);

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
