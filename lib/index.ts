export { ReliableWsModule } from './reliable-ws.module.js';
export { RELIABLE_WS_MODULE_OPTIONS } from './reliable-ws.module-definition.js';
export { RELIABLE_WS_OPTIONS } from './reliable-ws.constants.js';
export type { ReliableWsOptions, ResolvedReliableWsOptions, ResumeOptions, OriginCheck } from './reliable-ws.options.js';
export { ReliableWsOptionsError } from './reliable-ws.options-validation.js';
export { ReliableGateway } from './reliable-gateway.decorator.js';
export {
  BroadcastService,
  RedisBroadcastTransport,
  type BroadcastOptions,
  type BroadcastOptionsPerCall,
  type BroadcastTransport,
  type RedisClusterConfig,
} from './broadcast/index.js';
export { WsAuthGuard, WsPrincipal, type AuthOptions, type AuthMode, type HandshakeRequest } from './auth/index.js';
export { ReliableWsAdapter, ReliableWsServer, GatewayClients, WsErrorFilter } from './adapter/index.js';
export {
  RateLimit,
  SkipRateLimit,
  WsRateLimitInterceptor,
  type RateLimitOptions,
  type ModuleRateLimitOptions,
} from './rate-limit/index.js';
export { WsValidationInterceptor, type ValidationOptions } from './validation/index.js';
export { ReliableWsException, type ValidationDetail } from './errors/index.js';
export { HeartbeatService, type HeartbeatOptions } from './heartbeat/index.js';
export { ShutdownService, type ShutdownOptions } from './shutdown/index.js';
export { ReliableWsHealth, type HealthOptions, type HealthReport } from './health/index.js';
export { ReliableSocket, SessionRegistry, type BackpressureOptions, type SessionObserver } from './session/index.js';
export { RWS_METRICS } from './telemetry/index.js';
export {
  CloseCode,
  ErrorCode,
  SystemEvent,
  SUBPROTOCOL,
  UnserializableDataError,
  type ClientMessage,
  type ServerMessage,
  type ErrorData,
  type ReadyData,
  type HelloData,
} from './protocol/index.js';
