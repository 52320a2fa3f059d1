export * from './reliable-ws.exception.js';
export * from './validation-details.js';
export * from './error-mapping.js';
