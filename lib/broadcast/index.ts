export * from './broadcast.options.js';
export * from './broadcast-envelope.js';
export * from './broadcast.transport.js';
export * from './redis-broadcast.transport.js';
export * from './membership.index.js';
export * from './broadcast.service.js';
export { SessionUnsettledError } from './session-handover.js';
