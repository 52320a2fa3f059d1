import { Logger } from '@nestjs/common';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CLIENT_BUNDLE, CLIENT_DIR, sampleConfigFromEnv } from './app.module.js';
import { createSampleApp } from './app.js';

const logger = new Logger('Sample');
if (!existsSync(join(CLIENT_DIR, CLIENT_BUNDLE))) {
  logger.warn(`${join(CLIENT_DIR, CLIENT_BUNDLE)} is missing: run \`npm run build\` (the page imports it)`);
}
const config = sampleConfigFromEnv();
const app = await createSampleApp({}, config);
// HOST: the address to listen on (default: every interface), e.g. 127.0.0.1 behind a local proxy.
const host = process.env.HOST?.trim();
await (host ? app.listen(process.env.PORT ?? 3000, host) : app.listen(process.env.PORT ?? 3000));
const { port } = app.getHttpServer().address() as AddressInfo;
logger.log(`Chat sample on http://${host || 'localhost'}:${port}`);
