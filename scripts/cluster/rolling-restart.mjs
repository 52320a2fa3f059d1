// `npm run cluster:rolling-restart`: starts the sample as 2 instances behind nginx (as
// `npm run start:cluster` does, on free ports), runs a client load through nginx (clients of
// dist/lib/client with resume: each says numbered lines in the lobby and counts every line it
// gets), restarts the instances one by one with SIGTERM while the load runs, and prints how many
// deliveries were lost or duplicated. Exit code 0 only for 0 lost, 0 duplicated, 0 out of order.
//
//   node scripts/cluster/rolling-restart.mjs [--instances 2] [--clients 20] [--every-ms 100]
//   environment: REDIS_URL (default redis://127.0.0.1:6379), NGINX_BIN
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { startChatLoad } from './chat-load.mjs';
import { ROOT, startCluster } from './cluster.mjs';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '2' },
    clients: { type: 'string', default: '20' },
    'every-ms': { type: 'string', default: '100' },
    verbose: { type: 'boolean', default: false },
  },
});

const { ReliableWsClient } = await import(pathToFileURL(join(ROOT, 'dist', 'lib', 'client', 'index.js')).href);
const log = (line) => console.log(`[rolling-restart] ${line}`);

let cluster;
let exitCode = 1;
process.on('SIGINT', () => void cluster?.stop().then(() => process.exit(130)));
try {
  cluster = await startCluster({
    instances: Number(values.instances),
    channelPrefix: `rws-rolling-${process.pid}-${Date.now()}`,
    log: values.verbose ? console.log : undefined,
  });
  log(`${cluster.instances.length} instances behind nginx at ${cluster.url}`);
  const load = await startChatLoad({
    url: cluster.wsUrl,
    ReliableWsClient,
    WebSocket,
    clients: Number(values.clients),
    everyMs: Number(values['every-ms']),
  });
  log(`${load.records.length} clients in the lobby, saying a line every ${values['every-ms']} ms each`);
  await new Promise((done) => setTimeout(done, 2000));
  const steps = await cluster.rollingRestart({
    onStep: (s) =>
      log(`${s.instance}: SIGTERM, drained and exited in ${s.drainMs} ms (${s.ended.signal ?? `code ${s.ended.code}`}), back after ${s.downMs} ms; ${load.confirmed()} lines said so far`),
  });
  await new Promise((done) => setTimeout(done, 2000));
  const report = await load.stop();
  log(`restarted ${steps.length} instances`);
  log(`lines said: ${report.said}; deliveries expected ${report.deliveriesExpected}, delivered ${report.delivered}`);
  log(`reconnects ${report.reconnects} (resumed ${report.resumed}, missed ${report.missed}); close codes ${JSON.stringify(report.closeCodes)}`);
  if (report.requestErrors.length) log(`request errors: ${report.requestErrors.slice(0, 5).join('; ')}${report.requestErrors.length > 5 ? ' …' : ''}`);
  log(`lost: ${report.lost}, duplicated: ${report.duplicated}, out of order: ${report.outOfOrder}`);
  exitCode = report.lost === 0 && report.duplicated === 0 && report.outOfOrder === 0 && report.said > 0 ? 0 : 1;
} catch (error) {
  console.error(`[rolling-restart] failed: ${error instanceof Error ? error.stack : error}`);
} finally {
  await cluster?.stop();
}
process.exit(exitCode);
