// The gateway of the servers that take hostile input in a process of their own (the process
// test and `npm run soak`). Plain ESM JavaScript, so the decorators are applied by hand.
// Tokens: "user-<n>" verifies to { id: "user-<n>" }, "hang" never settles, "slow" settles after
// `slowVerifyMs`, anything else is refused. Handlers: echo (returns its input), join (the room
// `room`), circular, bigint, too-deep (return values JSON cannot carry) and push-circular
// (pushes one).
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';

export function hostileVerify(slowVerifyMs) {
  return (token) => {
    if (token === 'hang') return new Promise(() => undefined);
    if (token === 'slow') return new Promise((resolve) => setTimeout(() => resolve({ id: 'slow' }), slowVerifyMs));
    return /^user-\d+$/.test(token) ? { id: token } : null;
  };
}

function circularValue() {
  const value = { a: 1 };
  value.self = value;
  return value;
}

function deeplyNested(levels) {
  let value = [];
  for (let level = 1; level < levels; level++) value = [value];
  return value;
}

/** @param lib the compiled package (its BroadcastService and ReliableGateway) */
export function hostileGateway({ BroadcastService, ReliableGateway }, room) {
  class HostileGateway {
    constructor(broadcast) {
      this.broadcast = broadcast;
    }

    echo(data) {
      return data;
    }

    async join(socket) {
      await this.broadcast.join(socket.id, room);
      return { joined: room };
    }

    circular() {
      return circularValue();
    }

    bigint() {
      return { n: 10n };
    }

    tooDeep() {
      return deeplyNested(100000);
    }

    pushCircular(socket) {
      socket.send('never', circularValue());
    }
  }
  const handlers = { echo: 'echo', join: 'join', circular: 'circular', bigint: 'bigint', 'too-deep': 'tooDeep', 'push-circular': 'pushCircular' };
  for (const [event, method] of Object.entries(handlers)) {
    SubscribeMessage(event)(HostileGateway.prototype, method, Object.getOwnPropertyDescriptor(HostileGateway.prototype, method));
  }
  MessageBody()(HostileGateway.prototype, 'echo', 0);
  ConnectedSocket()(HostileGateway.prototype, 'join', 0);
  ConnectedSocket()(HostileGateway.prototype, 'pushCircular', 0);
  Reflect.defineMetadata('design:paramtypes', [BroadcastService], HostileGateway);
  ReliableGateway({ path: '/ws' })(HostileGateway);
  return HostileGateway;
}
