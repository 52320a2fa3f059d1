export * from './heartbeat.service.js';
