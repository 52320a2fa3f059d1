export * from './close-code.js';
export * from './error-code.js';
export * from './system-event.js';
export * from './envelope.js';
export * from './binary-frame.js';
export * from './transfer.js';
export * from './ready.js';
export * from './timer-delay.js';
