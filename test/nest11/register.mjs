// `node --import ./test/nest11/register.mjs …`: resolve every `@nestjs/*` import from
// test/nest11 (see hooks.mjs).
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
