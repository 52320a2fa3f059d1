export * from './health.endpoint.js';
