// A Nest app on the compiled library, for the hostile-input process test. Plain ESM JavaScript,
// so the decorators are applied by hand.
//   RWS_LIB             absolute path of the compiled lib/index.js (required)
//   RWS_AUTH_TIMEOUT_MS auth.timeoutMs (default 1000)
//   RWS_SLOW_VERIFY_MS  how long `verify` takes for the token "slow" (default 3000)
// The gateway and the tokens: see hostile-gateway.mjs.
// GET /probe answers { rss, heapUsed, prototypeChanges, inherited }.
// Prints "LISTENING <port>" on stdout once it listens.
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { pathToFileURL } from 'node:url';
import { hostileGateway, hostileVerify } from './hostile-gateway.mjs';

// Never outlive a test that forgot this process by much (unref: does not keep it alive).
setTimeout(() => {
  console.error('hostile-app: still alive after 10 minutes, giving up');
  process.exit(4);
}, 600000).unref();

const PROBE_KEYS = ['polluted', 'isAdmin'];
const PROTOTYPES = { Object: Object.prototype, Array: Array.prototype, Function: Function.prototype };

function prototypeSnapshot() {
  const snapshot = new Map();
  for (const [owner, prototype] of Object.entries(PROTOTYPES)) {
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(prototype, name);
      snapshot.set(`${owner}.${name}`, descriptor.value ?? descriptor.get);
    }
    snapshot.set(`${owner}.[[Prototype]]`, Object.getPrototypeOf(prototype));
  }
  return snapshot;
}

const prototypesAtStart = prototypeSnapshot();

function prototypeChanges() {
  const now = prototypeSnapshot();
  const changed = [];
  for (const name of new Set([...prototypesAtStart.keys(), ...now.keys()])) {
    if (prototypesAtStart.get(name) !== now.get(name) || prototypesAtStart.has(name) !== now.has(name)) changed.push(name);
  }
  return changed;
}

const lib = await import(pathToFileURL(process.env.RWS_LIB).href);
const { ReliableWsAdapter, ReliableWsModule } = lib;
const HostileGateway = hostileGateway(lib, 'room');
const verify = hostileVerify(Number(process.env.RWS_SLOW_VERIFY_MS ?? 3000));

class ProbeController {
  probe() {
    const { rss, heapUsed } = process.memoryUsage();
    const fresh = [{}, [], () => 0];
    const inherited = PROBE_KEYS.filter((key) => fresh.some((value) => value[key] !== undefined));
    return { rss, heapUsed, prototypeChanges: prototypeChanges(), inherited };
  }
}
Get('probe')(ProbeController.prototype, 'probe', Object.getOwnPropertyDescriptor(ProbeController.prototype, 'probe'));
Controller()(ProbeController);

const options = {
  auth: { verify, timeoutMs: Number(process.env.RWS_AUTH_TIMEOUT_MS ?? 1000) },
  rateLimit: false,
  maxConnectionsPerIp: 5000,
};

class AppModule {}
Module({ imports: [ReliableWsModule.forRoot(options)], providers: [HostileGateway], controllers: [ProbeController] })(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new ReliableWsAdapter(app));
await app.listen(0, '127.0.0.1');
process.stdout.write(`LISTENING ${app.getHttpServer().address().port}\n`);
