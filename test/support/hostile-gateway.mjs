// The gateway of the servers that take hostile input in a process of their own (the process
// test and `npm run soak`). Plain ESM JavaScript, so the decorators are applied by hand.
// Tokens: "user-<n>" verifies to { id: "user-<n>" }, "hang" never settles, "slow" settles after
// `slowVerifyMs`, "throw-odd" throws a value that cannot be shown as text, anything else is
// refused. Handlers: echo (returns its input), join (the room `room`), circular, bigint, too-deep
// (return values JSON cannot carry), push-circular (pushes one), throw-odd / reject-odd /
// error-odd-later / return-odd (throw, reject, error an observable with, or return the odd value
// named by the message's data).
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { Observable } from 'rxjs';

/** Values that break `String(value)`, `instanceof` or property reads. */
export function oddValue(kind) {
  switch (kind) {
    case 'null-prototype':
      return Object.create(null);
    case 'throwing-tostring':
      return { toString: () => { throw new Error('no text'); }, [Symbol.toPrimitive]: () => { throw new Error('no primitive'); } };
    case 'revoked-proxy': {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }
    case 'throwing-then':
      return { get then() { throw new Error('then'); } };
    case 'throwing-lift':
      return { get lift() { throw new Error('lift'); } };
    default:
      return undefined;
  }
}

export function hostileVerify(slowVerifyMs) {
  return (token) => {
    if (token === 'hang') return new Promise(() => undefined);
    if (token === 'throw-odd') throw oddValue('null-prototype');
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

    throwOdd(kind) {
      throw oddValue(kind);
    }

    async rejectOdd(kind) {
      throw oddValue(kind);
    }

    errorOddLater(kind) {
      return new Observable((subscriber) => {
        const timer = setTimeout(() => subscriber.error(oddValue(kind)), 10);
        return () => clearTimeout(timer);
      });
    }

    returnOdd(kind) {
      return oddValue(kind);
    }
  }
  const handlers = {
    echo: 'echo',
    join: 'join',
    circular: 'circular',
    bigint: 'bigint',
    'too-deep': 'tooDeep',
    'push-circular': 'pushCircular',
    'throw-odd': 'throwOdd',
    'reject-odd': 'rejectOdd',
    'error-odd-later': 'errorOddLater',
    'return-odd': 'returnOdd',
  };
  for (const [event, method] of Object.entries(handlers)) {
    SubscribeMessage(event)(HostileGateway.prototype, method, Object.getOwnPropertyDescriptor(HostileGateway.prototype, method));
  }
  for (const method of ['echo', 'throwOdd', 'rejectOdd', 'errorOddLater', 'returnOdd']) MessageBody()(HostileGateway.prototype, method, 0);
  ConnectedSocket()(HostileGateway.prototype, 'join', 0);
  ConnectedSocket()(HostileGateway.prototype, 'pushCircular', 0);
  Reflect.defineMetadata('design:paramtypes', [BroadcastService], HostileGateway);
  ReliableGateway({ path: '/ws' })(HostileGateway);
  return HostileGateway;
}
