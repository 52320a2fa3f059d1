/**
 * Jest (ESM) configuration.
 * Run with: node --experimental-vm-modules node_modules/jest/bin/jest.js
 *
 * ts-jest transpiles each file in isolation (tsconfig.json has `isolatedModules: true`),
 * which still emits decorator metadata (emitDecoratorMetadata) but does not type-check;
 * use `npm run typecheck` for types.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  // Jest refuses to start if a root is missing, so only list the ones that exist.
  roots: ['lib', 'test']
    .filter((dir) => existsSync(resolve(here, dir)))
    .map((dir) => `<rootDir>/${dir}`),
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/dist/', '<rootDir>/dist-bench/'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        useESM: true,
        tsconfig: '<rootDir>/tsconfig.json',
      },
    ],
  },
  testTimeout: 30000,
  // Jest's ESM mode keeps every test file's module graph (Nest, ioredis …) alive in its worker:
  // after 30 files a worker holds 0.6–0.9 GB of heap and takes longer than jest's 500 ms grace to
  // exit, so jest reported "a worker process has failed to exit gracefully" although no handle
  // was left open. A worker past this much heap between files is replaced by a fresh one.
  workerIdleMemoryLimit: '300MB',
};
