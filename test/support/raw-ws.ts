import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * A WebSocket peer done by hand on a plain TCP socket: it performs the upgrade handshake and then
 * only records what the server sends. It never answers anything (no pong, no close reply).
 */
export class RawWsPeer {
  readonly frames: RawFrame[] = [];
  /** When the TCP connection ended (ms since the epoch), once it has. */
  closedAt: number | undefined;
  readonly closed: Promise<void>;
  private buffer = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.closedAt = Date.now();
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  /** Connects and upgrades; resolves once the server answered 101. */
  static open(port: number, path: string, timeoutMs = 5000): Promise<RawWsPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const peer = new RawWsPeer(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`raw upgrade timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      let head = Buffer.alloc(0);
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onHead);
        clearTimeout(timer);
        const status = head.subarray(0, end).toString().split('\r\n')[0];
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        socket.on('data', (data: Buffer) => peer.onData(data));
        peer.onData(head.subarray(end + 4));
        resolve(peer);
      };
      socket.on('data', onHead);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\n` +
            `Host: 127.0.0.1:${port}\r\n` +
            'Upgrade: websocket\r\n' +
            'Connection: Upgrade\r\n' +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
            'Sec-WebSocket-Version: 13\r\n' +
            '\r\n',
        );
      });
    });
  }

  /** Close code of the first close frame received, if any. */
  get closeCode(): number | undefined {
    const frame = this.frames.find((f) => f.opcode === 0x8);
    return frame && frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(data: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, data]);
    // server frames are unmasked; parse as many complete ones as there are
    for (let guard = 0; guard < 10000 && this.buffer.length >= 2; guard++) {
      const opcode = this.buffer[0] & 0x0f;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      this.frames.push({ opcode, payload: this.buffer.subarray(offset, offset + length) });
      this.buffer = this.buffer.subarray(offset + length);
    }
  }
}
