import { Module, type DynamicModule } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReliableWsModule, type ReliableWsOptions } from '../lib/index.js';
import { ChatModule } from './chat.module.js';
import { MAX_FILE_BYTES } from './file-shelf.js';

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

/** What the sample takes from its environment. */
export interface SampleConfig {
  /** Redis for broadcast and sessions across instances; unset: in memory, one instance. */
  redisUrl?: string;
  /** Instances with the same Redis and prefix share rooms. */
  channelPrefix: string;
  /** Proxies in front (`trustProxy`), e.g. 1 behind deploy/nginx.conf; unset: none. */
  trustProxy?: number;
  /** `maxConnectionsPerIp`; unset: the module's default. */
  maxConnectionsPerIp?: number;
}

export const DEFAULT_CHANNEL_PREFIX = 'rws-sample';

/**
 * `REDIS_URL`, `CHANNEL_PREFIX`, `TRUST_PROXY` and `MAX_CONNECTIONS_PER_IP` (empty counts as
 * unset; a number that is not one is left to the module's option check, which names it).
 */
export function sampleConfigFromEnv(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const number = (value: string | undefined): number | undefined => (value?.trim() ? Number(value) : undefined);
  return {
    redisUrl: env.REDIS_URL?.trim() || undefined,
    channelPrefix: env.CHANNEL_PREFIX?.trim() || DEFAULT_CHANNEL_PREFIX,
    trustProxy: number(env.TRUST_PROXY),
    maxConnectionsPerIp: number(env.MAX_CONNECTIONS_PER_IP),
  };
}

/**
 * The module's options. Defaults otherwise: same-origin only (the page is served by this app),
 * heartbeat every 30 s with a 10 s grace, sessions resumable for 2 min, health at /health/ws.
 * With Redis, session state lives there too, so a client may resume on another instance.
 * A session may upload the largest file while it downloads another.
 */
export function reliableWsOptions(config: SampleConfig): ReliableWsOptions {
  return {
    maxTransferBytes: 2 * MAX_FILE_BYTES,
    ...(config.redisUrl ? { broadcast: { redis: config.redisUrl, channelPrefix: config.channelPrefix } } : {}),
    ...(config.trustProxy !== undefined ? { trustProxy: config.trustProxy } : {}),
    ...(config.maxConnectionsPerIp !== undefined ? { maxConnectionsPerIp: config.maxConnectionsPerIp } : {}),
  };
}

@Module({})
export class AppModule {
  /** The chat app; `config` defaults to the environment's. */
  static forRoot(config: SampleConfig = sampleConfigFromEnv()): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ReliableWsModule.forRoot(reliableWsOptions(config)),
        ServeStaticModule.forRoot(
          // `renderPath: '/'`: only `/` falls back to index.html, so unknown paths stay 404.
          { rootPath: PUBLIC_DIR, renderPath: '/' },
          // The client bundle at /client/reliable-ws-client.js (the page imports it as an ES module).
          // CLIENT_DIR has no index.html, so unknown paths under /client are 404 as well.
          { rootPath: CLIENT_DIR, serveRoot: '/client' },
        ),
        ChatModule,
      ],
    };
  }
}
