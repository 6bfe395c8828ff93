import { defineConfig } from 'tsdown';

/**
 * The package's build (`npm run build`, run by `prepack` and by the repository's `npm install`):
 * ES modules and bundled .d.ts in dist/. The client imports the shared pure rules of the service
 * from ../../src/core (one copy in the repository); a bundler puts what it uses of them into dist,
 * which tsc alone cannot do without mirroring the repository's folders inside the package.
 * graphql-ws stays a dependency, imported at run time.
 */
export default defineConfig({
  entry: { index: 'src/sync-client.ts', 'file-storage': 'src/file-storage.ts' },
  format: 'esm',
  // The main entry runs in browsers and in Node alike; file-storage imports node:fs itself.
  platform: 'neutral',
  target: 'es2022',
  // Node's built-ins (file-storage only) and graphql-ws are imported at run time; nothing from
  // node_modules may end up inside dist (the build fails if something would).
  deps: { neverBundle: [/^node:/], onlyBundle: [] },
  dts: true,
  // No maps: they would point at sources the package does not ship, and the JavaScript is
  // readable as it is (not minified, comments kept).
  sourcemap: false,
  fixedExtension: false,
  clean: true,
  failOnWarn: true,
  // The only warning besides: time spent generating the .d.ts, which is expected.
  checks: { pluginTimings: false },
});
