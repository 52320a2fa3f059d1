import type { Session } from './session.js';

/**
 * The sessions that wait for a resume, oldest first, counted per client address so that the one
 * to evict is found at once: the oldest of the address holding the most, or the oldest of all
 * when no address holds more than one.
 */
export class DetachedSessions {
  private readonly all = new Set<Session>();
  private readonly byIp = new Map<string, Set<Session>>();
  /** Addresses by how many detached sessions they hold, to find the largest holder in O(1). */
  private readonly ipsByCount = new Map<number, Set<string>>();
  private maxCount = 0;

  get size(): number {
    return this.all.size;
  }

  countOf(ip: string): number {
    return this.byIp.get(ip)?.size ?? 0;
  }

  add(session: Session): void {
    if (this.all.has(session)) return;
    this.all.add(session);
    let sessions = this.byIp.get(session.ip);
    if (!sessions) {
      sessions = new Set();
      this.byIp.set(session.ip, sessions);
    }
    sessions.add(session);
    this.moveIp(session.ip, sessions.size - 1, sessions.size);
  }

  delete(session: Session): void {
    if (!this.all.delete(session)) return;
    const sessions = this.byIp.get(session.ip)!;
    sessions.delete(session);
    if (sessions.size === 0) this.byIp.delete(session.ip);
    this.moveIp(session.ip, sessions.size + 1, sessions.size);
  }

  /** The oldest detached session of an address. */
  oldestOf(ip: string): Session | undefined {
    return first(this.byIp.get(ip));
  }

  /** The session to evict first. */
  victim(): Session | undefined {
    if (this.maxCount <= 1) return first(this.all);
    return this.oldestOf(first(this.ipsByCount.get(this.maxCount))!);
  }

  private moveIp(ip: string, from: number, to: number): void {
    if (from > 0) {
      const ips = this.ipsByCount.get(from)!;
      ips.delete(ip);
      if (ips.size === 0) {
        this.ipsByCount.delete(from);
        if (this.maxCount === from) this.maxCount = to;
      }
    }
    if (to > 0) {
      let ips = this.ipsByCount.get(to);
      if (!ips) {
        ips = new Set();
        this.ipsByCount.set(to, ips);
      }
      ips.add(ip);
      if (to > this.maxCount) this.maxCount = to;
    }
  }
}

function first<T>(items: Set<T> | undefined): T | undefined {
  return items?.values().next().value;
}
