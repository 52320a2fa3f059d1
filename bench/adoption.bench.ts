/**
 * Graceful shutdown with many sessions left behind (a benchmark, not a test): instance A holds
 * ADOPTION_SESSIONS detached sessions (each with a few pushes) and offers them for adoption; B
 * (and, in the second row, C too) takes them over through Redis. Measured: the time from the
 * offer to the last session taken, the handover messages on the bus per session, and sessions
 * claimed twice (none: each session is offered to one instance).
 *
 * Run with `npm run bench` (or `node dist-bench/bench/run-all.js adoption`).
 */
import 'reflect-metadata';
import { Redis } from 'ioredis';
import { BroadcastService, ReliableGateway, SessionRegistry } from '../lib/index.js';
import { preparePush } from '../lib/protocol/index.js';
import { hashSecret } from '../lib/session/index.js';
import { fmtInt, fmtMs, printTable, REDIS_URL, startReliableApp, uniquePrefix, within, type BenchApp } from './bench-support.js';

const ADOPTION_SESSIONS = 10_000;
const PUSHES_PER_SESSION = 3;

@ReliableGateway({ path: '/ws' })
class AdoptionBenchGateway {}

interface AdoptionRow {
  adopters: number;
  offerMs: number;
  taken: number;
  prepares: number;
  claimedTwice: number;
}

async function adoption(adopters: number): Promise<AdoptionRow> {
  const prefix = uniquePrefix('adoption');
  const options = { broadcast: { redis: REDIS_URL, channelPrefix: prefix } };
  const leaving = await startReliableApp(options, [AdoptionBenchGateway]);
  const others: BenchApp[] = [];
  for (let k = 0; k < adopters; k++) others.push(await startReliableApp(options, [AdoptionBenchGateway]));
  const listener = new Redis(REDIS_URL);
  const prepares = new Map<string, number>();
  listener.on('message', (_channel: string, message: string) => {
    const match = /"type":"handover-prepare".*?"sessionId":"([^"]+)"/.exec(message);
    if (match) prepares.set(match[1], (prepares.get(match[1]) ?? 0) + 1);
  });
  await listener.subscribe(`${prefix}:direct`);
  try {
    const registry = leaving.app.get(SessionRegistry);
    for (let k = 0; k < ADOPTION_SESSIONS; k++) {
      const session = registry.adopt({
        id: `bench-${k}`,
        resumeTokenHash: hashSecret(`token-${k}`),
        principal: null,
        lastSeq: 0,
        lastId: 0,
        ackedSeq: 0,
        rooms: [],
        pushes: [],
        answers: [],
        ip: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
      });
      for (let n = 1; n <= PUSHES_PER_SESSION; n++) session?.push(preparePush('tick', String(n), `bench:${k}:${n}`));
    }
    const startedAt = performance.now();
    await within(leaving.app.get(BroadcastService).handOverSessions(60_000), 70_000, 'the offer');
    const offerMs = performance.now() - startedAt;
    const taken = others.reduce((sum, other) => sum + [...other.app.get(SessionRegistry).allSessions()].length, 0);
    return {
      adopters,
      offerMs,
      taken,
      prepares: [...prepares.values()].reduce((sum, count) => sum + count, 0),
      claimedTwice: [...prepares.values()].filter((count) => count > 1).length,
    };
  } finally {
    listener.disconnect();
    for (const app of [leaving, ...others]) await app.close();
  }
}

export async function run(): Promise<AdoptionRow[]> {
  console.log(`\n## adoption: graceful shutdown offers ${fmtInt(ADOPTION_SESSIONS)} detached sessions through Redis\n`);
  const rows = [await adoption(1), await adoption(2)];
  printTable(
    ['adopting instances', 'offer to last taken ms', 'sessions taken', 'prepares on the bus', 'claimed twice'],
    rows.map((row) => [String(row.adopters), fmtMs(row.offerMs, 0), fmtInt(row.taken), fmtInt(row.prepares), fmtInt(row.claimedTwice)]),
  );
  return rows;
}
