// A client load on the sample chat, for rolling restarts: `clients` ReliableWsClients (the
// project's client, resume on) in one room; each says numbered lines one after the other, every
// client counts every `said` line it gets. Used by scripts/cluster/rolling-restart.mjs and
// test/nginx.e2e-spec.ts (types in chat-load.d.mts).
//
// Exactly once: every line whose `say` was answered `{ ok: true }` must reach every client
// exactly once (pushes replayed after a resume included), and the lines of one sender in the
// order it said them.

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/**
 * Connects the clients, waits until each has its `welcome` (it is in the room then), and starts
 * the senders. `ReliableWsClient` is the client class (from dist/lib/client or lib/client),
 * `WebSocket` the `ws` package's constructor; `localAddress(i)` optionally binds client i's
 * socket to a local address (e.g. '127.0.1.7', to look like many users to a per-IP cap).
 */
export async function startChatLoad({
  url,
  ReliableWsClient,
  WebSocket,
  clients: count = 10,
  everyMs = 100,
  room = 'lobby',
  localAddress,
  readyTimeoutMs = 20000,
  requestTimeoutMs = 20000,
}) {
  const records = [];
  for (let i = 0; i < count; i++) {
    const bound = localAddress?.(i);
    const Impl = bound
      ? class extends WebSocket {
          constructor(address, protocols) {
            super(address, protocols, { localAddress: bound });
          }
        }
      : WebSocket;
    const client = new ReliableWsClient(url, {
      WebSocket: Impl,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000, maxRetries: 200 },
      queue: { maxMessages: 10000 },
      connectTimeoutMs: 5000,
    });
    const record = { index: i, client, received: [], readies: [], closes: [], failures: [], welcomed: 0, said: [], requestErrors: [] };
    client.on('said', (data) => {
      if (data?.room === room) record.received.push(String(data.text));
    });
    client.on('welcome', () => record.welcomed++);
    client.on('$ready', (info) => record.readies.push({ resumed: info.resumed, missed: info.missed }));
    client.on('$close', (info) => record.closes.push(info.code));
    client.on('$failed', (error) => record.failures.push(String(error?.message ?? error)));
    records.push(record);
  }
  const closeAll = () => records.forEach((r) => r.client.close());

  const deadline = Date.now() + readyTimeoutMs;
  while (records.some((r) => r.welcomed === 0)) {
    if (Date.now() > deadline) {
      closeAll();
      const missing = records.filter((r) => r.welcomed === 0).length;
      throw new Error(`${missing} of ${count} clients got no welcome within ${readyTimeoutMs} ms`);
    }
    await sleep(20);
  }

  let stopping = false;
  const senders = records.map(async (record) => {
    for (let k = 0; !stopping && k < 1_000_000; k++) {
      const text = `c${record.index}-m${k}`;
      try {
        const reply = await record.client.request('say', { room, text }, { timeoutMs: requestTimeoutMs });
        if (reply?.ok === true) record.said.push(text);
        else record.requestErrors.push(`${text}: unexpected reply ${JSON.stringify(reply)}`);
      } catch (error) {
        record.requestErrors.push(`${text}: ${error?.code ?? ''} ${error?.message ?? error}`);
        if (record.client.state === 'failed' || record.client.state === 'closed') return;
      }
      await sleep(everyMs);
    }
  });

  return {
    records,
    /** Lines answered so far, all senders together. */
    confirmed: () => records.reduce((n, r) => n + r.said.length, 0),
    /**
     * Stops the senders, waits (at most `settleMs`) until every client has every answered line,
     * closes the clients and reports.
     */
    async stop({ settleMs = 10000 } = {}) {
      stopping = true;
      let timer;
      await Promise.race([Promise.all(senders), new Promise((done) => (timer = setTimeout(done, requestTimeoutMs + 5000)))]);
      clearTimeout(timer);
      const expected = records.reduce((n, r) => n + r.said.length, 0);
      const settleUntil = Date.now() + settleMs;
      while (Date.now() < settleUntil && records.some((r) => new Set(r.received).size < expected)) await sleep(50);
      closeAll();
      return chatLoadReport(records);
    },
  };
}

/**
 * Counts over the records: `lost` deliveries (an answered line a client never got), `duplicated`
 * (a line a client got more than once), `outOfOrder` (a sender's line before an earlier one),
 * plus what happened to the connections.
 */
export function chatLoadReport(records) {
  const said = records.flatMap((r) => r.said);
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  for (const record of records) {
    const counts = new Map();
    const lastBySender = new Map();
    for (const text of record.received) {
      counts.set(text, (counts.get(text) ?? 0) + 1);
      const [, sender, k] = /^c(\d+)-m(\d+)$/.exec(text) ?? [];
      if (sender === undefined) continue;
      if ((lastBySender.get(sender) ?? -1) >= Number(k)) outOfOrder++;
      lastBySender.set(sender, Number(k));
    }
    for (const text of said) if (!counts.has(text)) lost++;
    for (const n of counts.values()) if (n > 1) duplicated += n - 1;
  }
  const readies = records.flatMap((r) => r.readies);
  return {
    clients: records.length,
    said: said.length,
    deliveriesExpected: said.length * records.length,
    delivered: records.reduce((n, r) => n + r.received.length, 0),
    lost,
    duplicated,
    outOfOrder,
    requestErrors: records.flatMap((r) => r.requestErrors),
    failures: records.flatMap((r) => r.failures),
    reconnects: readies.length - records.length,
    resumed: readies.filter((r) => r.resumed).length,
    missed: readies.filter((r) => r.missed).length,
    closeCodes: records.flatMap((r) => r.closes).reduce((byCode, code) => ({ ...byCode, [code]: (byCode[code] ?? 0) + 1 }), {}),
  };
}
