// A tiny Nest app on the compiled library, for the SIGTERM test. Plain ESM JavaScript, so the
// decorators are applied by hand.
//   RWS_LIB           absolute path of the compiled lib/index.js (required)
//   RWS_OPTIONS       JSON of ReliableWsOptions (default {})
//   RWS_PROCESS_EXIT  '1' to enable shutdown hooks with { useProcessExit: true }
//   RWS_VERIFY        'hang': auth.verify (merged into RWS_OPTIONS.auth) never answers;
//                     'hang-refresh': it never answers for tokens starting with "hang", others are the principal { id: token }
// SIGUSR2 calls app.close() and prints "CLOSED" once it resolved; the process is left to exit on its own.
// Prints "LISTENING <port>" on stdout once it listens.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SubscribeMessage } from '@nestjs/websockets';
import { pathToFileURL } from 'node:url';

// Never outlive a hung shutdown by much (unref: does not keep a finished process alive).
setTimeout(() => {
  console.error('sigterm-app: still alive after 60 s, giving up');
  process.exit(4);
}, 60000).unref();

const { ReliableGateway, ReliableWsAdapter, ReliableWsModule } = await import(pathToFileURL(process.env.RWS_LIB).href);
const options = JSON.parse(process.env.RWS_OPTIONS ?? '{}');
if (process.env.RWS_VERIFY === 'hang') options.auth = { ...options.auth, verify: () => new Promise(() => undefined) };
if (process.env.RWS_VERIFY === 'hang-refresh') {
  options.auth = { ...options.auth, verify: (token) => (token.startsWith('hang') ? new Promise(() => undefined) : { id: token }) };
}

class EchoGateway {
  echo(_socket, data) {
    return data;
  }
}
SubscribeMessage('echo')(EchoGateway.prototype, 'echo', Object.getOwnPropertyDescriptor(EchoGateway.prototype, 'echo'));
ReliableGateway({ path: '/ws' })(EchoGateway);

class AppModule {}
Module({ imports: [ReliableWsModule.forRoot(options)], providers: [EchoGateway] })(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new ReliableWsAdapter(app));
app.enableShutdownHooks(['SIGTERM'], process.env.RWS_PROCESS_EXIT === '1' ? { useProcessExit: true } : {});
process.once('SIGUSR2', () => void app.close().then(() => process.stdout.write('CLOSED\n')));
await app.listen(0, '127.0.0.1');
process.stdout.write(`LISTENING ${app.getHttpServer().address().port}\n`);
