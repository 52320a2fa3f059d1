/** What a TCP socket offers for batching writes. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Writes of one tick leave together: a socket written to more than once in a tick is corked
 * until the tick ends, then uncorked with every other one, by a single `process.nextTick`.
 */
let tick = 0;
let endScheduled = false;
let corked: Corkable[] = [];

function endTick(): void {
  endScheduled = false;
  tick++;
  const batch = corked;
  corked = [];
  for (const socket of batch) socket.uncork();
}

/** The number of the current tick: it ends when the process's next-tick queue runs. */
export function currentTick(): number {
  if (!endScheduled) {
    endScheduled = true;
    process.nextTick(endTick);
  }
  return tick;
}

/** Corks `socket` until the current tick ends. */
export function corkUntilTickEnds(socket: Corkable): void {
  currentTick();
  socket.cork();
  corked.push(socket);
}
