export * from './rate-limit.options.js';
export * from './token-bucket.js';
export * from './rate-limiter.js';
export * from './rate-limit.decorator.js';
export * from './ws-rate-limit.interceptor.js';
