// Bundles the reconnecting client (lib/client/index.ts) into a single ESM file for browsers.
// Usage: node scripts/bundle-browser.mjs
import { build } from 'esbuild';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(root, 'lib/client/index.ts');
const outfile = resolve(root, 'dist/browser/reliable-ws-client.js');

if (!existsSync(entry)) {
  console.error(`[bundle-browser] entry point not found: ${entry}`);
  process.exit(1);
}

await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  // The map carries the sources themselves: lib/ is not in the package.
  sourcemap: true,
  sourcesContent: true,
  tsconfig: resolve(root, 'tsconfig.build.json'),
  logLevel: 'warning',
});

// Type declarations for the bundle: re-export the tsc-generated client declarations
// (dist/lib/client/index.d.ts, produced by `tsc -p tsconfig.build.json` before this step).
writeFileSync(
  outfile.replace(/\.js$/, '.d.ts'),
  "export * from '../lib/client/index.js';\n",
);

console.log(`[bundle-browser] wrote ${outfile}`);
