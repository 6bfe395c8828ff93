import { defineConfig } from 'vitest/config';

/**
 * The core's unit tests alone (test/core: pure rules, no database, no global setup), for
 * `npm run mutate`: StrykerJS breaks src/core one mutant at a time and runs these against each.
 */
export default defineConfig({
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/core/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
