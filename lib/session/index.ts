export * from './session.js';
export * from './session-id.js';
export * from './session.registry.js';
export * from './reliable-socket.js';
export * from './inbound-message.js';
