// `npm test`: runs the jest suite on Nest 12 (the repository's dev dependencies), then the e2e
// suite on Nest 11 (test/nest11), and fails if either failed. Arguments go to both jest runs
// (`npm test -- test/resume.e2e-spec.ts`). `--nest=12` or `--nest=11` runs only one of them
// (`npm run test:nest11` is `--nest=11`). Run after `npm run build` (`npm test` builds first).
//
// The Nest 11 run installs test/nest11 (`npm ci`, only when its node_modules is missing or was
// installed from another package-lock.json), uses jest.nest11.config.js, which maps every
// `@nestjs/*` import to test/nest11, and puts test/nest11/register.mjs into NODE_OPTIONS so that
// the child Node processes the specs start resolve `@nestjs/*` there too.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NEST11 = join(ROOT, 'test', 'nest11');
const JEST = join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');

const only = process.argv.slice(2).find((arg) => arg.startsWith('--nest='))?.slice('--nest='.length);
if (only !== undefined && only !== '11' && only !== '12') {
  console.error(`[test] --nest=${only}: expected 11 or 12`);
  process.exit(2);
}
const jestArgs = process.argv.slice(2).filter((arg) => !arg.startsWith('--nest='));
const workers = jestArgs.some((arg) => /^(--maxWorkers|-w$|--runInBand$|-i$)/.test(arg)) ? [] : ['--maxWorkers=2'];

function jest(config, env, extra = []) {
  const run = spawnSync(process.execPath, ['--experimental-vm-modules', JEST, '--config', config, ...workers, ...extra, ...jestArgs], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  return run.status ?? 1;
}

function installNest11() {
  const lock = readFileSync(join(NEST11, 'package-lock.json'), 'utf8');
  const stamp = join(NEST11, 'node_modules', '.installed-from-lock');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === lock) return;
  console.log('[test] npm ci in test/nest11 (the Nest 11 packages)');
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: NEST11, stdio: 'inherit', shell: process.platform === 'win32' });
  if (npm.status !== 0) process.exit(npm.status ?? 1);
  writeFileSync(stamp, lock);
}

const failed = [];
if (only !== '11') {
  console.log('[test] Nest 12');
  if (jest(join(ROOT, 'jest.config.js'), {}) !== 0) failed.push('Nest 12');
}
if (only !== '12') {
  installNest11();
  console.log('[test] Nest 11 (the e2e suite, on test/nest11)');
  const hook = `--import=${pathToFileURL(join(NEST11, 'register.mjs')).href}`;
  const nodeOptions = [process.env.NODE_OPTIONS, hook].filter(Boolean).join(' ');
  // A filter that only names unit specs (lib/) matches nothing in the Nest 11 run: not a failure.
  const filtered = jestArgs.some((arg) => !arg.startsWith('-'));
  const extra = filtered ? ['--passWithNoTests'] : [];
  if (jest(join(ROOT, 'jest.nest11.config.js'), { NODE_OPTIONS: nodeOptions, RWS_NEST_MAJOR: '11' }, extra) !== 0) failed.push('Nest 11');
}
if (failed.length > 0) {
  console.error(`[test] failed on ${failed.join(' and ')}`);
  process.exit(1);
}
