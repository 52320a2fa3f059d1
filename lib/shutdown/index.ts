export * from './shutdown.service.js';
