import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Two pages from one build into dist/dashboard (git-ignored, served by src/server/static.ts): the
 * dashboard (index.html, at /) and GraphiQL (graphiql.html, rendered by yoga at GET /graphql).
 * Everything they load is in the bundle: no CDN, so both work on a machine without internet.
 */
export default defineConfig({
  root: here('.'),
  base: '/',
  plugins: [react()],
  build: {
    outDir: here('../../dist/dashboard'),
    emptyOutDir: true,
    // GraphiQL brings Monaco: a few MB, loaded only by its own page.
    chunkSizeWarningLimit: 6000,
    rolldownOptions: {
      input: { index: here('index.html'), graphiql: here('graphiql.html') },
      // GraphiQL's modules start with React Compiler's "use no memo"; dropping it when bundling is harmless, and dozens of warnings would hide real ones.
      onLog: (level, log, handler) => (log.code === 'MODULE_LEVEL_DIRECTIVE' ? undefined : handler(level, log)),
    },
  },
});
