export * from './session.js';
export * from './session-id.js';
export * from './session.registry.js';
export * from './reliable-socket.js';
export * from './inbound-message.js';
export * from './replay-buffer.js';
export * from './answer-cache.js';
export * from './unserializable-log.js';
