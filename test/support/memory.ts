import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryAfterGc {
  rss: number;
  heapUsed: number;
}

let gc: (() => void) | undefined;

/** Node's `gc()`, made available at run time (Jest starts its workers without `--expose-gc`). */
function collector(): () => void {
  if (!gc) {
    setFlagsFromString('--expose_gc');
    gc = runInNewContext('gc') as () => void;
  }
  return gc;
}

/** This process's memory right after a full garbage collection. */
export function memoryAfterGc(): MemoryAfterGc {
  collector()();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}
