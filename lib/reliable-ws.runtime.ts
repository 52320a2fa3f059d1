import { Inject, Injectable } from '@nestjs/common';
import { Authenticator } from './auth/index.js';
import { BroadcastService } from './broadcast/index.js';
import { HeartbeatService } from './heartbeat/index.js';
import { RateLimiter } from './rate-limit/index.js';
import { SessionRegistry } from './session/index.js';
import { ShutdownService } from './shutdown/index.js';
import { ReliableWsMetrics } from './telemetry/index.js';
import { RELIABLE_WS_OPTIONS } from './reliable-ws.constants.js';
import type { ResolvedReliableWsOptions } from './reliable-ws.options.js';

/** What the adapter needs from the module, gathered so that it can take it from the app in one call. */
@Injectable()
export class ReliableWsRuntime {
  constructor(
    @Inject(RELIABLE_WS_OPTIONS) readonly options: ResolvedReliableWsOptions,
    readonly sessions: SessionRegistry,
    readonly heartbeat: HeartbeatService,
    readonly shutdown: ShutdownService,
    @Inject(Authenticator) readonly authenticator: Authenticator | null,
    readonly rateLimiter: RateLimiter,
    readonly broadcast: BroadcastService,
    readonly metrics: ReliableWsMetrics,
  ) {}
}
