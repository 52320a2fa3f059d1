import { UseFilters } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { connect, createServer, type Socket } from 'node:net';
import { WsErrorFilter } from '../lib/index.js';
import { createApp, startApp, type TestApp } from './support/app.js';
import { within } from './support/wait.js';
import { TestClient, upgradeStatus } from './support/ws-client.js';

/** A port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const GATEWAY_PORT = await freePort();

@WebSocketGateway(GATEWAY_PORT, { path: '/side' })
@UseFilters(WsErrorFilter)
class SidePortGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return data;
  }
}

describe('a gateway on a port of its own', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({}, [SidePortGateway]);
  });
  afterAll(() => t.close());

  it('gets its own HTTP server with the same handshake rules and protocol', async () => {
    const url = `ws://127.0.0.1:${GATEWAY_PORT}/side`;
    const client = await TestClient.ready(url);
    expect(await client.request('echo', { a: 1 }, 1)).toEqual({ event: 'echo', data: { a: 1 }, ref: 1 });
    expect(await upgradeStatus(url, { origin: 'https://elsewhere.example' })).toBe(403);
    expect(await upgradeStatus(`ws://127.0.0.1:${GATEWAY_PORT}/other`)).toBe(404);
    client.close();
  });

  it('is not served on the application port', async () => {
    expect(await upgradeStatus(t.wsUrl('/side'))).not.toBe(101);
  });
});

describe('plain HTTP on a gateway port of its own', () => {
  it('is answered 426, and connections that never finish a request do not hold app.close()', async () => {
    const port = await freePort();
    @WebSocketGateway(port, { path: '/side' })
    @UseFilters(WsErrorFilter)
    class OwnPortGateway {}
    const app = await startApp({}, [OwnPortGateway]);
    const sockets: Socket[] = [];
    try {
      const response = await fetch(`http://127.0.0.1:${port}/side`);
      expect(response.status).toBe(426);
      // one connection that says nothing, one that starts a request and never ends it
      for (const greeting of ['', 'GET /side HTTP/1.1\r\nHost: x\r\n']) {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        await new Promise((resolve) => socket.once('connect', resolve));
        if (greeting) socket.write(greeting);
        sockets.push(socket);
      }
      const closedAt = Date.now();
      await within(app.close(), 5000, 'app.close() with idle HTTP connections on the gateway port');
      expect(Date.now() - closedAt).toBeLessThan(3000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await app.close();
    }
  });
});

describe('a gateway port already in use', () => {
  it('fails app.listen() with an error naming the port and the gateway; nothing crashes, app.close() works', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const { port } = taken.address() as { port: number };
    @WebSocketGateway(port, { path: '/busy' })
    @UseFilters(WsErrorFilter)
    class BusyPortGateway {}
    const app = await createApp({}, [BusyPortGateway]);
    try {
      await expect(app.listen(0, '127.0.0.1')).rejects.toThrow(
        `the WebSocket gateway at /busy cannot listen on port ${port}: listen EADDRINUSE`,
      );
    } finally {
      await within(app.close(), 5000, 'app.close() after a failed listen');
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
