/** What the `goals` bench and its server children (goals-server.ts) agree on. */
export const GOALS_EVENT = 'tick';
export const GOALS_TOKEN = 'bench-token';
export type GoalsSystem = 'reliable' | 'reliable-no-resume' | 'stock' | 'raw';

/** A server's CPU time so far, in ms: in all, and the share spent in the kernel. */
export interface CpuTime {
  cpuMs: number;
  systemMs: number;
}
