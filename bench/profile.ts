/**
 * `npm run bench:profile`: the batch phases of the bench (bench/batches.ts: in-order batches and
 * reversed offline runs, entity-sync only) with the server *in this process*, for
 * `node --cpu-prof`; then bench/profile-top.ts prints the hottest frames. The HTTP clients are in
 * this process too (their frames are undici's and bench/'s, not src/'s).
 *
 * BENCH_PROFILE_ROUNDS (default 8) rounds of 5 batches per client; a fresh database
 * `es_profile_<random>` on DATABASE_URL's server, dropped at the end.
 */
import postgres from 'postgres';
import { openDatabase } from '../src/db/client.js';
import { createToken } from '../src/sync/tokens.js';
import { BATCH_DATASET, batchPhase } from './batches.js';
import { useToken } from './lib.js';
import { postgresCpuMs } from './pg-cpu.js';
import { scratchDatabase } from './scratch-db.js';
import { startEntitySync } from './live-server.js';

const rounds = Number(process.env.BENCH_PROFILE_ROUNDS ?? 8);
const scratch = await scratchDatabase();
const started = performance.now();
const log = (s: string) => console.log(`[profile ${((performance.now() - started) / 1000).toFixed(1)}s] ${s}`);
try {
  const database = await openDatabase({ url: scratch.url });
  const sql = postgres(scratch.url, { max: 2, onnotice: () => {} });
  const server = await startEntitySync(scratch.url);
  try {
    useToken((await createToken(database.db, { name: 'profile admin', role: 'admin' })).secret);
    const cpu = process.cpuUsage();
    const dbName = new URL(scratch.url).pathname.slice(1);
    const pg = postgresCpuMs(dbName);
    const figures = await batchPhase({
      setupUrl: server.url,
      server: { url: server.url, cpu: async () => process.cpuUsage(), memory: async () => ({ rssMb: process.memoryUsage().rss / 2 ** 20, heapMb: process.memoryUsage().heapUsed / 2 ** 20 }) },
      tokenFor: async (deviceId) => (await createToken(database.db, { name: deviceId, role: 'collector', deviceId, datasets: [BATCH_DATASET] })).secret,
      sql,
      settings: { clients: 4, batchSize: 100, runShape: { collect: 10, existing: 10, length: 5 }, warmup: 1, rounds, perRound: 5 },
      log,
    });
    for (const [what, r] of [['in-order', figures.inOrder.es], ['offline runs', figures.runs.es]] as const) {
      log(`${what}: ${Math.round(r.rate)} changes/s, batch p50 ${r.p50.toFixed(1)} ms, CPU ${((r.cpuMs ?? NaN) / r.count).toFixed(3)} ms per change (server and clients)`);
    }
    const used = process.cpuUsage(cpu);
    log(`this process over the phases (set-up included): ${(used.user / 1000).toFixed(0)} ms user, ${(used.system / 1000).toFixed(0)} ms system CPU; Postgres ${(postgresCpuMs(dbName) - pg).toFixed(0)} ms`);
  } finally {
    await server.stop();
    await sql.end({ timeout: 5 });
    await database.close();
  }
} finally {
  await scratch.drop();
}
