import { UseFilters } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { createServer } from 'node:net';
import { WsErrorFilter } from '../lib/index.js';
import { startApp, type TestApp } from './support/app.js';
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
