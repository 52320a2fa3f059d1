/**
 * The package's dependency rules (see the README's "Layout"): `protocol/` at the bottom with no
 * Node or Nest imports, `client/` on `protocol/` alone, nothing in `lib/` importing the public
 * face `lib/index.ts`, and no import circle among the modules (type-only imports aside).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const LIB = dirname(fileURLToPath(import.meta.url));

interface Module {
  path: string;
  /** Imports that load code at run time: relative ones resolved to `.ts` paths, others as written. */
  imports: string[];
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

function runtimeImports(path: string): string[] {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest);
  const imports: string[] = [];
  for (const statement of file.statements) {
    let specifier: ts.Expression | undefined;
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      const typeOnly =
        clause?.isTypeOnly ||
        (clause && !clause.name && clause.namedBindings && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.every((e) => e.isTypeOnly));
      if (!typeOnly) specifier = statement.moduleSpecifier;
    } else if (ts.isExportDeclaration(statement) && !statement.isTypeOnly) {
      specifier = statement.moduleSpecifier;
    }
    if (!specifier || !ts.isStringLiteral(specifier)) continue;
    const text = specifier.text;
    imports.push(text.startsWith('.') ? resolve(dirname(path), text.replace(/\.js$/, '.ts')) : text);
  }
  return imports;
}

const modules: Module[] = sources(LIB).map((path) => ({ path, imports: runtimeImports(path) }));
const name = (path: string): string => relative(LIB, path);

function cycles(): string[] {
  const graph = new Map(modules.map((m) => [m.path, m.imports.filter((i) => i.startsWith(LIB))]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[] = [];
  const visit = (path: string): void => {
    state.set(path, 'open');
    stack.push(path);
    for (const next of graph.get(path) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map(name).join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(path, 'done');
  };
  for (const { path } of modules) if (!state.has(path)) visit(path);
  return found;
}

describe('layering of lib/', () => {
  it('has no import circle', () => {
    expect(cycles()).toEqual([]);
  });

  it('protocol/ imports nothing but protocol/ (no Node, no Nest, no other concern)', () => {
    const outside = modules
      .filter((m) => name(m.path).startsWith('protocol/'))
      .flatMap((m) => m.imports.filter((i) => !i.startsWith(join(LIB, 'protocol/'))).map((i) => `${name(m.path)} imports ${i}`));
    expect(outside).toEqual([]);
  });

  it('client/ imports only client/ and protocol/', () => {
    const outside = modules
      .filter((m) => name(m.path).startsWith('client/'))
      .flatMap((m) =>
        m.imports
          .filter((i) => !i.startsWith(join(LIB, 'client/')) && !i.startsWith(join(LIB, 'protocol/')))
          .map((i) => `${name(m.path)} imports ${i.startsWith(LIB) ? name(i) : i}`),
      );
    expect(outside).toEqual([]);
  });

  it('nothing in lib/ imports the public face lib/index.ts', () => {
    const face = join(LIB, 'index.ts');
    expect(modules.filter((m) => m.imports.includes(face)).map((m) => name(m.path))).toEqual([]);
  });
});
