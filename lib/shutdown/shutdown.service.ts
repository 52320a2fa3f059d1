import { Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { ReliableSocket, SessionRegistry } from '../session/index.js';
import { errorText } from '../protocol/index.js';

export interface ShutdownOptions {
  /** Close code sent to every client on shutdown. */
  closeCode: number;
  /** Window over which the closes are spread evenly (the i-th of n at about i/n of it). */
  spreadMs: number;
  /** After this long, connections still open are terminated. */
  timeoutMs: number;
}

/** Smallest gap between two batches of closes while spreading them out. */
const SPREAD_TICK_MS = 10;

/**
 * Drains the WebSocket side on `app.close()`: flips to draining (new upgrades and the health
 * endpoint answer 503), closes every client with the shutdown code spread over `spreadMs`, and
 * terminates whatever is left after `timeoutMs`.
 */
export class ShutdownService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ShutdownService.name);
  private drainPromise: Promise<void> | undefined;
  private readonly drainListeners: Array<() => void> = [];

  /**
   * @param flushSessions hands the sessions left behind to where their clients can resume them
   *   (other instances, with Redis); runs once the connections are gone.
   */
  constructor(
    private readonly options: ShutdownOptions,
    private readonly connections: SessionRegistry,
    private readonly flushSessions: () => Promise<void> = async () => undefined,
  ) {}

  get draining(): boolean {
    return this.drainPromise !== undefined;
  }

  /** Calls `listener` as the drain begins. */
  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.drain();
  }

  drain(): Promise<void> {
    this.drainPromise ??= this.runDrain();
    return this.drainPromise;
  }

  private async runDrain(): Promise<void> {
    for (const listener of this.drainListeners) listener();
    const sockets = [...this.connections];
    if (sockets.length > 0) this.logger.log(`draining ${sockets.length} WebSocket connection(s)`);
    const stopSpreading = this.closeSpread(sockets);
    const timedOut = await this.waitForEmpty(this.options.timeoutMs);
    stopSpreading();
    if (timedOut) {
      let left = 0;
      for (const socket of this.connections) {
        socket.raw.terminate();
        left++;
      }
      this.logger.warn(`terminated ${left} connection(s) still open after ${this.options.timeoutMs} ms`);
    }
    await this.flushWithinTimeout();
  }

  /** Hands the sessions over for at most `timeoutMs`, whatever Redis does (a handover command may wait longer). */
  private async flushWithinTimeout(): Promise<void> {
    const { timeoutMs } = this.options;
    const flushed = this.flushSessions().catch((error: unknown) => this.logger.error(`flushing sessions failed: ${errorText(error)}`));
    if (await timesOut(flushed, timeoutMs)) this.logger.warn(`handing sessions over took longer than ${timeoutMs} ms; stopped waiting for it`);
  }

  /** Closes the i-th of n sockets at about i/n × spreadMs; returns a function that stops early. */
  private closeSpread(sockets: ReliableSocket[]): () => void {
    const { closeCode, spreadMs } = this.options;
    const total = sockets.length;
    let next = 0;
    const closeDue = (elapsed: number): void => {
      const due = spreadMs === 0 ? total : Math.min(total, Math.floor((elapsed / spreadMs) * total) + 1);
      for (; next < due; next++) sockets[next].close(closeCode);
    };
    const startedAt = performance.now();
    closeDue(0);
    if (next >= total) return () => undefined;
    const timer = setInterval(() => {
      closeDue(performance.now() - startedAt);
      if (next >= total) clearInterval(timer);
    }, Math.max(SPREAD_TICK_MS, Math.floor(spreadMs / total)));
    return () => clearInterval(timer);
  }

  /** Resolves true when the timeout elapsed with connections still open. */
  private waitForEmpty(timeoutMs: number): Promise<boolean> {
    return timesOut(this.connections.whenEmpty(), timeoutMs);
  }
}

/** Resolves true when `timeoutMs` elapsed before `work` settled, false when it settled in time. */
async function timesOut(work: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const result = await Promise.race([work.then(() => false), timeout]);
  clearTimeout(timer);
  return result;
}
