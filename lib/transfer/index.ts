export * from './transfer.options.js';
export * from './incoming-upload.js';
export * from './outgoing-stream.js';
export * from './session-transfers.js';
