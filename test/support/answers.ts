import type { Frame, TestClient } from './ws-client.js';
import { waitUntil } from './wait.js';

/** The id a server frame answers: `ref` of a reply, `data.ref` of `$ack` / `$error`. */
export function refOf(frame: Frame): unknown {
  return frame.ref ?? (frame.data as { ref?: unknown } | undefined)?.ref;
}

/**
 * Waits (bounded) until every id in `ids` has at least one answering frame among the client's
 * recorded frames, then returns the answers grouped by id (the frames stay recorded).
 */
export async function answersFor(
  client: TestClient,
  ids: Array<number | string>,
  timeoutMs = 5000,
): Promise<Map<number | string, Frame[]>> {
  const wanted = new Set(ids);
  const group = (): Map<number | string, Frame[]> => {
    const byId = new Map<number | string, Frame[]>();
    for (const frame of client.frames) {
      const ref = refOf(frame) as number | string | undefined;
      if (ref === undefined || !wanted.has(ref)) continue;
      byId.set(ref, [...(byId.get(ref) ?? []), frame]);
    }
    return byId;
  };
  await waitUntil(() => group().size === wanted.size, { timeoutMs, what: `answers to ${ids.length} ids` });
  return group();
}

/** Recorded frames of one event, optionally with an error code. */
export function framesOf(client: TestClient, event: string, code?: string): Frame[] {
  return client.frames.filter((f) => f.event === event && (code === undefined || f.data?.code === code));
}
