import type { Type } from '@nestjs/common';
import type { ReliableWsOptions } from '../../lib/index.js';
import { startApp, type TestApp } from './app.js';

/**
 * Whether the library knows the `rateLimit` option yet. Checked against the options resolver
 * up front because an unknown option makes Nest's bootstrap exit the process.
 */
async function rateLimitOptionKnown(): Promise<boolean> {
  try {
    const { resolveOptions } = (await import('../../lib/reliable-ws.options-validation.js')) as {
      resolveOptions: (options: unknown) => unknown;
    };
    resolveOptions({ rateLimit: false });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts an app like `startApp`, with the module's rate limit turned off (`rateLimit: false`)
 * for specs that send many frames on purpose (as long as the library knows that option).
 */
export async function startAppWithoutRateLimit(
  options: ReliableWsOptions,
  providers: Type[],
  extra?: Parameters<typeof startApp>[2],
): Promise<TestApp> {
  const all = (await rateLimitOptionKnown()) ? ({ ...options, rateLimit: false } as ReliableWsOptions) : options;
  return startApp(all, providers, extra);
}
