import { isCount, isRecord, isValidMessageId } from './message-fields.js';
import { MAX_TRANSFERS_PER_DIRECTION, type TransferId } from './transfer.js';

/** `$ready`: the session the connection serves. */
export interface ReadyData {
  sessionId: string;
  resumeToken?: string;
  resumed: boolean;
  missed: boolean;
  lastId: number;
  heartbeatMs: number;
  /**
   * On a resume, the streams the server continues (it announces them again): any other partial
   * stream the client holds will not continue (the session moved to an instance without it).
   */
  streams?: TransferId[];
  /** The largest frame the server takes (`maxPayloadBytes`): a larger message closes the connection (1009). */
  maxPayloadBytes?: number;
}

/** `$ready` data with the documented shape (used by clients), else undefined. */
export function readyDataOf(data: unknown): ReadyData | undefined {
  if (!isRecord(data)) return undefined;
  const { sessionId, resumeToken, resumed, missed, lastId, heartbeatMs, streams, maxPayloadBytes } = data;
  const valid =
    typeof sessionId === 'string' &&
    sessionId !== '' &&
    (resumeToken === undefined || typeof resumeToken === 'string') &&
    typeof resumed === 'boolean' &&
    typeof missed === 'boolean' &&
    isCount(lastId) &&
    isCount(heartbeatMs) &&
    (streams === undefined || isStreamList(streams)) &&
    (maxPayloadBytes === undefined || isCount(maxPayloadBytes));
  if (!valid) return undefined;
  return {
    sessionId,
    resumeToken,
    resumed,
    missed,
    lastId,
    heartbeatMs,
    ...(streams === undefined ? {} : { streams }),
    ...(maxPayloadBytes === undefined ? {} : { maxPayloadBytes }),
  };
}

function isStreamList(value: unknown): value is TransferId[] {
  return Array.isArray(value) && value.length <= MAX_TRANSFERS_PER_DIRECTION && value.every(isValidMessageId);
}
