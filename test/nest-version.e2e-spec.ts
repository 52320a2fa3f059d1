/**
 * Which Nest the suite runs on. `npm test` runs the e2e specs twice: on the Nest 12 dev dependencies
 * of the repository, and on the Nest 11 packages of test/nest11 (scripts/test.mjs sets
 * RWS_NEST_MAJOR=11 and maps every `@nestjs/*` import there). This spec fails if the mapping
 * silently stops working, in-process (jest) or in the child processes some specs start.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['common', 'core', 'websockets', 'platform-ws', 'platform-express', 'testing'];

function major(version: string): number {
  return Number(/\d+/.exec(version)?.[0]);
}

const rootDevDependencies = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')).devDependencies as Record<string, string>;
const EXPECTED = Number(process.env.RWS_NEST_MAJOR ?? major(rootDevDependencies['@nestjs/core']!));

describe(`Nest ${EXPECTED}`, () => {
  // Where the packages of that major are installed: the repository's own dev dependencies (12), or
  // test/nest11. The spec imports the same package twice, by name (as the specs and lib/ do) and by
  // the path of that installation, and requires both to be the very same module.
  const INSTALLED = resolve(ROOT, EXPECTED === 11 ? 'test/nest11/node_modules/@nestjs' : 'node_modules/@nestjs');

  it.each(PACKAGES)('@nestjs/%s as the specs and lib/ import it', async (name) => {
    const byName = (await import(`@nestjs/${name}`)) as Record<string, unknown>;
    const byPath = (await import(resolve(INSTALLED, name, 'index.js'))) as Record<string, unknown>;
    const exported = Object.keys(byPath).filter((key) => typeof byPath[key] === 'function');
    expect(exported.length).toBeGreaterThan(0);
    for (const key of exported) expect(byName[key]).toBe(byPath[key]);
    const { version } = JSON.parse(readFileSync(resolve(INSTALLED, name, 'package.json'), 'utf8')) as { version: string };
    expect(major(version)).toBe(EXPECTED);
  });

  it('@nestjs/* as a child Node process (the compiled library, test/support/*.mjs) imports it', async () => {
    const stdout = await new Promise<string>((resolvePromise, reject) => {
      execFile(process.execPath, [resolve(ROOT, 'test/support/nest-version.mjs'), ...PACKAGES], { timeout: 30000 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${err}`)) : resolvePromise(out),
      );
    });
    const versions = JSON.parse(stdout) as Record<string, string>;
    expect(Object.keys(versions).sort()).toEqual([...PACKAGES].sort());
    for (const version of Object.values(versions)) expect(major(version)).toBe(EXPECTED);
  });
});
