export * from './health.endpoint.js';
export * from './reliable-ws-health.service.js';
