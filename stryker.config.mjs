// `npm run mutate`: mutation testing of src/core against its unit tests (test/core), the check
// that each rule's tests fail when the rule is broken. The report lands in .tmp/mutation.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.core.config.ts' },
  mutate: ['src/core/**/*.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: '.tmp/mutation/index.html' },
  jsonReporter: { fileName: '.tmp/mutation/report.json' },
  tempDirName: '.tmp/stryker',
  cleanTempDir: 'always',
  timeoutMS: 10_000,
};
