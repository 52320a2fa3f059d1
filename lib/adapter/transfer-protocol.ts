import {
  cancelDataOf,
  chunkAckDataOf,
  chunkHeaderOf,
  encodeFrame,
  ErrorCode,
  serializeData,
  SystemEvent,
  uploadDataOf,
  type ChunkAckData,
  type ClientMessage,
  type MessageId,
} from '../protocol/index.js';
import type { ResolvedReliableWsOptions } from '../reliable-ws.options.js';
import { ANSWER_PENDING, type ReliableSocket } from '../session/index.js';
import { isFreeProgress, type IncomingUpload } from '../transfer/index.js';
import type { MessageDispatcher } from './message-dispatcher.js';

/** Charges a frame against the protocol's own bucket; false (after answering `RATE_LIMITED`) when over it. */
type Admit = (socket: ReliableSocket, ref: MessageId | undefined) => boolean;

/**
 * The chunked-transfer events of a connection: `$upload` and its `$chunk` frames (assembled in
 * the session and handed to the handler as one message), `$chunk-ack` of streams, `$cancel`.
 * Valid chunks and acks are free (the announced size bounds them); refused ones are charged like
 * bad frames. `$upload` and `$cancel` are charged on arrival like every other `$`-event.
 */
export class TransferProtocol {
  constructor(
    private readonly options: ResolvedReliableWsOptions,
    private readonly dispatcher: MessageDispatcher,
    private readonly admit: Admit,
  ) {}

