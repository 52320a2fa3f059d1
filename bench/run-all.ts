/**
 * Runs every benchmark in sequence: `npm run bench` compiles lib/ and bench/ to dist-bench and
 * runs this file. Each bench module exports `run()`; add new ones to the list below.
 * `node dist-bench/bench/run-all.js <name> [<name> …]` runs only the named ones.
 *
 * Environment: REDIS_URL (default redis://127.0.0.1:6379; broadcast-redis is skipped without
 * one), BENCH_SYSTEMS=word,… (only the compared systems whose name contains a word),
 * BENCH_FANOUT_CLIENTS (default 10000), BENCH_FANOUT_PROCESSES (client processes, default 4),
 * BENCH_SCALE_INSTANCES (default 5), BENCH_SCALE_CONNECTIONS (per instance, default 19000).
 * Results go to stdout only.
 */
const benches: Array<{ name: string; load: () => Promise<{ run: () => Promise<unknown> | unknown }> }> = [
  { name: 'interceptors', load: () => import('./interceptors.bench.js') },
  { name: 'client-queue', load: () => import('./client-queue.bench.js') },
  { name: 'adapter-roundtrip', load: () => import('./adapter-roundtrip.bench.js') },
  { name: 'broadcast-redis', load: () => import('./broadcast-redis.bench.js') },
  { name: 'redis-faults', load: () => import('./redis-faults.bench.js') },
  { name: 'fanout-local', load: () => import('./fanout-local.bench.js') },
  { name: 'reconnect-storm', load: () => import('./reconnect-storm.bench.js') },
  { name: 'resume', load: () => import('./resume.bench.js') },
  { name: 'adoption', load: () => import('./adoption.bench.js') },
  { name: 'churn', load: () => import('./churn.bench.js') },
  { name: 'detached-memory', load: () => import('./detached-memory.bench.js') },
  { name: 'transfer', load: () => import('./transfer.bench.js') },
  { name: 'scale', load: () => import('./scale.bench.js') },
  { name: 'goals', load: () => import('./goals.bench.js') },
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !benches.some((bench) => bench.name === name));
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${benches.map((bench) => bench.name).join(', ')}`);
  }
  const selected = wanted.length === 0 ? benches : benches.filter((bench) => wanted.includes(bench.name));
  const started = Date.now();
  for (const bench of selected) {
    const module = await bench.load();
    await module.run();
  }
  console.log(`\n${wanted.length === 0 ? 'all benchmarks' : selected.map((bench) => bench.name).join(', ')} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().then(
  // Servers and Redis connections are closed by each bench; exit anyway so that nothing left over keeps the process alive.
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
