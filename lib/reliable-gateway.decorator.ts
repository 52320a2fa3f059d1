import { applyDecorators, UseFilters, UseGuards, UseInterceptors } from '@nestjs/common';
import { WebSocketGateway, type GatewayMetadata } from '@nestjs/websockets';
import { RELIABLE_GATEWAY_ENHANCERS } from './adapter/index.js';

/**
 * `@WebSocketGateway(options)` plus the module's error filter, auth guard, rate-limit and
 * validation interceptors. (`ReliableWsAdapter` contains the lifecycle hooks of every gateway:
 * a `handleConnection` that throws closes its connection with 1011, nothing takes the app down.)
 */
export function ReliableGateway(options: GatewayMetadata = {}): ClassDecorator {
  return applyDecorators(
    WebSocketGateway(options),
    UseFilters(...RELIABLE_GATEWAY_ENHANCERS.filters),
    UseGuards(...RELIABLE_GATEWAY_ENHANCERS.guards),
    UseInterceptors(...RELIABLE_GATEWAY_ENHANCERS.interceptors),
  );
}
