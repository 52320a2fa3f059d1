// Bundles the client for browsers: the ESM client (lib/client/index.ts), its minified twin, and
// the SharedWorker script of the `share` option (lib/client/shared-worker.ts, a classic script).
// Usage: node scripts/bundle-browser.mjs
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(root, 'dist/browser');

const common = {
  bundle: true,
  platform: 'browser',
  target: 'es2020',
  // The map carries the sources themselves: lib/ is not in the package.
  sourcemap: true,
  sourcesContent: true,
  tsconfig: resolve(root, 'tsconfig.build.json'),
  logLevel: 'warning',
};

const bundles = [
  { entry: 'lib/client/index.ts', outfile: 'reliable-ws-client.js', format: 'esm' },
  { entry: 'lib/client/index.ts', outfile: 'reliable-ws-client.min.js', format: 'esm', minify: true },
  { entry: 'lib/client/shared-worker.ts', outfile: 'reliable-ws-shared-worker.js', format: 'iife' },
  { entry: 'lib/client/shared-worker.ts', outfile: 'reliable-ws-shared-worker.min.js', format: 'iife', minify: true },
];

await Promise.all(
  bundles.map(({ entry, outfile, ...options }) =>
    build({ ...common, ...options, entryPoints: [resolve(root, entry)], outfile: resolve(out, outfile) }),
  ),
);

// Type declarations of the client bundles: the tsc-generated client declarations
// (dist/lib/client/index.d.ts, produced by `tsc -p tsconfig.build.json` before this step).
for (const outfile of ['reliable-ws-client.d.ts', 'reliable-ws-client.min.d.ts']) {
  writeFileSync(resolve(out, outfile), "export * from '../lib/client/index.js';\n");
}

console.log(`[bundle-browser] wrote ${bundles.map(({ outfile }) => outfile).join(', ')} to ${out}`);
