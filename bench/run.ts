/**
 * `npm run bench`: entity-sync against its baselines, in one run, on the real Postgres.
 *
 * - A fresh database `es_bench_<random>` on the server named by DATABASE_URL (default
 *   postgres://postgres@127.0.0.1:5432/postgres), dropped at the end.
 * - The real server (buildApp) on port 0 *in this process*, and its load generator.
 * - The baselines in a child process (bench/baseline.ts), driven over IPC so their runs
 *   interleave with entity-sync's while their memory stays their own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { openDatabase } from '../src/db/client.js';
import { buildApp } from '../src/server/app.js';
import { BENCH_PROPS, combine, memory, type BaselineCommand, type BaselineReply, type TimedRun } from './lib.js';
import { report, type Settings } from './report.js';
import { BatchedClient, createDataset, createEntities, DATASET, DEVICE, SingleClients } from './service.js';

const settings: Settings = {
  batchSize: 100,
  warmupBatches: 3,
  batches: 20,
  clients: 16,
  entitiesPerClient: 4,
  warmupRequests: 200,
  requests: 2000,
  rounds: 8,
  target: 0.35,
};

const started = performance.now();
const log = (s: string) => console.log(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s] ${s}`);

/** The baseline process: one command at a time, one reply each. */
function startBaseline(): { send(cmd: BaselineCommand): Promise<BaselineReply>; child: ChildProcess } {
  const child = fork(fileURLToPath(new URL('./baseline.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  let pending: { resolve(r: BaselineReply): void; reject(e: Error): void } | undefined;
  child.on('message', (reply: BaselineReply) => {
    const p = pending;
    pending = undefined;
    if (!p) return;
    if (reply.ok) p.resolve(reply);
    else p.reject(new Error(`baseline process: ${reply.error}`));
  });
  child.on('exit', (code) => pending?.reject(new Error(`baseline process exited with ${code}`)));
  return {
    child,
    send: (cmd) =>
      new Promise((resolve, reject) => {
        pending = { resolve, reject };
        child.send(cmd);
      }),
  };
}

const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `es_bench_${randomBytes(6).toString('hex')}`;
const benchUrl = new URL(adminUrl);
benchUrl.pathname = `/${dbName}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);

let exitCode = 0;
const baseline = startBaseline();
try {
  const loadBefore = loadavg()[0]!;
  const database = await openDatabase({ url: benchUrl.toString() });
  const app = buildApp({ db: database.db });
  const url = await app.start(0, '127.0.0.1');
  try {
    const s = settings;
    log(`server at ${url}, database ${dbName}`);
    await createDataset(url, BENCH_PROPS);
    const batchIds = await createEntities(url, s.batchSize, s.batchSize, 'batched');
    const rawIds = await createEntities(url, s.batchSize, s.batchSize, 'raw');
    const singleIds = await createEntities(url, s.clients * s.entitiesPerClient, s.batchSize, 'single');
    await baseline.send({ cmd: 'init', config: { url: benchUrl.toString(), dataset: DATASET, deviceId: DEVICE, entityIds: rawIds, clients: s.clients } });
    log(`dataset and ${batchIds.length + rawIds.length + singleIds.length} entities created via the API; baseline process ready`);

    // Phase 1: batches of updates, entity-sync and raw SQL alternating (ABBA order).
    const batched = new BatchedClient(url, batchIds);
    const rawBatch = async () => (await baseline.send({ cmd: 'rawBatch' })).run!;
    for (let i = 0; i < s.warmupBatches; i++) {
      await batched.batch();
      await rawBatch();
    }
    await baseline.send({ cmd: 'resetSteps' });
    const mine: TimedRun[] = [];
    const theirs: TimedRun[] = [];
    for (let i = 0; i < s.batches; i++) {
      if (i % 2 === 0) {
        mine.push(await batched.batch());
        theirs.push(await rawBatch());
      } else {
        theirs.push(await rawBatch());
        mine.push(await batched.batch());
      }
    }
    const batchedResult = combine(mine, s.batchSize);
    const rawResult = combine(theirs, s.batchSize);
    const rawSteps = (await baseline.send({ cmd: 'resetSteps' })).steps!;
    const batchedMemory = memory();
    const rawMemory = (await baseline.send({ cmd: 'memory' })).memory!;
    log(`batched: entity-sync ${Math.round(batchedResult.rate)}/s, raw SQL ${Math.round(rawResult.rate)}/s`);

    // Phase 2: single submitChange vs yoga echo, 16 clients, alternating runs.
    const singles = new SingleClients(url, singleIds, s.clients);
    const echo = async (count: number) => (await baseline.send({ cmd: 'echo', count })).run!;
    await singles.run(s.warmupRequests);
    await echo(s.warmupRequests);
    const per = s.requests / s.rounds;
    const mineSingle: TimedRun[] = [];
    const echoRuns: TimedRun[] = [];
    for (let i = 0; i < s.rounds; i++) {
      if (i % 2 === 0) {
        mineSingle.push(await singles.run(per));
        echoRuns.push(await echo(per));
      } else {
        echoRuns.push(await echo(per));
        mineSingle.push(await singles.run(per));
      }
    }
    const singleResult = combine(mineSingle);
    const echoResult = combine(echoRuns);
    const singleMemory = memory();
    const echoMemory = (await baseline.send({ cmd: 'memory' })).memory!;
    log(`single: entity-sync ${Math.round(singleResult.rate)}/s, yoga echo ${Math.round(echoResult.rate)}/s`);

    // Every change landed exactly once: versions = creates + updates of both sides.
    const creates = 2 * s.batchSize + s.clients * s.entitiesPerClient;
    const expected = creates + 2 * (s.warmupBatches + s.batches) * s.batchSize + s.warmupRequests + s.requests;
    const [count] = await database.sql!<{ n: number }[]>`select count(*)::int as n from entity_versions`;
    if (count?.n !== expected) throw new Error(`expected ${expected} entity versions, found ${count?.n}`);

    console.log(
      report(
        {
          batched: batchedResult,
          raw: rawResult,
          rawSteps,
          single: singleResult,
          echo: echoResult,
          memory: { batched: batchedMemory, raw: rawMemory, single: singleMemory, echo: echoMemory },
          load: { before: loadBefore, after: loadavg()[0]! },
        },
        s,
      ),
    );
  } finally {
    await app.stop();
    await database.close();
  }
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  if (baseline.child.connected) await baseline.send({ cmd: 'exit' }).catch(() => baseline.child.kill());
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
  log('database dropped');
}
process.exit(exitCode);
