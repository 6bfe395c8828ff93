import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test files whose outcome cannot depend on the back end: pure rules (test/core) and the files
 * that start their own service on PGlite in memory (or pack the client) whatever DATABASE_URL
 * says. `npm test` with DATABASE_URL (CI's Postgres run) leaves them out: the PGlite run has them,
 * and running them twice only doubled CI's time.
 */
export const BACKEND_INDEPENDENT = [
  'test/core/**',
  'test/db/folder-lock.test.ts',
  'test/db/pglite-settings.test.ts',
  'test/db/pglite-reuse.test.ts',
  'test/sync/retry.test.ts',
  'test/db/prepared.test.ts',
  'test/server/subscription-places.test.ts',
  // The transport alone (socket keep-alive, body and pre-ack limits, CORS) and the log lines of what
  // happened: nothing in them reaches the database differently on either back end.
  'test/server/keepalive.test.ts',
  'test/server/transport-limits.test.ts',
  'test/server/activity-log.test.ts',
  'test/graphql/schema.test.ts',
  'test/server/request-memory.test.ts',
  'test/server/npm-start.test.ts',
  'test/server/env.test.ts',
  'test/client/package.test.ts',
];

export default defineConfig({
  // graphql 16 ships CJS and .mjs without an exports map: Node's ESM loader (and so Pothos and
  // yoga) takes the CJS build, vite would take the .mjs one. One instance, or its realm checks fail.
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: process.env.DATABASE_URL ? [...configDefaults.exclude, ...BACKEND_INDEPENDENT] : configDefaults.exclude,
    globalSetup: ['test/helpers/global-setup.ts'],
    // Two cores: two workers, each test file with its own database.
    pool: 'forks',
    maxWorkers: 2,
    // The files of a worker share one module graph instead of importing the whole service again
    // each (172 s of a PGlite run's 1,197 s of file time; the run 728 s -> 581 s). Each file still
    // has its own database and servers; module-level caches are keyed by database.
    isolate: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
