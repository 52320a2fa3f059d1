// `npm run start:cluster`: the sample chat (dist/sample/main.js, built by `npm run build`) as
// several instances sharing Redis, behind nginx run from deploy/nginx.conf. One command; Ctrl-C
// stops everything. Type `r` + Enter for a rolling restart (each instance in turn gets SIGTERM,
// its clients resume on the others, then it starts again).
//
//   node scripts/cluster/start-cluster.mjs [--instances 2] [--port 8080] [--quiet]
//                                          [--entry dist/sample/main.js (the app to run)]
//   environment: REDIS_URL (default redis://127.0.0.1:6379), CHANNEL_PREFIX (default rws-sample),
//                NGINX_BIN (default /usr/sbin/nginx)
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { SAMPLE_ENTRY, startCluster } from './cluster.mjs';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '2' },
    port: { type: 'string', default: '8080' },
    quiet: { type: 'boolean', default: false },
    entry: { type: 'string', default: SAMPLE_ENTRY },
  },
});
const instances = Number(values.instances);
const port = Number(values.port);

let cluster;
let stopping = false;
async function shutdown(reason, code = 0) {
  if (stopping) return;
  stopping = true;
  console.log(`\n[cluster] ${reason}: stopping the instances (graceful) and nginx…`);
  await cluster?.stop();
  console.log('[cluster] stopped');
  process.exit(code);
}
// Ctrl-C reaches the whole process group: the instances drain on their own SIGINT, nginx stops on
// its own; stop() waits for all of them.
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  cluster = await startCluster({
    entry: resolve(values.entry),
    instances,
    port,
    channelPrefix: process.env.CHANNEL_PREFIX || 'rws-sample',
    log: values.quiet ? undefined : (line) => console.log(line),
  });
} catch (error) {
  console.error(`[cluster] could not start: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}

console.log(`[cluster] ${cluster.instances.length} instances of the sample (ports ${cluster.instances.map((i) => i.port).join(', ')}), Redis channel prefix "${cluster.channelPrefix}"`);
console.log(`[cluster] nginx (deploy/nginx.conf, prefix ${cluster.nginx.prefix})`);
console.log(`[cluster] open ${cluster.url}/   health: ${cluster.url}/health/ws`);
console.log('[cluster] r + Enter: rolling restart; Ctrl-C: stop');

let restarting = false;
process.stdin.setEncoding('utf8');
process.stdin.on('data', async (text) => {
  if (text.trim() !== 'r' || restarting || stopping) return;
  restarting = true;
  try {
    console.log('[cluster] rolling restart…');
    await cluster.rollingRestart({
      onStep: (s) => console.log(`[cluster] ${s.instance}: drained and exited in ${s.drainMs} ms (${s.ended.signal ?? `code ${s.ended.code}`}), back after ${s.downMs} ms`),
    });
    console.log('[cluster] rolling restart done');
  } catch (error) {
    console.error(`[cluster] rolling restart failed: ${error instanceof Error ? error.message : error}`);
  } finally {
    restarting = false;
  }
});
// Without a terminal (stdin closed) keep running until a signal.
process.stdin.on('end', () => undefined);
