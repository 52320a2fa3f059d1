import { Logger } from '@nestjs/common';
import { DEFAULT_LOG_THROTTLE, LogThrottle, type LogThrottleOptions } from './log-throttle.js';
import { CONNECTION_LOG_CONTEXT } from './telemetry.constants.js';

/** Status of an upgrade refused while the server shuts down: expected, so logged at debug. */
const DRAINING_STATUS = 503;

/** Longest header or path value quoted in a log line. */
const MAX_QUOTED_LENGTH = 200;

/** A close that tells of a problem (policy, internal error, any 4xxx), logged at warn. */
export function isProblemClose(code: number): boolean {
  return code === 1008 || code === 1011 || (code >= 4000 && code <= 4999);
}

/** What JSON leaves as it is but a terminal acts on: DEL, C1 controls (8-bit escapes), line and direction marks. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A value from the client, quoted and cut short, so that it cannot forge or flood log lines. */
export function quote(value: string | undefined): string {
  if (value === undefined) return '(none)';
  const json = JSON.stringify(value.length > MAX_QUOTED_LENGTH ? `${value.slice(0, MAX_QUOTED_LENGTH)}…` : value);
  return json.replace(UNSAFE_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A session id shortened for logs: enough to follow one session, not enough to claim it. A
 * client names the session it resumes, so anything but printable ASCII shows as `?`.
 */
export function shortId(sessionId: string): string {
  return `${sessionId.slice(0, 8).replace(/[^\x21-\x7e]/g, '?')}…`;
}

/**
 * The connection logs of one adapter: refused upgrades and problem closes at warn (rate-limited
 * per status or close code), the lifecycle of connections at debug.
 */
export class ConnectionLog {
  private readonly logger = new Logger(CONNECTION_LOG_CONTEXT);
  private readonly throttle: LogThrottle;

  constructor(options: LogThrottleOptions = DEFAULT_LOG_THROTTLE) {
    this.throttle = new LogThrottle((level, message) => this.logger[level](message), options);
  }

  /** An upgrade answered with an HTTP error: warn, or debug while draining. */
  refused(status: number, message: string): void {
    const key = `upgrade refused ${status}`;
    this.throttle.log(key, status === DRAINING_STATUS ? 'debug' : 'warn', `${key}: ${message}`);
  }

  /** A connection the server closed with a problem code; `routine` ones (expired credentials) at debug. */
  closed(code: number, message: string, routine = false): void {
    const key = `closed ${code}`;
    this.throttle.log(routine ? `${key} (routine)` : key, routine ? 'debug' : 'warn', `${key}: ${message}`);
  }

  /**
   * Whether debug lines may be logged: callers skip building them when not. Nest 11 answers
   * `isLevelEnabled` with false while no levels are set, though every level is then logged.
   */
  get debugEnabled(): boolean {
    return Logger.isLevelEnabled('debug') || (Logger as unknown as { logLevels?: unknown }).logLevels === undefined;
  }

  debug(message: string): void {
    this.logger.debug(message);
  }

  dispose(): void {
    this.throttle.dispose();
  }
}
