import type { Cluster, Redis } from 'ioredis';

/**
 * Closes a Redis connection with QUIT, so that commands sent before it are answered, but waits
 * at most `timeoutMs` for that: a Redis that does not answer (stopped, or behind a dead network)
 * is disconnected instead.
 */
export async function quitWithin(connection: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const quit = connection.quit().then(
    () => true,
    () => false,
  );
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    if (!(await Promise.race([quit, late]))) connection.disconnect();
  } finally {
    clearTimeout(timer);
  }
}
