export * from './auth.options.js';
export * from './handshake-request.js';
export * from './handshake-token.js';
export * from './authenticator.js';
export * from './ws-principal.decorator.js';
export * from './ws-auth.guard.js';
