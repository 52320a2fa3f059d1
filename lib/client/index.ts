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
