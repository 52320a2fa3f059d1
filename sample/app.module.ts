import { Module } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';
import { fileURLToPath } from 'node:url';
import { ReliableWsModule } from '../lib/index.js';
import { ChatModule } from './chat.module.js';

/** The page's files, next to this module: sample/public, or dist/sample/public once built. */
export const PUBLIC_DIR = fileURLToPath(new URL('./public', import.meta.url));

@Module({
  imports: [
    // Defaults: same-origin only (the page is served by this app), heartbeat every 30 s with a
    // 10 s grace, health endpoint at /health/ws.
    ReliableWsModule.forRoot({}),
    // `renderPath: '/'`: only `/` falls back to index.html, so unknown paths stay 404.
    ServeStaticModule.forRoot({ rootPath: PUBLIC_DIR, renderPath: '/' }),
    ChatModule,
  ],
})
export class AppModule {}
