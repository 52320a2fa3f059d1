export * from './telemetry.constants.js';
export * from './reliable-ws.metrics.js';
export * from './connection-log.js';
export * from './log-throttle.js';
