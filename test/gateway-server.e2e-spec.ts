import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketServer } from '@nestjs/websockets';
import { ReliableGateway, ReliableSocket, ReliableWsServer, SessionRegistry } from '../lib/index.js';
import { createApp, startApp, type TestApp } from './support/app.js';
import { sleep, waitUntil, within } from './support/wait.js';
import { TestClient, type Frame } from './support/ws-client.js';

/** The Nest habit: `@WebSocketServer()` and `server.clients.forEach(…)`. */
abstract class ShoutingGateway {
  @WebSocketServer() server!: ReliableWsServer;
  /** What `clients` looked like inside each `handleConnection`. */
  readonly seenAtConnection: Array<{ self: boolean; size: number }> = [];

  handleConnection(socket: ReliableSocket): void {
    this.seenAtConnection.push({ self: this.server.clients.has(socket), size: this.server.clients.size });
  }

  @SubscribeMessage('shout')
  shout(@MessageBody() text: string, @ConnectedSocket() sender: ReliableSocket) {
    let sent = 0;
    this.server.clients.forEach((socket) => {
      socket.send('shouted', text);
      sent++;
    });
    const iterated = [...this.server.clients];
    return {
      sent,
      size: this.server.clients.size,
      iterated: iterated.length,
      allReliable: iterated.every((socket) => socket instanceof ReliableSocket),
      includesSender: this.server.clients.has(sender) && iterated.includes(sender),
      path: this.server.path,
    };
  }
}

@ReliableGateway({ path: '/chat' })
class ChatGateway extends ShoutingGateway {}

@ReliableGateway({ path: '/news' })
class NewsGateway extends ShoutingGateway {}

const pushes = (client: TestClient, event: string): Frame[] => client.frames.filter((frame) => frame.event === event);

describe('@WebSocketServer() under ReliableWsAdapter', () => {
  let t: TestApp;
  const clients: TestClient[] = [];

  beforeEach(async () => {
    t = await within(
      startApp({ heartbeat: { intervalMs: 60000, timeoutMs: 60000 }, rateLimit: false }, [ChatGateway, NewsGateway]),
      15000,
      'starting the app',
    );
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await within(t.close(), 15000, 'app.close()');
  });

  async function connect(path: string): Promise<TestClient> {
    const client = await TestClient.ready(t.wsUrl(path));
    clients.push(client);
    return client;
  }

  it("server.clients iterates the open ReliableSockets of its own gateway only", async () => {
    const [chatA, chatB, news] = [await connect('/chat'), await connect('/chat'), await connect('/news')];
    const chat = t.app.get(ChatGateway);
    const newsGateway = t.app.get(NewsGateway);
    expect(chat.server).toBeInstanceOf(ReliableWsServer);
    expect(chat.server).not.toBe(newsGateway.server);
    // handleConnection already finds its socket among the clients
    expect(chat.seenAtConnection).toEqual([{ self: true, size: 1 }, { self: true, size: 2 }]);
    expect(newsGateway.seenAtConnection).toEqual([{ self: true, size: 1 }]);

    const answer = await chatA.request('shout', 'from chat', 1);
    expect(answer.data).toEqual({ sent: 2, size: 2, iterated: 2, allReliable: true, includesSender: true, path: '/chat' });
    await chatB.next((frame) => frame.event === 'shouted' && frame.data === 'from chat');
    await chatA.next((frame) => frame.event === 'shouted' && frame.data === 'from chat');

    const newsAnswer = await news.request('shout', 'from news', 2);
    expect(newsAnswer.data).toMatchObject({ sent: 1, size: 1, path: '/news' });
    await news.next((frame) => frame.event === 'shouted' && frame.data === 'from news');
    // the chat push was written before the chat answer, so it would have arrived by now
    expect(pushes(news, 'shouted')).toEqual([]);
    await sleep(50);
    expect(pushes(chatA, 'shouted')).toEqual([]);
    expect(pushes(chatB, 'shouted')).toEqual([]);
  });

  it('a closed connection leaves clients, and a session waiting for its resume is not in it', async () => {
    const chat = t.app.get(ChatGateway);
    const plain = await connect('/chat');
    // an rws.v1 client: its session outlives the dropped connection (detached, resumable)
    const resumable = new TestClient(t.wsUrl('/chat'), 'rws.v1');
    clients.push(resumable);
    await resumable.open();
    resumable.send({ event: '$hello', data: {} });
    const ready = await resumable.next((frame) => frame.event === '$ready');
    expect(ready.data.resumeToken).toEqual(expect.any(String));
    expect(chat.server.clients.size).toBe(2);

    resumable.terminate();
    await waitUntil(() => chat.server.clients.size === 1, { timeoutMs: 3000, what: 'the dropped connection to leave clients' });
    expect(t.app.get(SessionRegistry).detachedCount).toBe(1); // the session lives on, outside clients
    const answer = await plain.request('shout', 'after the drop', 1);
    expect(answer.data).toMatchObject({ sent: 1, size: 1 });

    plain.close();
    await plain.closed();
    await waitUntil(() => chat.server.clients.size === 0, { timeoutMs: 3000, what: 'the closed connection to leave clients' });
    expect([...chat.server.clients]).toEqual([]);
  });

  it("a session belongs to the app, not to a path: it resumes on another gateway's path, among that gateway's clients", async () => {
    const first = new TestClient(t.wsUrl('/chat'), 'rws.v1');
    clients.push(first);
    await first.open();
    first.send({ event: '$hello', data: {} });
    const { sessionId, resumeToken } = (await first.next((frame) => frame.event === '$ready')).data;
    first.terminate();
    await waitUntil(() => t.app.get(SessionRegistry).detachedCount === 1, { timeoutMs: 3000, what: 'the session to wait for its resume' });
    const second = new TestClient(t.wsUrl('/news'), 'rws.v1');
    clients.push(second);
    await second.open();
    second.send({ event: '$hello', data: { resume: { sessionId, resumeToken, lastSeq: 0 } } });
    expect((await second.next((frame) => frame.event === '$ready')).data).toMatchObject({ sessionId, resumed: true, missed: false });
    expect(t.app.get(NewsGateway).server.clients.size).toBe(1);
    expect(t.app.get(ChatGateway).server.clients.size).toBe(0);
  });
});

