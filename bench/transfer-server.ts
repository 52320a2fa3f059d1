/**
 * The server child of transfer.bench.ts, in one of two modes (the first argument; the second is
 * the payload's size in bytes):
 *
 * - `reliable`: a gateway on the library, `maxTransferBytes` raised to the payload; `upload`
 *   answers the size of the Buffer it got, `download` streams the payload (`socket.stream`).
 * - `raw`: a plain `ws` server with `maxPayload` raised to the payload; a binary message is
 *   answered with its size as text, the text `download` with the payload as one frame.
 *
 * Besides `listening` and `exit` it answers `delay-start` (resets an event-loop delay histogram)
 * and `delay-stop` (its p99 and max in ms since the reset).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import { ReliableGateway, ReliableWsAdapter, ReliableWsModule, type ReliableSocket } from '../lib/index.js';

const TRANSFER_BYTES = Number(process.argv[3]);

const payload = randomBytes(TRANSFER_BYTES);
const delay = monitorEventLoopDelay({ resolution: 1 });

@ReliableGateway({ path: '/ws' })
class TransferBenchGateway {
  @SubscribeMessage('upload')
  upload(@MessageBody() data: Buffer): number {
    return data.length;
  }

  @SubscribeMessage('download')
  async download(@ConnectedSocket() socket: ReliableSocket): Promise<void> {
    await socket.stream('file', payload);
  }
}

@Module({
  imports: [ReliableWsModule.forRoot({ allowedOrigins: '*', maxTransferBytes: TRANSFER_BYTES })],
  providers: [TransferBenchGateway],
})
class TransferBenchModule {}

/** Starts the server; returns its port and how to stop it. */
async function startReliable(): Promise<{ port: number; close: () => Promise<void> }> {
  const app = await NestFactory.create(TransferBenchModule, { logger: ['error', 'warn'] });
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
  await app.listen(0, '127.0.0.1');
  return { port: (app.getHttpServer().address() as AddressInfo).port, close: () => app.close() };
}

async function startRaw(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: TRANSFER_BYTES });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (ws) => {
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) ws.send(String(data.length));
      else if (String(data) === 'download') ws.send(payload);
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const server = process.argv[2] === 'raw' ? await startRaw() : await startReliable();
process.on('message', async (message: { type: string }) => {
  if (message.type === 'delay-start') {
    delay.reset();
    delay.enable();
    process.send?.({ type: message.type });
  } else if (message.type === 'delay-stop') {
    delay.disable();
    process.send?.({ type: message.type, p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 });
  } else if (message.type === 'exit') {
    await server.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'listening', port: server.port });
