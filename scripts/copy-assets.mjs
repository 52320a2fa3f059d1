// Copies static sample assets (sample/public/**) to dist/sample/public, if present.
// Usage: node scripts/copy-assets.mjs
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = resolve(root, 'sample/public');
const dest = resolve(root, 'dist/sample/public');

if (!existsSync(src)) {
  console.log('[copy-assets] sample/public not present, nothing to copy');
  process.exit(0);
}

rmSync(dest, { recursive: true, force: true });
mkdirSync(dirname(dest), { recursive: true });
cpSync(src, dest, { recursive: true });
console.log(`[copy-assets] copied ${src} -> ${dest}`);
