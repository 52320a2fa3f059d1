// Node module-resolution hook for the Nest 11 run (registered by register.mjs, which
// scripts/test.mjs passes to every Node process through NODE_OPTIONS): every `@nestjs/*`
// import is resolved from this folder, so child processes that import the compiled library or a
// test/support/*.mjs helper load the Nest 11 packages installed here, as jest's moduleNameMapper
// does in-process. Everything else (rxjs, reflect-metadata, ws, ...) resolves as usual, to the
// repository's single copies.
const NEST11 = new URL('./package.json', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('@nestjs/')) {
    return nextResolve(specifier, { ...context, parentURL: NEST11 });
  }
  return nextResolve(specifier, context);
}
