/**
 * The last `capacity` ids seen, to tell a message that arrives twice: ioredis sends a command
 * again after a reconnect when its reply was lost, so a broadcast may be published twice.
 */
export class RecentIds {
  private readonly ids = new Set<string>();
  private readonly ring: Array<string | undefined>;
  private next = 0;

  constructor(private readonly capacity: number) {
    this.ring = new Array<string | undefined>(capacity);
  }

  /** Remembers `id`; false when it is among the last `capacity` remembered. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    const forgotten = this.ring[this.next];
    if (forgotten !== undefined) this.ids.delete(forgotten);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.ids.add(id);
    return true;
  }
}