  /** `$upload { transfer, event, size }` with an id: a new upload, or one the client resumes. */
  onUpload(socket: ReliableSocket, { data, id }: ClientMessage): void {
    if (id === undefined) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: '$upload needs an id' });
      return;
    }
    const request = uploadDataOf(data);
    if (!request) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: '$upload data must be { transfer, event, size }', ref: id });
      return;
    }
    const { session } = socket;
    const { transfers } = session;
    if (socket.tracksIds(id) && id <= session.lastId) {
      const running = transfers.upload(request.transfer);
      if (running && running.id === id) return this.accept(socket, running);
      const cached = session.answers.get(id);
      if (cached === ANSWER_PENDING) return;
      if (cached !== undefined) return socket.write(cached);
      // Handled before, its answer no longer kept: never run again, unless its bytes stayed on the instance the session moved from.
      if (!session.restartsUpload(id)) return socket.write(encodeFrame(SystemEvent.ACK, serializeData({ ref: id, duplicate: true })));
      session.answers.markPending(id);
    } else if (socket.tracksIds(id)) {
      session.lastId = id;
      session.answers.markPending(id);
    }
    if (!this.dispatcher.handles(socket, request.event)) {
      socket.replyError({ code: ErrorCode.UNKNOWN_EVENT, message: `no handler for event "${request.event}"`, ref: id });
      return;
    }
    const started = transfers.startUpload(request, id);
    if (!started.ok) {
      socket.replyError({ code: started.code, message: started.message, ref: id, details: { transfer: request.transfer, size: request.size } });
      return;
    }
    this.accept(socket, started.upload);
    if (started.upload.complete) this.deliver(socket, started.upload);
  }

  /** Tells the client where to continue, how much it may send ahead, and the largest frame. */
  private accept(socket: ReliableSocket, upload: IncomingUpload): void {
    const ack: ChunkAckData = {
      transfer: upload.transfer,
      received: upload.received,
      window: this.options.backpressure.maxBufferedBytes,
      maxFrameBytes: this.options.maxPayloadBytes,
    };
    socket.sendSystem(SystemEvent.CHUNK_ACK, ack);
  }

  /** A binary `$chunk` frame of an upload. Each is acknowledged (cumulatively): no timer, no waiting. */
  onChunk(socket: ReliableSocket, header: Record<string, unknown>, payload: Uint8Array, id: MessageId | undefined): void {
    const chunk = chunkHeaderOf(header);
    if (!chunk) return this.refuse(socket, '$chunk header must be { event, transfer, offset }', undefined, id);
    const upload = socket.session.transfers.upload(chunk.transfer);
    if (!upload) return this.refuse(socket, `no upload with transfer id ${JSON.stringify(chunk.transfer)}`, { transfer: chunk.transfer }, id);
    if (!upload.allocate()) return this.abandon(socket, upload);
    const problem = upload.write(chunk.offset, payload);
    if (problem) return this.refuse(socket, problem, { transfer: chunk.transfer, received: upload.received }, id);
    socket.sendSystem(SystemEvent.CHUNK_ACK, { transfer: upload.transfer, received: upload.received });
    // Whole chunks are free; a small one that does not complete the upload counts (a flood of 1-byte chunks would be free).
    const admitted = upload.complete || isFreeProgress(payload.byteLength, upload.chunkBytes) || this.admit(socket, id);
    if (admitted && id !== undefined) socket.sendSystem(SystemEvent.ACK, { ref: id }); // a frame with an id is answered to it
    if (upload.complete) this.deliver(socket, upload);
  }

  /**
   * Every byte is in: the handler gets one message through the whole pipeline; its answer goes to
   * the `$upload`'s id, and the upload's budget is released with it.
   */
  private deliver(socket: ReliableSocket, upload: IncomingUpload): void {
    const release = socket.session.transfers.finishUpload(upload);
    const message: ClientMessage = { event: upload.event, data: upload.bytes(), id: upload.id };
    if (!this.dispatcher.dispatch(socket, message, release)) {
      release();
      socket.replyError({ code: ErrorCode.UNKNOWN_EVENT, message: `no handler for event "${upload.event}"`, ref: upload.id });
    }
  }

  /** The process cannot hold the upload's bytes: it is dropped, and its `$upload` answered `PAYLOAD_TOO_LARGE`. */
  private abandon(socket: ReliableSocket, upload: IncomingUpload): void {
    socket.session.transfers.cancelUpload(upload.transfer);
    socket.replyError({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message: `this process cannot allocate ${upload.size} bytes for one upload`,
      ref: upload.id,
      details: { transfer: upload.transfer, size: upload.size },
    });
  }

  /** `$chunk-ack { transfer, received }` of a stream to the client. */
  onChunkAck(socket: ReliableSocket, { data, id }: ClientMessage): void {
    const ack = chunkAckDataOf(data);
    if (!ack) return this.refuse(socket, '$chunk-ack data must be { transfer, received }', undefined, id);
    const outcome = socket.session.transfers.acknowledgeStream(ack.transfer, ack.received);
    if (outcome === 'beyond') return this.refuse(socket, `$chunk-ack beyond the bytes of the stream sent`, { transfer: ack.transfer }, id);
    // An ack that moves no stream on, or hardly (late, repeated, 1-byte steps), is harmless but not free.
    if (outcome !== 'ok' && !this.admit(socket, id)) return;
    if (id !== undefined) socket.sendSystem(SystemEvent.ACK, { ref: id });
  }

  /** `$cancel { transfer, direction? }`: frees an upload (its id is answered `$ack { cancelled }`) or refuses a stream. */
  onCancel(socket: ReliableSocket, { data, id }: ClientMessage): void {
    const cancel = cancelDataOf(data);
    if (!cancel) {
      socket.sendError({ code: ErrorCode.BAD_MESSAGE, message: "$cancel data must be { transfer, direction?: 'up' | 'down' }", ref: id });
      return;
    }
    const { transfers } = socket.session;
    if (cancel.direction === 'down') {
      transfers.cancelStream(cancel.transfer);
    } else {
      const upload = transfers.cancelUpload(cancel.transfer);
      if (upload) socket.acknowledgeCancelled(upload.id);
    }
    if (id !== undefined) socket.sendSystem(SystemEvent.ACK, { ref: id });
  }

  private refuse(socket: ReliableSocket, message: string, details?: unknown, ref?: MessageId): void {
    if (this.admit(socket, ref)) socket.sendError({ code: ErrorCode.BAD_MESSAGE, message, ref, ...(details === undefined ? {} : { details }) });
  }
}
