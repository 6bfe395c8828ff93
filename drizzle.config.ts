import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: ['./src/db/datasets.ts', './src/db/entities.ts', './src/db/changes.ts', './src/db/events.ts', './src/db/tokens.ts', './src/db/resolutions.ts', './src/db/webhooks.ts', './src/db/subsets.ts'],
  out: './drizzle',
});
