import { Emitter } from './emitter.js';
import type { ClientState } from './reliable-ws-client.interfaces.js';

/** The state every connection a client drives keeps, and the `$state` events it emits. */
export abstract class ConnectionState {
  readonly emitter = new Emitter();
  protected currentState: ClientState = 'connecting';

  get state(): ClientState {
    return this.currentState;
  }

  protected isStopped(): boolean {
    return this.currentState === 'closed' || this.currentState === 'failed';
  }

  protected setState(state: ClientState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emitter.emit('$state', state);
  }
}
