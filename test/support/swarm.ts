import { fork, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), 'conn-swarm.mjs');

export interface SwarmMessage {
  type: 'opened' | 'all-closed' | 'status';
  opened?: number;
  failed?: number;
  closed?: number;
  errors?: string[];
  codes?: Record<string, number>;
}

/** A child process holding many `ws` client connections (see conn-swarm.mjs). */
export class Swarm {
  readonly child: ChildProcess;
  readonly messages: SwarmMessage[] = [];
  private readonly waiters: Array<() => void> = [];
  exited = false;

  constructor(url: string, count: number, { concurrency = 100, lifetimeMs = 150000 } = {}) {
    this.child = fork(SCRIPT, [url, String(count), String(concurrency), String(lifetimeMs)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: SwarmMessage) => {
      this.messages.push(message);
      this.wake();
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  /** Waits for the first message of a type (bounded). */
  waitFor(type: SwarmMessage['type'], timeoutMs: number): Promise<SwarmMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`swarm: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        const found = this.messages.find((m) => m.type === type);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else if (this.exited) {
          clearTimeout(timer);
          reject(new Error(`swarm exited before "${type}"`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Asks for the current counts (bounded). */
  async status(timeoutMs = 5000): Promise<SwarmMessage> {
    this.messages.splice(0, this.messages.length, ...this.messages.filter((m) => m.type !== 'status'));
    this.child.send({ type: 'report' });
    return this.waitFor('status', timeoutMs);
  }

  /** Ends the child: terminates its sockets and waits for it to exit (bounded), then kills it. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      this.child.send({ type: 'terminate-all' });
    } catch {
      // channel already closed
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
