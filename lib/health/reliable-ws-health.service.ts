import { Injectable } from '@nestjs/common';
import { BroadcastService } from '../broadcast/index.js';
import { SessionRegistry } from '../session/index.js';
import { ShutdownService } from '../shutdown/index.js';

export interface HealthReport {
  /** `ok`; `draining` once shutdown began; `degraded` while the broadcast subscriber receives nothing. */
  status: 'ok' | 'draining' | 'degraded';
  /** Open connections of this instance. */
  connections: number;
  /** Present while the broadcast subscriber is not receiving. */
  broadcast?: string;
}

/**
 * The health of this instance's WebSocket side: the one source of the `/health/ws` endpoint and
 * of the `@nestjs/terminus` indicator (`nestjs-reliable-ws/terminus`).
 */
@Injectable()
export class ReliableWsHealth {
  constructor(
    private readonly sessions: SessionRegistry,
    private readonly shutdown: ShutdownService,
    private readonly broadcast: BroadcastService,
  ) {}

  /** True while the report's status is `ok`: the instance takes new connections and delivers broadcasts. */
  get healthy(): boolean {
    return !this.shutdown.draining && this.broadcast.healthy;
  }

  report(): HealthReport {
    const receiving = this.broadcast.healthy;
    return {
      status: this.shutdown.draining ? 'draining' : receiving ? 'ok' : 'degraded',
      connections: this.sessions.connectionCount,
      ...(receiving ? {} : { broadcast: 'subscriber not receiving' }),
    };
  }
}
