import { WsAuthGuard } from '../auth/index.js';
import { WsRateLimitInterceptor } from '../rate-limit/index.js';
import { WsValidationInterceptor } from '../validation/index.js';
import { WsErrorFilter } from './ws-error.filter.js';

/** The enhancers `@ReliableGateway` puts on a gateway class, in Nest's metadata order. */
export const RELIABLE_GATEWAY_ENHANCERS = {
  filters: [WsErrorFilter],
  guards: [WsAuthGuard],
  interceptors: [WsRateLimitInterceptor, WsValidationInterceptor],
} as const;
