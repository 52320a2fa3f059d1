import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface BuiltLibrary {
  /** Absolute path of the compiled `lib/index.js`. */
  indexJs: string;
  /** tsc's own output (type errors from work in progress elsewhere do not stop the emit). */
  log: string;
  remove(): void;
}

/**
 * Compiles the current lib/ with tsc (decorator metadata included) into a private directory under
 * node_modules/.cache, so that child Node processes can import it without touching dist/. Package
 * imports from there resolve to the project's node_modules, so Nest is the very same copy.
 */
export function buildLibrary(timeoutMs = 120000): Promise<BuiltLibrary> {
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outDir = mkdtempSync(join(cache, 'rws-e2e-'));
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module" }\n');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir, '--sourceMap', 'false', '--inlineSources', 'false', '--declaration', 'false'],
      { cwd: ROOT, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const indexJs = join(outDir, 'lib', 'index.js');
        const log = `${stdout}${stderr}`;
        const remove = (): void => rmSync(outDir, { recursive: true, force: true });
        if (!existsSync(indexJs)) {
          remove();
          reject(new Error(`tsc produced no lib/index.js (${error?.message ?? 'no error'}):\n${log}`));
          return;
        }
        resolvePromise({ indexJs, log, remove });
      },
    );
  });
}
