export * from './reliable-ws.health-indicator.js';
