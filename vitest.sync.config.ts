import { defineConfig } from 'vitest/config';

/**
 * The medium layer alone (test/sync: src/sync through its use-cases, each file on an in-memory
 * PGlite cloned from the migrated template that global-setup.ts makes once), for
 * `npm run mutate:sync`: StrykerJS breaks src/sync one mutant at a time and runs these against each.
 */
export default defineConfig({
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/sync/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
