import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql 16 ships CJS and .mjs without an exports map: Node's ESM loader (and so Pothos and
  // yoga) takes the CJS build, vite would take the .mjs one. One instance, or its realm checks fail.
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Two cores: two workers, each test file with its own database.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
