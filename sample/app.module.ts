import { Module } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReliableWsModule } from '../lib/index.js';
import { ChatModule } from './chat.module.js';

/** The page's files, next to this module: sample/public, or dist/sample/public once built. */
export const PUBLIC_DIR = fileURLToPath(new URL('./public', import.meta.url));

/** The browser bundle of the client, as written by `npm run build` (scripts/bundle-browser.mjs). */
export const CLIENT_BUNDLE = 'reliable-ws-client.js';

/**
 * dist/browser of this package, found from the package root (the nearest folder whose
 * package.json is this package's) so that it is the same whether this module runs compiled
 * (dist/sample/) or from source (sample/, under jest). It exists once `npm run build` has run.
 */
export const CLIENT_DIR = join(packageRoot(), 'dist', 'browser');

function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dirname(dir) !== dir; dir = dirname(dir)) {
    if (packageName(join(dir, 'package.json')) === 'nestjs-reliable-ws') return dir;
  }
  return dirname(here); // not found: assume <root>/sample
}

function packageName(manifest: string): unknown {
  try {
    return existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).name : undefined;
  } catch {
    return undefined;
  }
}

@Module({
  imports: [
    // Defaults: same-origin only (the page is served by this app), heartbeat every 30 s with a
    // 10 s grace, health endpoint at /health/ws.
    ReliableWsModule.forRoot({}),
    ServeStaticModule.forRoot(
      // `renderPath: '/'`: only `/` falls back to index.html, so unknown paths stay 404.
      { rootPath: PUBLIC_DIR, renderPath: '/' },
      // The client bundle at /client/reliable-ws-client.js (the page imports it as an ES module).
      // CLIENT_DIR has no index.html, so unknown paths under /client are 404 as well.
      { rootPath: CLIENT_DIR, serveRoot: '/client' },
    ),
    ChatModule,
  ],
})
export class AppModule {}
