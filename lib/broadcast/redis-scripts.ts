import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { ChannelPosition, HandoverTakeBack } from './broadcast.transport.js';
import type { ChannelHistory, SequencedMessage } from './channel-sequencer.js';
import { decodeSequenced } from './channel-sequencer.js';

/**
 * Publishes in one round trip: numbers the message in its channel (epoch + offset, kept in a
 * hash), appends it to the channel's history (a stream bounded by count, trimmed by age every
 * 64 messages, and expiring with the channel's record once the channel is idle), and publishes it. KEYS: head hash, history stream. ARGV: channel, payload, epoch candidate (used
 * when the channel has no record), history size, history age in ms, '1' for sharded pub/sub.
 */
const PUBLISH = `
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local epoch = offset > 1 and redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local message = epoch .. ' ' .. offset .. ' ' .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'm', message)
if offset % 64 == 0 then
  local now = redis.call('TIME')
  redis.call('XTRIM', KEYS[2], 'MINID', '~', (tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)) - tonumber(ARGV[5]))
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if ARGV[6] == '1' then
  redis.call('SPUBLISH', ARGV[1], message)
else
  redis.call('PUBLISH', ARGV[1], message)
end
return offset
`;

/**
 * Reads a channel's head and the messages after a position, in one step: all that the history
 * holds when the head is in another epoch. KEYS: head hash, history stream. ARGV: the offset, its
 * epoch. Returns {} when the channel has no record.
 */
const READ_HISTORY = `
local head = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
if not head[1] then return {} end
local after = head[1] == ARGV[2] and tonumber(ARGV[1]) or 0
local missed = tonumber(head[2]) - after
local entries = {}
if missed > 0 then entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', missed) end
return {head[1], head[2], entries}
`;

/**
 * A session handed over between instances is kept in a hash: its snapshot and who holds it,
 * `owner` until a claimer takes it. Claiming again with the same claim returns the snapshot again,
 * so a claim whose reply was lost (and that ioredis sends again after a reconnect) still gets it.
 * KEYS: the handover key. ARGV: snapshot, ttl in ms (store); the claim (claim).
 */
const STORE_HANDOVER = `
redis.call('HSET', KEYS[1], 'snapshot', ARGV[1], 'holder', 'owner')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

const CLAIM_HANDOVER = `
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder == 'owner' then
  redis.call('HSET', KEYS[1], 'holder', ARGV[1])
elseif holder ~= ARGV[1] then
  return false
end
return redis.call('HGET', KEYS[1], 'snapshot')
`;

/** The owner takes its snapshot back unless a claimer holds it: 'back', 'claimed', or 'gone'. */
const TAKE_HANDOVER_BACK = `
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder == 'owner' then
  redis.call('DEL', KEYS[1])
  return 'back'
end
if holder then return 'claimed' end
return 'gone'
`;

type Connection = Redis | Cluster;

/** A Lua script run by its SHA1, loaded on first use (and again after a Redis restart). */
class Script {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(connection: Connection, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await connection.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return connection.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

const publishScript = new Script(PUBLISH);
const readHistoryScript = new Script(READ_HISTORY);
const storeHandoverScript = new Script(STORE_HANDOVER);
const claimHandoverScript = new Script(CLAIM_HANDOVER);
const takeHandoverBackScript = new Script(TAKE_HANDOVER_BACK);

/**
 * The keys of a channel. The channel's name is their hash tag, so that in a Redis Cluster they
 * live in the channel's slot (room names are URI-encoded, so a channel name has no braces).
 */
export function channelKeys(channel: string): [head: string, history: string] {
  return [`{${channel}}:head`, `{${channel}}:history`];
}

export interface HistoryBounds {
  historySize: number;
  historyTtlMs: number;
}

export function publishSequenced(
  connection: Connection,
  channel: string,
  payload: string,
  epochCandidate: string,
  bounds: HistoryBounds,
  sharded: boolean,
): Promise<unknown> {
  const args = [channel, payload, epochCandidate, bounds.historySize, bounds.historyTtlMs, sharded ? '1' : '0'];
  return publishScript.run(connection, channelKeys(channel), args);
}

export async function readHistory(connection: Connection, channel: string, after: ChannelPosition): Promise<ChannelHistory> {
  const reply = (await readHistoryScript.run(connection, channelKeys(channel), [after.offset, after.epoch])) as unknown[];
  if (!Array.isArray(reply) || reply.length < 3) return { head: undefined, messages: [] };
  const [epoch, offset, entries] = reply as [string, string, Array<[string, string[]]>];
  const messages: SequencedMessage[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const message = decodeSequenced(String(entries[i]?.[1]?.[1] ?? ''));
    if (message) messages.push(message);
  }
  return { head: { epoch: String(epoch), offset: Number(offset) }, messages };
}

/** The head of a channel, or undefined when nothing was published on it (or it expired). */
export async function readHead(connection: Connection, channel: string): Promise<ChannelHistory['head']> {
  const [epoch, offset] = await connection.hmget(channelKeys(channel)[0], 'epoch', 'offset');
  return epoch && offset ? { epoch, offset: Number(offset) } : undefined;
}

export async function storeHandover(connection: Connection, key: string, snapshot: string, ttlMs: number): Promise<void> {
  await storeHandoverScript.run(connection, [key], [snapshot, Math.max(1, ttlMs)]);
}

/** The snapshot, held from now on by `claim`; undefined when the owner took it back or another claim holds it. */
export async function claimHandover(connection: Connection, key: string, claim: string): Promise<string | undefined> {
  const snapshot = await claimHandoverScript.run(connection, [key], [claim]);
  return typeof snapshot === 'string' ? snapshot : undefined;
}

export async function takeHandoverBack(connection: Connection, key: string): Promise<HandoverTakeBack> {
  const outcome = await takeHandoverBackScript.run(connection, [key], []);
  return outcome === 'back' || outcome === 'claimed' ? outcome : 'gone';
}
