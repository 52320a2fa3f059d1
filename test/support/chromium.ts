import { Controller, Get, Param, Res, type Type } from '@nestjs/common';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { CLIENT_BUNDLE, CLIENT_DIR } from '../../sample/app.module.js';

/** Debian's Chromium (.ci/run installs it); playwright-core brings no browser of its own. */
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether dist/browser has the bundle, newer than every source file of the client and protocol. */
function isBundleFresh(): boolean {
  const bundle = join(CLIENT_DIR, CLIENT_BUNDLE);
  if (!existsSync(bundle)) return false;
  const builtAt = statSync(bundle).mtimeMs;
  const lib = fileURLToPath(new URL('../../lib/', import.meta.url));
  return ['client', 'protocol'].every((dir) =>
    readdirSync(join(lib, dir))
      .filter((file) => file.endsWith('.ts'))
      .every((file) => statSync(join(lib, dir, file)).mtimeMs <= builtAt),
  );
}

/**
 * `npm test` builds first (pretest); a lone jest run may not have, or may find bundles older
 * than the client's sources: bundles just the client then.
 */
export function ensureBrowserBundles(): void {
  if (isBundleFresh()) return;
  const script = fileURLToPath(new URL('../../scripts/bundle-browser.mjs', import.meta.url));
  execFileSync(process.execPath, [script], { stdio: 'ignore', timeout: 60000 });
}

/** Headless Chromium with the flags this machine needs (no network beyond loopback). */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
}

/** The browser bundles a test page may import, served under /client/. */
const BUNDLES = new Set(['reliable-ws-client.js', 'reliable-ws-shared-worker.js']);

interface PageResponse {
  type(type: string): { send(body: string): void };
  sendFile(path: string): void;
  sendStatus(status: number): void;
}

/** A controller serving a test page at `/<name>` and the browser bundles at `/client/<file>`. */
export function testPageController(name: string, html: string): Type {
  @Controller()
  class TestPageController {
    @Get(name)
    page(@Res() response: PageResponse): void {
      response.type('html').send(html);
    }

    @Get('client/:file')
    bundle(@Param('file') file: string, @Res() response: PageResponse): void {
      if (BUNDLES.has(file)) response.sendFile(join(CLIENT_DIR, file));
      else response.sendStatus(404);
    }
  }
  return TestPageController;
}
