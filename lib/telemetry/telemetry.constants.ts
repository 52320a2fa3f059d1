/**
 * The OpenTelemetry instruments of the module: public names, for dashboards and alerts.
 * Prometheus spells them with underscores (`rws.connections` → `rws_connections`), and counters
 * with a `_total` suffix (`rws_messages_received_total`).
 */
export const RWS_METRICS = {
  connections: 'rws.connections',
  sessionsDetached: 'rws.sessions.detached',
  messagesReceived: 'rws.messages.received',
  messagesSent: 'rws.messages.sent',
  errors: 'rws.errors',
  closes: 'rws.closes',
  resumes: 'rws.resumes',
  replayed: 'rws.replayed',
  handshakeRefused: 'rws.handshake.refused',
  broadcastDuration: 'rws.broadcast.duration',
  redisCanaryLag: 'rws.redis.canary.lag',
} as const;

/** The meter the instruments belong to. */
export const RWS_METER_NAME = 'nestjs-reliable-ws';

/** The Nest logger context of connection logs (refusals, closes, lifecycle). */
export const CONNECTION_LOG_CONTEXT = 'ReliableWsAdapter';
