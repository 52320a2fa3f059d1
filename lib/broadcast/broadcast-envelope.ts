/** What a broadcast is addressed to. */
export type BroadcastTarget =
  | { kind: 'all' }
  | { kind: 'room'; room: string }
  | { kind: 'client'; sessionId: string }
  | { kind: 'user'; userId: string };

export type PushEnvelope = {
  type: 'push';
  origin: string;
  /** Unique per broadcast, so that a session handed over between instances gets it once. */
  id: string;
  target: BroadcastTarget;
  event: string;
  except?: string;
  dataJson: string;
};

/** Moving a session to the instance its client resumes on (see SessionHandover). */
export type HandoverEnvelope =
  | { type: 'handover-prepare'; origin: string; request: string; sessionId: string; resumeToken: string }
  | { type: 'handover-ready'; origin: string; request: string; rooms: string[]; userId?: string }
  | { type: 'handover-commit'; origin: string; request: string }
  | { type: 'handover-done'; origin: string; request: string; key: string }
  | { type: 'handover-refused'; origin: string; request: string }
  | { type: 'adopt-offer'; origin: string; sessions: Array<{ sessionId: string; resumeToken: string }> };

/** A push, a membership change, or a handover step travelling between instances. */
export type BroadcastEnvelope =
  | PushEnvelope
  | { type: 'join' | 'leave'; origin: string; sessionId: string; room: string; request: string }
  | { type: 'done'; origin: string; request: string }
  | HandoverEnvelope;

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
