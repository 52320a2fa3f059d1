// Prints {"<name>": "<version>"} of the @nestjs/<name> packages this Node process imports
// (resolved from test/support, as the other *.mjs helpers and the compiled library do).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const versions = {};
for (const name of process.argv.slice(2)) {
  let dir = dirname(fileURLToPath(import.meta.resolve(`@nestjs/${name}`)));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== `@nestjs/${name}`) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json of @nestjs/${name}`);
    dir = parent;
  }
  versions[name] = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
}
process.stdout.write(JSON.stringify(versions));
