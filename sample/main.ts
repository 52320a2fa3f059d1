import { Logger } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { createSampleApp } from './app.js';

const app = await createSampleApp();
await app.listen(process.env.PORT ?? 3000);
const { port } = app.getHttpServer().address() as AddressInfo;
new Logger('Sample').log(`Chat sample on http://localhost:${port}`);
