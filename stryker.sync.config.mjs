// `npm run mutate:sync`: mutation testing of src/sync against the medium layer (test/sync), the
// check that the tests of the write path, the pull and the flush fail when its code is broken.
// PGlite only: each test file clones the migrated template in memory (no Postgres, no spawned
// server), so a mutant costs the covering tests' time alone. The property tests run fewer cases
// here than in CI (MODEL_RUNS, SUBSET_MODEL_RUNS, PERMUTATION_RUNS, LAW_RUNS, EARLY_FACTS_RUNS):
// a mutant they catch fails within the first few, and at their CI counts the permutations and the
// batch law alone were 32 s of the suite's 40, paid again by every mutant that survives them (most
// of batch-store and submit-changes are covered by every test).
// The report lands in .tmp/mutation-sync. One file: `npm run mutate:sync -- --mutate src/sync/x.ts`.
delete process.env.DATABASE_URL;
process.env.MODEL_RUNS ??= '8';
process.env.SUBSET_MODEL_RUNS ??= '8';
process.env.PERMUTATION_RUNS ??= '8';
process.env.LAW_RUNS ??= '8';
process.env.EARLY_FACTS_RUNS ??= '8';

import core from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...core,
  vitest: { configFile: 'vitest.sync.config.ts' },
  // What test/sync drives (the write path, the flush, the pull, local ids, subsets): the rest of
  // src/sync (tokens, webhooks, the reviewer's stores, stats) is reached through the API tests
  // (test/graphql, test/server), which start servers and are too slow to run once per mutant.
  // subset-states.ts too: only the subscriptions' subset events read it (src/graphql/subset-events.ts),
  // so test/sync never calls it and its 18 mutants were all NoCoverage.
  mutate: [
    'src/sync/batch-store.ts',
    'src/sync/submit-changes.ts',
    'src/sync/flush-backlog.ts',
    'src/sync/changes-since.ts',
    'src/sync/local-ids.ts',
    'src/sync/retry.ts',
    'src/sync/subset-sql.ts',
    'src/sync/subset-moves.ts',
    'src/sync/webhook-outbox.ts',
  ],
  // Static mutants (module-level constants: LOCK, FORCE_BATCH, PULL_HORIZON, the retry codes) are
  // evaluated once at import, so each one reruns the whole suite in a fresh process (~70 s): a
  // few dozen of them were a third of the run. Ignored, they stay in the report as such.
  ignoreStatic: true,
  // Only the mutants whose code or covering tests changed since the last run are tested again;
  // `npm run mutate:sync -- --force` tests all (do that after changing a test helper: a change
  // outside the test files themselves is not seen).
  incremental: true,
  incrementalFile: '.tmp/mutation-sync/incremental.json',
  // Not copied into the sandbox: .tmp holds the PGlite template folder (a thousand files) and the
  // reports; the tests make their own template.
  ignorePatterns: ['/.tmp', '/dist', '/data'],
  htmlReporter: { fileName: '.tmp/mutation-sync/index.html' },
  jsonReporter: { fileName: '.tmp/mutation-sync/report.json' },
  tempDirName: '.tmp/stryker-sync',
  // A mutant that makes a test loop (a retry that never ends) is cut off, and counted killed
  // (timeout): after twice its tests' time and 10 s (20 s made each of them cost half a minute).
  timeoutMS: 10_000,
  timeoutFactor: 2,
};
