export {
  ReliableWsClient,
  type ClientState,
  type ClientSystemEvents,
  type ClientHeartbeatOptions,
  type QueueOptions,
  type ReadyInfo,
  type ReliableWsClientOptions,
  type RequestOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from './reliable-ws-client.js';
export { reconnectDelay, rateLimitedDelay, DEFAULT_RECONNECT, type ReconnectOptions } from './backoff.js';
export { QueueFullError, RequestError, ClientErrorCode } from './errors.js';
export {
  CloseCode,
  ErrorCode,
  SystemEvent,
  SUBPROTOCOL,
  type ClientMessage,
  type ServerMessage,
  type ErrorData,
  type ReadyData,
  type HelloData,
} from '../protocol/index.js';
