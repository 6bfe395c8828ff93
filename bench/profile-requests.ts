/**
 * `npm run bench:profile:requests`: the per-request paths of the bench with the server *in this
 * process*, for `node --cpu-prof`; then bench/profile-top.ts prints the hottest frames:
 * - one offline submission per request, one client (bench/offline-one.ts);
 * - single submitChange updates from 16 concurrent clients (bench/service.ts SingleClients).
 * BENCH_PROFILE_ROUNDS (default 10) rounds of the offline work, BENCH_PROFILE_SINGLES (default
 * 3,000) single changes. A fresh database `es_profile_<random>` on DATABASE_URL's server, dropped
 * at the end. Each part prints its time per request beside the process's CPU per request.
 */
import { openDatabase } from '../src/db/client.js';
import { createToken } from '../src/sync/tokens.js';
import { BENCH_PROPS, useToken } from './lib.js';
import { offlineOnePhase } from './offline-one.js';
import { postgresCpuMs } from './pg-cpu.js';
import { scratchDatabase } from './scratch-db.js';
import { createDataset, createEntities, SingleClients } from './service.js';
import { startEntitySync } from './live-server.js';

const rounds = Number(process.env.BENCH_PROFILE_ROUNDS ?? 10);
const singles = Number(process.env.BENCH_PROFILE_SINGLES ?? 3000);
const scratch = await scratchDatabase();
const log = (s: string) => console.log(`[profile] ${s}`);
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
try {
  const database = await openDatabase({ url: scratch.url });
  const server = await startEntitySync(scratch.url);
  try {
    useToken((await createToken(database.db, { name: 'profile admin', role: 'admin' })).secret);
    await createDataset(server.url, BENCH_PROPS);
    const ids = await createEntities(server.url, 16 * 4, 64, 'single');
    const deviceId = 'offline-one';
    const token = (await createToken(database.db, { name: deviceId, role: 'collector', deviceId, datasets: ['offline_one'] })).secret;
    const dbName = new URL(scratch.url).pathname.slice(1);
    let cpu = process.cpuUsage();
    let pg = postgresCpuMs(dbName);
    const offline = await offlineOnePhase({ setupUrl: server.url, url: server.url, token, deviceId, settings: { shape: { collect: 2, existing: 2, length: 5 }, warmup: 1, rounds } });
    log(`offline, one per request: ${(1000 / offline.es.rate).toFixed(2)} ms each (p50 ${offline.es.p50.toFixed(2)} ms), CPU ${(cpuMs(process.cpuUsage(cpu)) / offline.requests).toFixed(2)} ms per request (server and client, set-up included), Postgres ${((postgresCpuMs(dbName) - pg) / offline.requests).toFixed(2)} ms`);
    if (singles > 0) {
      const clients = new SingleClients(server.url, ids, 16);
      await clients.run(200);
      cpu = process.cpuUsage();
      pg = postgresCpuMs(dbName);
      const single = await clients.run(singles);
      const rate = singles / single.seconds;
      log(`single submitChange, 16 clients: ${rate.toFixed(0)}/s, CPU ${(cpuMs(process.cpuUsage(cpu)) / singles).toFixed(2)} ms per request (server and clients), Postgres ${((postgresCpuMs(dbName) - pg) / singles).toFixed(2)} ms`);
    }
  } finally {
    await server.stop();
    await database.close();
  }
} finally {
  await scratch.drop();
}
