import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { SessionRegistry } from '../session/index.js';

export interface HeartbeatOptions {
  /** How often the server pings every connection. */
  intervalMs: number;
  /** How long past an interval a silent peer is given before it is terminated. */
  timeoutMs: number;
}

/**
 * Pings every connection each interval and terminates peers that stayed silent (no frame, no
 * pong) for interval + timeout. One timer sweeps all connections.
 */
export class HeartbeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HeartbeatService.name);
  private timer: NodeJS.Timeout | undefined;
  private lastPingAt = 0;

  constructor(
    private readonly options: HeartbeatOptions,
    private readonly connections: SessionRegistry,
  ) {}

  onApplicationBootstrap(): void {
    this.start();
  }

  onApplicationShutdown(): void {
    this.stop();
  }

  start(): void {
    if (this.timer) return;
    this.lastPingAt = performance.now();
    const tickMs = Math.min(this.options.intervalMs, this.options.timeoutMs);
    this.timer = setInterval(() => this.sweep(performance.now()), tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Terminates dead peers and, once per interval, pings the others. */
  sweep(now: number): void {
    const deadline = now - this.options.intervalMs - this.options.timeoutMs;
    const pingDue = now - this.lastPingAt >= this.options.intervalMs;
    if (pingDue) this.lastPingAt = now;
    let terminated = 0;
    for (const socket of this.connections) {
      if (socket.lastSeenAt < deadline) {
        socket.raw.terminate();
        terminated++;
      } else if (pingDue && socket.isOpen) {
        socket.raw.ping();
      }
    }
    if (terminated > 0) this.logger.debug(`terminated ${terminated} silent connection(s)`);
  }
}
