/** Injection token of the resolved, validated `ReliableWsOptions`. */
export const RELIABLE_WS_OPTIONS = Symbol('nestjs-reliable-ws:options');
