/**
 * Runs every benchmark in sequence: `npm run bench` compiles lib/ and bench/ to dist-bench and
 * runs this file. Each bench module exports `run()`; add new ones to the list below.
 */
const benches: Array<{ name: string; load: () => Promise<{ run: () => Promise<unknown> | unknown }> }> = [
  { name: 'interceptors', load: () => import('./interceptors.bench.js') },
];

async function main(): Promise<void> {
  const started = Date.now();
  for (const bench of benches) {
    const module = await bench.load();
    await module.run();
  }
  console.log(`\nall benchmarks done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
