import type { INestApplicationContext } from '@nestjs/common';
import { MetadataScanner } from '@nestjs/core';
import { GATEWAY_OPTIONS, PORT_METADATA } from '@nestjs/websockets/constants.js';
import { gatewayInstances, messageHandlers } from './direct-handlers.js';
import { normalizeGatewayPath } from './handshake.js';

/**
 * Gateways on the same port and path share one server: an event two of their handlers subscribe
 * to would run only one of them, chosen by the order Nest binds them in. Throws naming both.
 */
export function assertOneHandlerPerEvent(app: INestApplicationContext): void {
  const handlers = new Map<string, string>();
  const scanner = new MetadataScanner();
  for (const instance of gatewayInstances(app)) {
    const gateway = instance.constructor;
    const port = Number(Reflect.getMetadata(PORT_METADATA, gateway) ?? 0);
    const options = Reflect.getMetadata(GATEWAY_OPTIONS, gateway) as { path?: string } | undefined;
    const where = `${normalizeGatewayPath(options?.path)}${port ? ` (port ${port})` : ''}`;
    for (const { pattern, methodName } of messageHandlers(instance, scanner)) {
      const key = `${where} ${pattern}`;
      const handler = `${gateway.name}.${methodName}`;
      const other = handlers.get(key);
      if (other) {
        throw new Error(`the event "${pattern}" at ${where} has two handlers, ${other} and ${handler}: an event has one handler per path`);
      }
      handlers.set(key, handler);
    }
  }
}
