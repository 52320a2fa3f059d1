/**
 * What `npm publish` would ship, read from `npm pack --dry-run` over the built dist/ (`npm test`
 * builds it first): the license, the entry points, source maps that resolve without the sources
 * of lib/, no import of the optional terminus peer outside its own entry point, no README
 * link that leaves the package, and the optional native masking that `ws` picks up.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function packedFiles(): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 60000 }, (error, stdout) => {
      if (error) return reject(error);
      const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
      resolvePromise(pack.files.map((file) => file.path));
    });
  });
}

const IMPORTS_TERMINUS = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]@nestjs\/terminus['"]/;

type ExportTarget = string | { [condition: string]: ExportTarget };

function targetsOf(target: ExportTarget): string[] {
  return typeof target === 'string' ? [target] : Object.values(target).flatMap(targetsOf);
}

describe('the published package', () => {
  let files: string[];
  beforeAll(async () => {
    files = await packedFiles();
  }, 90000);

  it('ships LICENSE (MIT), README.md and package.json', () => {
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License/);
    expect(license).toContain('nestjs-reliable-ws contributors');
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).license).toBe('MIT');
  });

  it('every target of package.json "exports" is in the package', () => {
    const { exports } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, ExportTarget> };
    expect(Object.keys(exports)).toEqual(expect.arrayContaining(['.', './client', './client/browser', './terminus']));
    const missing = Object.values(exports)
      .flatMap(targetsOf)
      .map((target) => posix.normalize(target))
      .filter((target) => !files.includes(target));
    expect(missing).toEqual([]);
  });

  it('every shipped source map resolves: it carries the content of each source it names', () => {
    const maps = files.filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    expect(maps).toContain('dist/browser/reliable-ws-client.js.map');
    const unresolved: string[] = [];
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as {
        sources: string[];
        sourcesContent?: Array<string | null>;
      };
      sources.forEach((source, i) => {
        const shipped = files.includes(posix.join(posix.dirname(map), source));
        const inline = typeof sourcesContent?.[i] === 'string' && sourcesContent[i]!.length > 0;
        if (!shipped && !inline) unresolved.push(`${map} -> ${source}`);
      });
    }
    expect(unresolved).toEqual([]);
  });

  it('only the nestjs-reliable-ws/terminus entry point imports @nestjs/terminus (an optional peer)', () => {
    const importers = files
      .filter((file) => file.endsWith('.js') && !file.startsWith('dist/lib/terminus/'))
      .filter((file) => IMPORTS_TERMINUS.test(readFileSync(join(ROOT, file), 'utf8')));
    expect(importers).toEqual([]);
    expect(readFileSync(join(ROOT, 'dist/lib/terminus/reliable-ws.health-indicator.js'), 'utf8')).toMatch(IMPORTS_TERMINUS);
  });

  it('declares bufferutil as an optional dependency, and the ws the package runs on finds its native build', () => {
    const { optionalDependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
    };
    expect(optionalDependencies?.bufferutil).toMatch(/^\d+\.\d+\.\d+$/);
    const requireFromWs = createRequire(createRequire(join(ROOT, 'lib/index.ts')).resolve('ws'));
    const bufferUtil = requireFromWs('bufferutil') as { unmask: unknown };
    const fallback = requireFromWs('bufferutil/fallback') as { unmask: unknown };
    expect(bufferUtil.unmask).toEqual(expect.any(Function));
    expect(bufferUtil.unmask).not.toBe(fallback.unmask);
  });

  it('the README links to nothing outside the package', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!);
    const local = links.filter((link) => !/^(https?:|mailto:|#)/.test(link)).map((link) => posix.normalize(link.split('#')[0]!));
    expect(local.filter((link) => !files.includes(link))).toEqual([]);
  });
});
