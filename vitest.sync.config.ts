import { defineConfig } from 'vitest/config';

/**
 * The medium layer alone (test/sync: src/sync through its use-cases, each file on an in-memory
 * PGlite: the migrated template global-setup.ts makes once, loaded once per worker and reset between
 * files), for
 * `npm run mutate:sync`: StrykerJS breaks src/sync one mutant at a time and runs these against each.
 */
export default defineConfig({
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/sync/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/fixed-seed.ts'],
    pool: 'forks',
    // The files share one module graph (src, Drizzle, PGlite's wasm) instead of each importing it
    // afresh: the suite once per mutant took 44 s isolated, 30 s not (StrykerJS's runner runs the
    // files one after the other in one worker). Each file still opens its own database.
    isolate: false,
    // One PGlite per worker, put back as the template left it between files (test/helpers/database.ts).
    env: { PGLITE_REUSE: '1' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
