import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The browser suite (`npm run test:browser`): needs Debian's chromium and a built dashboard, so it
 * is not part of `npm test`. One file at a time: each drives a real browser on a 2-core machine.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  // As in the root config: one graphql instance for the server the tests start.
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/dashboard/**/*.spec.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
