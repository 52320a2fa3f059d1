export * from './reliable-ws.adapter.js';
export * from './missing-adapter.js';
