export * from './validation.options.js';
export * from './payload-validator.js';
export * from './ws-validation.interceptor.js';
