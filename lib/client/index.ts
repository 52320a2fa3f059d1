export { ReliableWsClient } from './reliable-ws-client.js';
export type {
  ClientState,
  ClientSystemEvents,
  ClientHeartbeatOptions,
  QueueOptions,
  ReadyInfo,
  ReliableWsClientOptions,
  RequestOptions,
  ShareOptions,
  UploadOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './reliable-ws-client.interfaces.js';
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
  type TransferProgress,
  type TransferDirection,
} from '../protocol/index.js';
