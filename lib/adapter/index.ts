export * from './reliable-ws.adapter.js';
export { GatewayClients, ReliableWsServer } from './gateway-server.js';
export * from './missing-adapter.js';
export * from './ws-error.filter.js';
export * from './gateway-enhancers.js';