@ReliableGateway({ path: '/both' })
class FirstOnPath {
  @SubscribeMessage('first')
  first(@MessageBody() data: unknown) {
    return { first: data };
  }
}

@ReliableGateway({ path: '/both' })
class SecondOnPath {
  @SubscribeMessage('second')
  second(@MessageBody() data: unknown, @ConnectedSocket() socket: ReliableSocket) {
    return { second: data, own: socket instanceof ReliableSocket };
  }
}

@ReliableGateway({ path: '/both/' })
class AlsoFirstOnPath {
  @SubscribeMessage('first')
  again() {
    return 'again';
  }
}

describe('two gateways on one path', () => {
  it("share its server: each connection reaches both gateways' handlers", async () => {
    for (const gateways of [
      [FirstOnPath, SecondOnPath],
      [SecondOnPath, FirstOnPath],
    ]) {
      const t = await startApp({ rateLimit: false }, gateways);
      const client = await TestClient.ready(t.wsUrl('/both'));
      try {
        expect(await client.request('first', 1, 1)).toEqual({ event: 'first', data: { first: 1 }, ref: 1 });
        expect(await client.request('second', 2, 2)).toEqual({ event: 'second', data: { second: 2, own: true }, ref: 2 });
      } finally {
        client.terminate();
        await within(t.close(), 15000, 'app.close()');
      }
    }
  });

  it('handling the same event fails app.listen(), naming the event, the path and both handlers', async () => {
    const app = await createApp({}, [FirstOnPath, AlsoFirstOnPath]);
    try {
      await expect(app.listen(0, '127.0.0.1')).rejects.toThrow(
        'the event "first" at /both has two handlers, FirstOnPath.first and AlsoFirstOnPath.again: an event has one handler per path',
      );
    } finally {
      await within(app.close(), 5000, 'app.close() after a failed listen');
    }
  });
});
