import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type Direction = 'up' | 'down' | 'both';

interface Pipe {
  client: Socket;
  upstream: Socket | undefined;
  /** Bytes held back while a direction is stalled: client → server (up) and server → client (down). */
  heldUp: Buffer[];
  heldDown: Buffer[];
  /** This connection's server → client direction alone is stalled (see `stallDownAfter`). */
  stalledDown: boolean;
}

/**
 * A TCP proxy for e2e tests of network faults, between a client and `127.0.0.1:<targetPort>`.
 *
 * - `stall(direction)`: stop forwarding (both ways, or only client → server `'up'`, or only
 *   server → client `'down'`) without closing anything; the bytes are held, for present and
 *   future connections, until `resume()` forwards them in order.
 * - `stallDownAfter(marker)`: stalls server → client on the one connection whose client next sends
 *   `marker` (a command, say), from that chunk on, until `resume()`.
 * - `cutAll()`: destroys every connection at once (both sides, no close frames).
 * - `blackhole: true`: accepts TCP connections and never forwards anything (no upstream at all).
 * - `targetPort` may be changed: connections made after that go to the new port (a server that
 *   moved, behind the same address).
 */
export class TcpProxy {
  /** TCP connections accepted from clients so far. */
  accepted = 0;
  /** TCP connections whose client side has closed. */
  clientCloses = 0;
  /** Bytes from clients held back (ever) while the up direction was stalled. */
  heldUpBytes = 0;
  /** Bytes from the server held back (ever) while the down direction was stalled. */
  heldDownBytes = 0;
  private readonly pipes = new Set<Pipe>();
  private stalledUp = false;
  private stalledDown = false;
  private downStallMarker: string | undefined;

  private constructor(
    private readonly server: Server,
    public targetPort: number,
    private readonly blackhole: boolean,
  ) {
    server.on('connection', (client) => this.onConnection(client));
  }

  static async start(targetPort: number, options: { blackhole?: boolean } = {}): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort, options.blackhole ?? false);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Open connections (client side not yet closed). */
  get open(): number {
    return this.pipes.size;
  }

  url(path = '/'): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  stall(direction: Direction = 'both'): void {
    if (direction !== 'down') this.stalledUp = true;
    if (direction !== 'up') this.stalledDown = true;
  }

  stallDownAfter(marker: string): void {
    this.downStallMarker = marker;
  }

  resume(): void {
    this.stalledUp = false;
    this.stalledDown = false;
    this.downStallMarker = undefined;
    for (const pipe of this.pipes) {
      pipe.stalledDown = false;
      this.release(pipe);
    }
  }

  cutAll(): void {
    for (const pipe of [...this.pipes]) this.destroy(pipe);
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: Socket): void {
    this.accepted++;
    const pipe: Pipe = { client, upstream: undefined, heldUp: [], heldDown: [], stalledDown: false };
    this.pipes.add(pipe);
    client.on('error', () => undefined);
    client.once('close', () => {
      this.clientCloses++;
      this.destroy(pipe);
    });
    if (this.blackhole) {
      client.on('data', () => undefined); // read and drop, never answer
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    pipe.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.once('close', () => {
      // what the server said last is still delivered once the down direction flows again
      if ((this.stalledDown || pipe.stalledDown) && pipe.heldDown.length > 0) return;
      this.destroy(pipe);
    });
    client.on('data', (chunk: Buffer) => {
      if (this.downStallMarker !== undefined && chunk.includes(this.downStallMarker)) {
        pipe.stalledDown = true;
        this.downStallMarker = undefined;
      }
      if (this.stalledUp || pipe.heldUp.length > 0) {
        pipe.heldUp.push(chunk);
        this.heldUpBytes += chunk.length;
      } else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.stalledDown || pipe.stalledDown || pipe.heldDown.length > 0) {
        pipe.heldDown.push(chunk);
        this.heldDownBytes += chunk.length;
      } else client.write(chunk);
    });
  }

  private release(pipe: Pipe): void {
    const { client, upstream } = pipe;
    if (upstream && !upstream.destroyed) for (const chunk of pipe.heldUp.splice(0)) upstream.write(chunk);
    if (!client.destroyed) for (const chunk of pipe.heldDown.splice(0)) client.write(chunk);
    pipe.heldUp.length = 0;
    pipe.heldDown.length = 0;
    if (upstream?.destroyed) client.end();
  }

  private destroy(pipe: Pipe): void {
    if (!this.pipes.delete(pipe)) return;
    pipe.client.destroy();
    pipe.upstream?.destroy();
  }
}
