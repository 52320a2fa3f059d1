/**
 * The chat sample (sample/), in memory, as a benchmark server child: started by churn.bench.ts
 * with `--expose-gc`; see server-child.ts for the requests it answers.
 */
import { createSampleApp } from '../sample/app.js';
import { ChatGateway } from '../sample/chat.gateway.js';
import { serveAsBenchChild } from './server-child.js';

// Errors only: the library warns once per 1,000 evictions, which churn reaches in seconds.
const app = await createSampleApp({ logger: ['error'] }, { channelPrefix: 'bench-churn' });
const gateway = app.get(ChatGateway);
await serveAsBenchChild(app, { appFigures: () => ({ names: gateway.nameCount }) });
