/**
 * The e2e suite (test/) against Nest 11: the second half of `npm test` (scripts/test.mjs), or
 * alone with `npm run test:nest11`. The unit specs of lib/ and test/package.e2e-spec.ts (the
 * packed files) do not depend on the Nest version and run on Nest 12 only.
 *
 * Every `@nestjs/*` import (from the tests, from lib/ and from the Nest packages themselves) goes
 * to the Nest 11 packages installed in test/nest11 (its own package-lock.json); rxjs,
 * reflect-metadata, class-validator and the rest stay the repository's single copies, which the
 * Nest 11 packages find by walking up from test/nest11 (that folder installs no peers; two rxjs
 * would break Nest's Observable checks). lib/ uses the root's ws; @nestjs/platform-ws 11 has its
 * own copy of the same version (an override in test/nest11/package.json).
 * Child processes get the same mapping from test/nest11/register.mjs through NODE_OPTIONS, which
 * scripts/test.mjs sets (with RWS_NEST_MAJOR=11, which test/nest-version.e2e-spec.ts checks).
 */
import base from './jest.config.js';

const NEST11 = '<rootDir>/test/nest11/node_modules/@nestjs';

/** @type {import('jest').Config} */
export default {
  ...base,
  roots: ['<rootDir>/test'],
  testPathIgnorePatterns: [...base.testPathIgnorePatterns, '<rootDir>/test/package\\.e2e-spec\\.ts$'],
  moduleNameMapper: {
    '^@nestjs/([^/]+)$': `${NEST11}/$1`,
    '^@nestjs/([^/]+)/(.+)$': `${NEST11}/$1/$2`,
    ...base.moduleNameMapper,
  },
};
