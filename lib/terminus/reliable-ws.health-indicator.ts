import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { ReliableWsHealth } from '../health/index.js';

/**
 * `@nestjs/terminus` indicator of this instance's WebSocket side, from the same state as the
 * `/health/ws` endpoint: `up` while it is `ok`, `down` while draining or while the broadcast
 * subscriber receives nothing. The details are the endpoint's report, its `status` given as `state`.
 *
 * ```ts
 * import { ReliableWsHealthIndicator } from 'nestjs-reliable-ws/terminus';
 *
 * @Module({ imports: [TerminusModule], controllers: [HealthController], providers: [ReliableWsHealthIndicator] })
 * class HealthModule {}
 *
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.ws.isHealthy()]); }
 * ```
 */
@Injectable()
export class ReliableWsHealthIndicator {
  constructor(
    private readonly health: ReliableWsHealth,
    private readonly healthIndicatorService: HealthIndicatorService,
  ) {}

  isHealthy<const Key extends string = 'websocket'>(key: Key = 'websocket' as Key): HealthIndicatorResult<Key> {
    const indicator = this.healthIndicatorService.check(key);
    const { status, ...details } = this.health.report();
    const data = { state: status, ...details };
    return status === 'ok' ? indicator.up(data) : indicator.down(data);
  }
}
