import { Module, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import { MissingReliableWsAdapter, MISSING_ADAPTER_MESSAGE, ReliableWsAdapter, WsErrorFilter } from './adapter/index.js';
import { randomUUID } from 'node:crypto';
import { Authenticator, defaultUserId, WsAuthGuard } from './auth/index.js';
import { BroadcastService, LocalBroadcastTransport, RedisBroadcastTransport } from './broadcast/index.js';
import { HealthEndpoint, ReliableWsHealth } from './health/index.js';
import { HeartbeatService } from './heartbeat/index.js';
import { SessionRegistry } from './session/index.js';
import { ShutdownService } from './shutdown/index.js';
import { ReliableWsMetrics } from './telemetry/index.js';
import { RateLimiter, WsRateLimitInterceptor } from './rate-limit/index.js';
import { WS_VALIDATION_OPTIONS, WsValidationInterceptor } from './validation/index.js';
import { RELIABLE_WS_OPTIONS } from './reliable-ws.constants.js';
import { ConfigurableModuleClass, RELIABLE_WS_MODULE_OPTIONS } from './reliable-ws.module-definition.js';
import { resolveOptions } from './reliable-ws.options-validation.js';
import type { ReliableWsOptions, ResolvedReliableWsOptions } from './reliable-ws.options.js';
import { ReliableWsRuntime } from './reliable-ws.runtime.js';

/**
 * Production-grade WebSocket gateways on `ws`. Import once with `forRoot()` or
 * `forRootAsync()` (the module is global) and install `ReliableWsAdapter` on the app.
 */
@Module({
  providers: [
    {
      provide: RELIABLE_WS_OPTIONS,
      useFactory: (options: ReliableWsOptions) => resolveOptions(options),
      inject: [RELIABLE_WS_MODULE_OPTIONS],
    },
    {
      provide: SessionRegistry,
      useFactory: ({ resume, maxConnectionsPerIp, maxTransferBytes, maxPayloadBytes, backpressure }: ResolvedReliableWsOptions) =>
        new SessionRegistry(resume && { ...resume, maxPerIp: maxConnectionsPerIp }, {
          maxTransferBytes,
          maxFrameBytes: maxPayloadBytes,
          window: backpressure.maxBufferedBytes,
        }),
      inject: [RELIABLE_WS_OPTIONS],
    },
    {
      provide: HeartbeatService,
      useFactory: (options: ResolvedReliableWsOptions, sessions: SessionRegistry) =>
        new HeartbeatService(options.heartbeat, sessions),
      inject: [RELIABLE_WS_OPTIONS, SessionRegistry],
    },
    {
      provide: ShutdownService,
      useFactory: (options: ResolvedReliableWsOptions, sessions: SessionRegistry, broadcast: BroadcastService) =>
        new ShutdownService(options.shutdown, sessions, () => broadcast.handOverSessions(options.shutdown.timeoutMs)),
      inject: [RELIABLE_WS_OPTIONS, SessionRegistry, BroadcastService],
    },
    {
      provide: ReliableWsMetrics,
      useFactory: (sessions: SessionRegistry) =>
        new ReliableWsMetrics({ connections: () => sessions.connectionCount, detachedSessions: () => sessions.detachedCount }),
      inject: [SessionRegistry],
    },
    {
      provide: BroadcastService,
      useFactory: (options: ResolvedReliableWsOptions, sessions: SessionRegistry, metrics: ReliableWsMetrics) => {
        const instanceId = randomUUID();
        const { broadcast, auth } = options;
        const transport = broadcast.redis
          ? new RedisBroadcastTransport(broadcast, instanceId, metrics)
          : new LocalBroadcastTransport();
        const userIdOf = auth ? auth.userId : defaultUserId;
        return new BroadcastService(sessions, transport, instanceId, broadcast.channelPrefix, userIdOf, metrics);
      },
      inject: [RELIABLE_WS_OPTIONS, SessionRegistry, ReliableWsMetrics],
    },
    ReliableWsHealth,
    {
      provide: HealthEndpoint,
      useFactory: (options: ResolvedReliableWsOptions, httpAdapterHost: HttpAdapterHost, health: ReliableWsHealth) =>
        options.health === false ? null : new HealthEndpoint(options.health, httpAdapterHost, health),
      inject: [RELIABLE_WS_OPTIONS, HttpAdapterHost, ReliableWsHealth],
    },
    {
      provide: Authenticator,
      useFactory: (options: ResolvedReliableWsOptions) => (options.auth ? new Authenticator(options.auth) : null),
      inject: [RELIABLE_WS_OPTIONS],
    },
    {
      provide: RateLimiter,
      useFactory: (options: ResolvedReliableWsOptions) => new RateLimiter(options.rateLimit),
      inject: [RELIABLE_WS_OPTIONS],
    },
    {
      provide: WS_VALIDATION_OPTIONS,
      useFactory: (options: ResolvedReliableWsOptions) => options.validation,
      inject: [RELIABLE_WS_OPTIONS],
    },
    ReliableWsRuntime,
    WsErrorFilter,
    WsAuthGuard,
    WsRateLimitInterceptor,
    WsValidationInterceptor,
  ],
  exports: [
    RELIABLE_WS_OPTIONS,
    BroadcastService,
    SessionRegistry,
    ShutdownService,
    ReliableWsHealth,
    Authenticator,
    RateLimiter,
    WS_VALIDATION_OPTIONS,
    ReliableWsRuntime,
    WsErrorFilter,
    WsAuthGuard,
    WsRateLimitInterceptor,
    WsValidationInterceptor,
  ],
})
export class ReliableWsModule extends ConfigurableModuleClass implements OnModuleInit {
  constructor(private readonly applicationConfig: ApplicationConfig) {
    super();
    if (!applicationConfig.getIoAdapter()) applicationConfig.setIoAdapter(new MissingReliableWsAdapter());
  }

  async onModuleInit(): Promise<void> {
    const adapter = this.applicationConfig.getIoAdapter();
    if (!(adapter instanceof ReliableWsAdapter)) throw new Error(MISSING_ADAPTER_MESSAGE);
    await adapter.verifyGateways();
  }
}
