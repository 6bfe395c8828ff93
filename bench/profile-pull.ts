/**
 * `npm run bench:profile:pull`: the pull of the bench (pages of 1,000 with the client library's
 * query, as a collector with its device) with the server *in this process*, for `node --cpu-prof`;
 * then bench/profile-top.ts prints the hottest frames. BENCH_PROFILE_ENTITIES (default 5,000)
 * entities, pulled BENCH_PROFILE_PASSES (default 30) times from the start; BENCH_PROFILE_EMPTY=N:
 * N empty pulls from the end instead (the fixed cost of a pull). A fresh database
 * `es_profile_<random>` on DATABASE_URL's server, dropped at the end.
 */
import { CHANGES_SINCE } from '../packages/client/src/documents.js';
import { openDatabase } from '../src/db/client.js';
import { buildApp } from '../src/server/app.js';
import { createToken } from '../src/sync/tokens.js';
import { BENCH_PROPS, gql, useToken } from './lib.js';
import { scratchDatabase } from './scratch-db.js';
import { createDataset, createEntities, DATASET, DEVICE } from './service.js';

const entities = Number(process.env.BENCH_PROFILE_ENTITIES ?? 5000);
const passes = Number(process.env.BENCH_PROFILE_PASSES ?? 30);
const scratch = await scratchDatabase();
try {
  const database = await openDatabase({ url: scratch.url });
  const app = buildApp({ db: database.db, flushIntervalSeconds: 0 });
  const server = await app.start(0, '127.0.0.1');
  try {
    useToken((await createToken(database.db, { name: 'profile admin', role: 'admin' })).secret);
    await createDataset(server, BENCH_PROPS);
    await createEntities(server, entities, 100, 'pull');
    useToken((await createToken(database.db, { name: 'tablet', role: 'collector', deviceId: DEVICE, datasets: [DATASET] })).secret);
    const pass = async () => {
      let cursor: string | null = null;
      let count = 0;
      for (;;) {
        const page: { changesSince: { data: { cursor: string; hasMore: boolean; versions: unknown[] } } } = await gql(server, CHANGES_SINCE, { dataset: DATASET, cursor, limit: 1000, deviceId: DEVICE });
        count += page.changesSince.data.versions.length;
        cursor = page.changesSince.data.cursor;
        if (!page.changesSince.data.hasMore) return count;
      }
    };
    await pass();
    // BENCH_PROFILE_EMPTY=N: N empty pulls from the end instead (the fixed cost of a pull).
    const empty = Number(process.env.BENCH_PROFILE_EMPTY ?? 0);
    if (empty > 0) {
      let cursor: string | null = null;
      for (;;) {
        const page: { changesSince: { data: { cursor: string; hasMore: boolean } } } = await gql(server, CHANGES_SINCE, { dataset: DATASET, cursor, limit: 1000 });
        cursor = page.changesSince.data.cursor;
        if (!page.changesSince.data.hasMore) break;
      }
      const t0 = performance.now();
      for (let i = 0; i < empty; i++) await gql(server, CHANGES_SINCE, { dataset: DATASET, cursor, limit: 1000 });
      console.log(`[profile-pull] ${empty} empty pulls: ${((performance.now() - t0) / empty).toFixed(2)} ms each`);
    }
    if (empty === 0) {
      const t0 = performance.now();
      let n = 0;
      for (let i = 0; i < passes; i++) n += await pass();
      const s = (performance.now() - t0) / 1000;
      console.log(`[profile-pull] ${n} versions in ${s.toFixed(2)} s: ${Math.round(n / s)} versions/s`);
    }
  } finally {
    await app.stop();
    await database.close();
  }
} finally {
  await scratch.drop();
}
