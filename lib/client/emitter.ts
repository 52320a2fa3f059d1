type Listener = (payload: any) => void;

/** A minimal event emitter that runs in browsers and Node alike. */
export class Emitter {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Hears every event before its own listeners (a shared worker forwarding to its tabs). */
  private relay: ((event: string, payload: unknown) => void) | undefined;

  relayTo(relay: (event: string, payload: unknown) => void): void {
    this.relay = relay;
  }

  on(event: string, listener: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  off(event: string, listener: Listener): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Calls every listener; one that throws is reported and does not stop the others or the client. */
  emit(event: string, payload?: unknown): void {
    this.relay?.(event, payload);
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(payload);
      } catch (error) {
        console.error(`ReliableWsClient: a "${event}" listener threw`, error);
      }
    }
  }
}
