/** What a broadcast is addressed to. */
export type BroadcastTarget =
  | { kind: 'all' }
  | { kind: 'room'; room: string }
  | { kind: 'client'; sessionId: string }
  | { kind: 'user'; userId: string };

/** A push or a membership change travelling between instances. */
export type BroadcastEnvelope =
  | { type: 'push'; origin: string; target: BroadcastTarget; event: string; except?: string; dataJson: string }
  | { type: 'join' | 'leave'; origin: string; sessionId: string; room: string; request: string }
  | { type: 'done'; origin: string; request: string };

/**
 * The header travels as JSON, the payload as the JSON it already is, after a newline (which
 * JSON text never contains unescaped): the payload is not serialised again for Redis, and is
 * used as is on the receiving side.
 */
export function encodeEnvelope(envelope: BroadcastEnvelope): string {
  if (envelope.type !== 'push') return JSON.stringify(envelope);
  const { dataJson, ...header } = envelope;
  return `${JSON.stringify(header)}\n${dataJson}`;
}

export function decodeEnvelope(payload: string): BroadcastEnvelope | undefined {
  try {
    const newline = payload.indexOf('\n');
    if (newline === -1) return JSON.parse(payload) as BroadcastEnvelope;
    const header = JSON.parse(payload.slice(0, newline)) as Omit<Extract<BroadcastEnvelope, { type: 'push' }>, 'dataJson'>;
    return { ...header, dataJson: payload.slice(newline + 1) };
  } catch {
    return undefined;
  }
}
