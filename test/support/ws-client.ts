import { WebSocket, type ClientOptions } from 'ws';

export interface Frame {
  event: string;
  data?: any;
  ref?: number | string;
  seq?: number;
}

export interface Closed {
  code: number;
  reason: string;
}

const DEFAULT_WAIT_MS = 5000;

/** A real `ws` client that records every frame and close, with bounded waits. */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly raw: WebSocket;
  private readonly waiters: Array<() => void> = [];
  private closedWith: Closed | undefined;
  private readonly opened: Promise<void>;

  constructor(url: string, protocols?: string | string[], options?: ClientOptions) {
    this.raw = new WebSocket(url, protocols, options);
    this.raw.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.wake();
    });
    this.raw.on('close', (code, reason) => {
      this.closedWith = { code, reason: reason.toString() };
      this.wake();
    });
    this.raw.on('error', () => this.wake());
    this.opened = new Promise((resolve, reject) => {
      this.raw.once('open', () => resolve());
      this.raw.once('error', reject);
      this.raw.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** Opens a connection and waits for `$ready` (plain clients get it at once). */
  static async ready(url: string, protocols?: string | string[], options?: ClientOptions): Promise<TestClient> {
    const client = new TestClient(url, protocols, options);
    await client.open();
    await client.next((frame) => frame.event === '$ready');
    return client;
  }

  /** `n` clients at `url`, each past `$ready`. */
  static readyMany(url: string, n: number): Promise<TestClient[]> {
    return Promise.all(Array.from({ length: n }, () => TestClient.ready(url)));
  }

  open(): Promise<void> {
    return this.opened;
  }

  send(message: unknown): void {
    this.raw.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first recorded frame matching the predicate, removing it from the record. */
  async next(predicate: (frame: Frame) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    const found = await this.waitFor(() => {
      const index = this.frames.findIndex(predicate);
      return index === -1 ? undefined : this.frames.splice(index, 1)[0];
    }, timeoutMs, 'a matching frame');
    return found;
  }

  /** Sends a message with an id and waits for the frame that answers it. */
  async request(event: string, data: unknown, id: number | string, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    this.send({ event, data, id });
    return this.next((frame) => frame.ref === id || frame.data?.ref === id, timeoutMs);
  }

  async closed(timeoutMs = DEFAULT_WAIT_MS): Promise<Closed> {
    return this.waitFor(() => this.closedWith, timeoutMs, 'the connection to close');
  }

  close(code = 1000): void {
    this.raw.close(code);
  }

  terminate(): void {
    this.raw.terminate();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${JSON.stringify(this.frames)}`)),
        timeoutMs,
      );
      const check = (): void => {
        const value = probe();
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }
}

/** Resolves with the HTTP status of a refused upgrade, or 101 when it was accepted. */
export function upgradeStatus(url: string, options?: ClientOptions, protocols?: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (error) => reject(error));
  });
}
