import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

type ByteDirection = 'up' | 'down';

/**
 * A TCP proxy for chaos tests: forwards each connection to `127.0.0.1:<upstream port>`, where the
 * upstream is chosen per connection (a fixed port, or a function: e.g. alternate between two
 * instances on every reconnect), and cuts connections on demand, at random intervals, or once
 * a given number of bytes has gone through.
 *
 * A cut destroys both sides at once, with no close frame: the client and the server see an
 * abnormal close (1006), as after a network failure.
 */
export class ChaosProxy {
  /** Connections accepted from clients. */
  accepted = 0;
  /** Connections cut by `cutAll()` (each cut counts every connection it destroyed). */
  cuts = 0;
  /** Upstream port of every accepted connection, in order. */
  readonly upstreams: number[] = [];
  /** While true, new connections are destroyed at once (the server looks unreachable). */
  refusing = false;
  private readonly pipes = new Set<[Socket, Socket]>();
  private chaosTimer: NodeJS.Timeout | undefined;
  /** Bytes forwarded over every connection so far: client → server (up) and server → client (down). */
  private readonly bytes: Record<ByteDirection, number> = { up: 0, down: 0 };
  /** Totals of `bytes` at which `cutAll()` is due, ascending. */
  private cutMarks: Record<ByteDirection, number[]> = { up: [], down: [] };

  private constructor(
    private readonly server: Server,
    public upstream: number | (() => number),
  ) {
    server.on('connection', (client) => this.onConnection(client));
  }

  static async start(upstream: number | (() => number)): Promise<ChaosProxy> {
    const server = createServer();
    const proxy = new ChaosProxy(server, upstream);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** Alternates between the given ports on every new connection, starting with the first. */
  static alternating(ports: number[]): () => number {
    let next = 0;
    return () => ports[next++ % ports.length];
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get open(): number {
    return this.pipes.size;
  }

  url(path = '/'): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** Destroys every open connection; returns how many there were. */
  cutAll(): number {
    let cut = 0;
    for (const pipe of [...this.pipes]) {
      this.destroy(pipe);
      cut++;
    }
    this.cuts += cut;
    return cut;
  }

  /** Cuts every connection again and again, after a random delay in [minMs, maxMs] each time (cuts after bytes stay due). */
  startChaos(minMs: number, maxMs: number): void {
    clearTimeout(this.chaosTimer);
    const schedule = (): void => {
      this.chaosTimer = setTimeout(() => {
        this.cutAll();
        schedule();
      }, minMs + Math.random() * (maxMs - minMs));
    };
    schedule();
  }

  /**
   * Cuts every connection once `after[i]` more bytes (counted from now, over all connections) have
   * gone `direction` through the proxy, one cut per entry: where the cuts land in a transfer is set
   * by its bytes, whatever the timing.
   */
  cutAfterBytes(direction: ByteDirection, after: number[]): void {
    this.cutMarks[direction] = after.map((bytes) => this.bytes[direction] + bytes).sort((a, b) => a - b);
  }

  /** Stops the cuts the proxy makes on its own: at random and after bytes. */
  stopChaos(): void {
    clearTimeout(this.chaosTimer);
    this.chaosTimer = undefined;
    this.cutMarks = { up: [], down: [] };
  }

  async close(): Promise<void> {
    this.stopChaos();
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: Socket): void {
    client.on('error', () => undefined);
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.accepted++;
    const port = typeof this.upstream === 'function' ? this.upstream() : this.upstream;
    this.upstreams.push(port);
    const upstream = connect(port, '127.0.0.1');
    upstream.on('error', () => undefined);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const pipe: [Socket, Socket] = [client, upstream];
    this.pipes.add(pipe);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => this.count('up', chunk.length));
    upstream.on('data', (chunk: Buffer) => this.count('down', chunk.length));
    client.once('close', () => this.destroy(pipe));
    // the server hung up: what it said last still reaches the client, then the pipe goes
    upstream.once('close', () => client.end());
  }

  private count(direction: ByteDirection, bytes: number): void {
    this.bytes[direction] += bytes;
    const marks = this.cutMarks[direction];
    if (marks.length > 0 && this.bytes[direction] >= marks[0]) {
      marks.shift();
      this.cutAll();
    }
  }

  private destroy(pipe: [Socket, Socket]): void {
    if (!this.pipes.delete(pipe)) return;
    pipe[0].destroy();
    pipe[1].destroy();
  }
}
