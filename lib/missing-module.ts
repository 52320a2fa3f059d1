/**
 * The error of a piece that needs `ReliableWsModule` in an app that does not import it (a
 * `@ReliableGateway` without `ReliableWsModule.forRoot()`, an adapter without the module), so that
 * bootstrap names the line to add instead of failing on an unresolved dependency.
 */
export function missingModuleError(what: string): Error {
  return new Error(
    `${what} needs ReliableWsModule: add ReliableWsModule.forRoot() (or forRootAsync()) to the imports of your root module`,
  );
}
