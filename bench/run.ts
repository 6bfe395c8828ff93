/**
 * `npm run bench`: entity-sync against its baselines, in one run, on the real Postgres.
 *
 * - A fresh database `es_bench_<random>` on the server named by DATABASE_URL (default
 *   postgres://postgres@127.0.0.1:5432/postgres), dropped at the end.
 * - The real server (buildApp) on port 0 *in this process*, and its load generator.
 * - For the batch phases (bench/batches.ts), a second entity-sync server in a process of its own
 *   (bench/live-server.ts), so that its CPU time per change is its alone; the clients here.
 * - The baselines in a child process (bench/baseline.ts), driven over IPC so their runs
 *   interleave with entity-sync's while their memory and CPU time stay their own.
 * - For live events, each server in a fresh process of its own (bench/live-server.ts): a second
 *   entity-sync instance whose event bus goes through Postgres LISTEN/NOTIFY, as src/main.ts
 *   wires it for a real Postgres, and the bare yoga + graphql-ws + createPubSub server; their
 *   graphql-ws clients in another process (bench/subscribers.ts), so that the memory each
 *   server needs per socket is read on a process that does nothing else.
 */
import { execSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { openDatabase } from '../src/db/client.js';
import { buildApp } from '../src/server/app.js';
import { flushBacklog, type FlushResult } from '../src/sync/flush-backlog.js';
import { createToken } from '../src/sync/tokens.js';
import { BATCH_DATASET, batchPhase } from './batches.js';
import { sameRows } from './checks.js';
import { entityWithHistory, heldChangeFactory } from './fixtures.js';
import {
  BENCH_PROPS,
  combine,
  fmt,
  gql,
  memory,
  summarize,
  timed,
  useToken,
  type BaselineCommand,
  type BaselineReply,
  type LiveServerCommand,
  type LiveServerReply,
  type MemorySnapshot,
  type SubscriberCommand,
  type SubscriberReply,
  type SubscriberTarget,
  type TimedRun,
} from './lib.js';
import { CHANGES_SINCE } from '../packages/client/src/documents.js';
import { loadPhase } from './load.js';
import { OFFLINE_DATASET, offlineOnePhase } from './offline-one.js';
import { eventRows, eventsDescription, eventsPhase } from './events.js';
import { report, table, type Measured, type Settings } from './report.js';
import { scalePhase, scaleReport, type ScaleSettings } from './scale.js';
import { createDataset, createEntities, DATASET, DEVICE, InProcessUpdater, SingleClients } from './service.js';

// BENCH_QUICK=1: fewer rounds and a smaller backlog, to check the bench itself (figures noisier).
const quick = process.env.BENCH_QUICK === '1';
const settings: Settings = {
  batchClients: 4,
  batchSize: 100,
  runShape: { collect: 10, existing: 10, length: 5 },
  batchWarmup: 1,
  batchRounds: quick ? 2 : 4,
  batchPerRound: quick ? 2 : 5,
  clients: 16,
  entitiesPerClient: 4,
  warmupRequests: 200,
  requests: quick ? 800 : 2000,
  rounds: 8,
  flushWarmup: 200,
  // BENCH_FLUSH_HELD: held changes forced per side (default 20,000).
  flushHeld: Number(process.env.BENCH_FLUSH_HELD ?? (quick ? 2000 : 20000)),
  historyVersions: 5000,
  historyWarmup: 10,
  historyUpdates: quick ? 80 : 240,
  historyRounds: 4,
  historyTarget: 1.5,
  sockets: 1000,
  socketWave: 100,
  liveEvents: 32,
  liveRounds: 4,
  pullLimit: 1000,
  // The bench dataset holds a few thousand versions (the batch phases write to a dataset of their own): 8 passes.
  pullRounds: 8,
  loadClients: 50,
  loadBatchSize: 5,
  // BENCH_LOAD_SECONDS: how long each side of the load phase runs (default 60).
  loadSeconds: Number(process.env.BENCH_LOAD_SECONDS ?? 60),
  eventClients: 16,
  eventsPerRound: quick ? 400 : 1000,
  eventRounds: 4,
  hookClients: 4,
  hookBatch: 100,
  hookBatchesPerRound: quick ? 2 : 5,
  hookRounds: 4,
  webhooks: 100,
  // One offline submission per request: rounds of 2 ODK Collect runs and 2 runs on existing entities, 5 changes each, reversed.
  offlineShape: { collect: 2, existing: 2, length: 5 },
  offlineRounds: quick ? 5 : 15,
};
/** BENCH_REDIS_URL: the Redis the event-bus rows use (default the local one, which .ci/run starts). */
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
if (!(settings.loadSeconds > 0)) throw new Error(`BENCH_LOAD_SECONDS takes a positive number of seconds, not "${process.env.BENCH_LOAD_SECONDS}"`);
if (!(settings.flushHeld > 0)) throw new Error(`BENCH_FLUSH_HELD takes a positive number, not "${process.env.BENCH_FLUSH_HELD}"`);

const started = performance.now();
const log = (s: string) => console.log(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s] ${s}`);
const n = (x: number) => x.toLocaleString('en-US');

/** A child process driven over IPC: one command at a time, one reply each. */
function startChild<C, R extends { ok: boolean; error?: string }>(file: string): { send(cmd: C): Promise<R>; child: ChildProcess } {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), [], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', '--cpu-prof-dir=.tmp/child-prof'] : [])], stdio: 'inherit' });
  let pending: { resolve(r: R): void; reject(e: Error): void } | undefined;
  child.on('message', (reply: R) => {
    const p = pending;
    pending = undefined;
    if (!p) return;
    if (reply.ok) p.resolve(reply);
    else p.reject(new Error(`${file}: ${reply.error}`));
  });
  child.on('exit', (code) => pending?.reject(new Error(`${file} exited with ${code}`)));
  return {
    child,
    send: (cmd) =>
      new Promise((resolve, reject) => {
        pending = { resolve, reject };
        child.send(cmd as object);
      }),
  };
}

/** The baseline process (bench/baseline.ts). */
const startBaseline = () => startChild<BaselineCommand, BaselineReply>('./baseline.ts');

/** Which code is measured: the commit, and whether src/ differs from it. */
function sourceState(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain -- src drizzle', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return `${head}${dirty ? ` + uncommitted changes in src/ or drizzle/ (${dirty.split('\n').length} files)` : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

// BENCH_SCALE_ENTITIES: the size of the scale section's large dataset (default 1,000,000).
const scaleSettings: Partial<ScaleSettings> = process.env.BENCH_SCALE_ENTITIES ? { entities: Number(process.env.BENCH_SCALE_ENTITIES) } : {};

/** The scale section (bench/scale.ts) on a fresh database of its own, its server in a process of its own. */
async function scaleSection(): Promise<string> {
  const name = `es_bench_${randomBytes(6).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
  const server = startChild<LiveServerCommand, LiveServerReply>('./live-server.ts');
  const database = await openDatabase({ url: url.toString() });
  try {
    return scaleReport(await scalePhase({ db: database.db, sql, databaseUrl: url.toString(), server, log, settings: scaleSettings }));
  } finally {
    if (server.child.connected) await server.send({ cmd: 'exit' }).catch(() => server.child.kill());
    await database.close();
    await sql.end({ timeout: 5 });
    // BENCH_KEEP_DB=1 (as bench/scratch-db.ts): kept for a look at its plans.
    if (process.env.BENCH_KEEP_DB) log(`kept database ${name}`);
    else await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

/**
 * BENCH_ONLY: a comma-separated list of sections to run (default all), e.g. BENCH_ONLY=batches,flush.
 * `scale` and `events` alone run on a database of their own, as in the whole run.
 */
const SECTIONS = ['batches', 'offline', 'single', 'pull', 'flush', 'history', 'live', 'load', 'events', 'scale'] as const;
type Section = (typeof SECTIONS)[number];
const only = process.env.BENCH_ONLY?.split(',').map((x) => x.trim()).filter(Boolean);
for (const x of only ?? []) if (!(SECTIONS as readonly string[]).includes(x)) throw new Error(`BENCH_ONLY: no section "${x}" (sections: ${SECTIONS.join(', ')})`);
const want = (x: Section) => !only || only.includes(x);

// BENCH_ONLY=scale: only the scale section (it takes minutes of its own).
if (process.env.BENCH_ONLY === 'scale') {
  let code = 0;
  try {
    console.log(`\n- Code: ${sourceState()}.${await scaleSection()}`);
  } catch (err) {
    console.error(err);
    code = 1;
  }
  process.exit(code);
}
const dbName = `es_bench_${randomBytes(6).toString('hex')}`;
const benchUrl = new URL(adminUrl);
benchUrl.pathname = `/${dbName}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);

// BENCH_ONLY=events: only the event-bus and webhook rows (bench/events.ts), on a database of their own.
if (process.env.BENCH_ONLY === 'events') {
  let code = 0;
  const sql = postgres(benchUrl.toString(), { max: 2, onnotice: () => {} });
  try {
    const database = await openDatabase({ url: benchUrl.toString() });
    await database.close();
    const loadBefore = loadavg()[0]!;
    const figures = await eventsPhase({ databaseUrl: benchUrl.toString(), redisUrl, sql, settings, startChild: () => startChild<LiveServerCommand, LiveServerReply>('./live-server.ts'), log });
    const load = `- Machine load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after.`;
    console.log(`\n## entity-sync benchmark: events and webhooks (real Postgres, ${new Date().toISOString()})\n\n- Code: ${sourceState()}.\n${eventsDescription(settings)}\n- Ratio = the first figure / the second.\n${load}\n\n${table(eventRows(figures, settings))}\n`);
  } catch (err) {
    console.error(err);
    code = 1;
  } finally {
    await sql.end({ timeout: 5 });
    await admin.unsafe(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  }
  process.exit(code);
}

let exitCode = 0;
const baseline = startBaseline();
let subscribers: ReturnType<typeof startChild<SubscriberCommand, SubscriberReply>> | undefined;
const liveServers: ReturnType<typeof startChild<LiveServerCommand, LiveServerReply>>[] = [];
// Set-up inserts use a client of their own: drizzle's client passes json and dates through raw.
const setupSql = postgres(benchUrl.toString(), { max: 2, onnotice: () => {} });
try {
  const loadBefore = loadavg()[0]!;
  const database = await openDatabase({ url: benchUrl.toString() });
  // No periodic backlog flush: the flush phase forces the backlog itself, on both sides in turn.
  // Authenticated as in production: every request looks its token up (one indexed select).
  // The live section opens 1,000 sockets from this one address with one token: as a deployment
  // behind a proxy (MAX_CONNECTIONS_PER_ADDRESS=0) whose devices each have their own token, the
  // per-address and per-token caps (issue 17) are lifted here, or they refuse the sockets.
  const app = buildApp({ db: database.db, flushIntervalSeconds: 0, connections: { maxPerAddress: 0 }, subscriptions: { perToken: 100_000 } });
  const url = await app.start(0, '127.0.0.1');
  const adminToken = (await createToken(database.db, { name: 'bench admin', role: 'admin' })).secret;
  useToken(adminToken);
  try {
    const s = settings;
    log(`server at ${url}, database ${dbName}`);
    await createDataset(url, BENCH_PROPS);
    const singleIds = await createEntities(url, s.clients * s.entitiesPerClient, s.batchSize, 'single');
    await baseline.send({ cmd: 'init', config: { url: benchUrl.toString(), dataset: DATASET, deviceId: DEVICE, clients: s.clients } });
    log(`dataset and ${singleIds.length} entities created via the API; baseline process ready`);

    const measured: Partial<Measured> = {};
    // Phase 1: batches (bench/batches.ts), the server in a process of its own, its clients here;
    // then one offline submission per request (bench/offline-one.ts) to the same server.
    if (want('batches') || want('offline')) {
    const batchServer = startChild<LiveServerCommand, LiveServerReply>('./live-server.ts');
    liveServers.push(batchServer);
    const batchUrl = (await batchServer.send({ cmd: 'start', kind: 'entity-sync', databaseUrl: benchUrl.toString() })).url!;
    if (want('batches')) measured.batches = await batchPhase({
      setupUrl: url,
      server: { url: batchUrl, cpu: async () => (await batchServer.send({ cmd: 'cpu' })).cpu!, memory: async () => (await batchServer.send({ cmd: 'memory' })).memory! },
      baseline: (cmd) => baseline.send(cmd),
      tokenFor: async (deviceId) => (await createToken(database.db, { name: deviceId, role: 'collector', deviceId, datasets: [BATCH_DATASET] })).secret,
      sql: setupSql,
      settings: { clients: s.batchClients, batchSize: s.batchSize, runShape: s.runShape, warmup: s.batchWarmup, rounds: s.batchRounds, perRound: s.batchPerRound },
      log,
    });
    if (want('offline')) {
      const deviceId = 'offline-one';
      const token = (await createToken(database.db, { name: deviceId, role: 'collector', deviceId, datasets: [OFFLINE_DATASET] })).secret;
      measured.offline = await offlineOnePhase({ setupUrl: url, url: batchUrl, token, deviceId, settings: { shape: s.offlineShape, warmup: 1, rounds: s.offlineRounds } });
      log(`offline, one per request: ${fmt.ms(1000 / measured.offline.es.rate)} each`);
    }
    await batchServer.send({ cmd: 'exit' });
    liveServers.splice(liveServers.indexOf(batchServer), 1);
    }

    // Measured requests go as a field device would: a collector token bound to its device and dataset.
    useToken((await createToken(database.db, { name: 'bench tablet', role: 'collector', deviceId: DEVICE, datasets: [DATASET] })).secret);

    // Phase 2: single submitChange vs yoga echo, 16 clients, alternating runs.
    if (want('single')) {
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
    Object.assign(measured, { single: singleResult, echo: echoResult, memory: { single: singleMemory, echo: echoMemory } });
    }

    // Phase 2b: pulling the whole dataset (every version so far) in pages of 1,000, over HTTP with
    // the client library's own query, against the same select by raw SQL; alternating passes.
    if (want('pull')) {
    const pullPass = async (): Promise<{ run: TimedRun; count: number }> => {
      let cursor: string | null = null;
      let count = 0;
      const latencies: number[] = [];
      const t0 = performance.now();
      for (;;) {
        const p0 = performance.now();
        const page: { changesSince: { data: { cursor: string; hasMore: boolean; versions: unknown[] } } } = await gql(url, CHANGES_SINCE, { dataset: DATASET, cursor, limit: s.pullLimit, deviceId: DEVICE });
        latencies.push(performance.now() - p0);
        count += page.changesSince.data.versions.length;
        cursor = page.changesSince.data.cursor;
        if (!page.changesSince.data.hasMore) break;
      }
      return { run: { latencies, seconds: (performance.now() - t0) / 1000 }, count };
    };
    const rawPullPass = async () => {
      const r = await baseline.send({ cmd: 'rawPull', limit: s.pullLimit });
      return { run: r.run!, count: r.count! };
    };
    await pullPass();
    await rawPullPass();
    const minePull: { run: TimedRun; count: number }[] = [];
    const rawPulls: { run: TimedRun; count: number }[] = [];
    for (let i = 0; i < s.pullRounds; i++) {
      if (i % 2 === 0) {
        minePull.push(await pullPass());
        rawPulls.push(await rawPullPass());
      } else {
        rawPulls.push(await rawPullPass());
        minePull.push(await pullPass());
      }
    }
    const pullRate = (passes: { run: TimedRun; count: number }[]) => ({
      rate: passes.reduce((a, p) => a + p.count, 0) / passes.reduce((a, p) => a + p.run.seconds, 0),
      page: summarize(passes.flatMap((p) => p.run.latencies), passes.reduce((a, p) => a + p.run.seconds, 0)),
      versions: passes[0]!.count,
    });
    const pullResult = { es: pullRate(minePull), raw: pullRate(rawPulls) };
    if (minePull.some((p) => p.count !== rawPulls[0]!.count)) throw new Error(`a pull pass read ${minePull.map((p) => p.count)} versions, raw SQL ${rawPulls[0]!.count}`);
    log(`pull: entity-sync ${Math.round(pullResult.es.rate)} versions/s, raw SQL ${Math.round(pullResult.raw.rate)} versions/s`);
    measured.pull = pullResult;
    }

    // Phase 3: forced flush of a backlog of held changes, entity-sync (in process) then set-based SQL.
    // Each side's backlog is made (untimed) just before it, so each flush sees only its own.
    const flushedTotal = want('flush') ? 2 * (s.flushWarmup + s.flushHeld) + 1 : 0;
    if (want('flush')) {
    const makeHeld = await heldChangeFactory(database.db, setupSql);
    // How many transactions wrote a side's forced versions (each version carries its writer's txid).
    const writers = async (ids: string[]) =>
      (await setupSql<{ n: number }[]>`select count(distinct txid)::int as n from entity_versions where entity_id = any(${ids}::uuid[]) and source = 'FORCED'`)[0]!.n;
    const esFlush = async (count: number, prefix: string): Promise<{ run: TimedRun; ids: string[] }> => {
      const ids = await makeHeld(count, prefix);
      let r: FlushResult | undefined;
      const run = await timed(async () => {
        r = await flushBacklog(database.db, { olderThanSeconds: 0 });
      });
      // Each applied, none releasing a successor (the bench's held changes are their runs' last).
      if (r?.forced !== count || r.forcedApplied !== count || r.released !== 0) throw new Error(`flushBacklog forced ${r?.forcedApplied} of ${count} held changes (${r?.forced} taken, ${r?.released} released)`);
      return { run, ids };
    };
    const setFlush = async (count: number, prefix: string) => {
      const ids = await makeHeld(count, prefix);
      const r = await baseline.send({ cmd: 'setFlush' });
      if (r.count !== count) throw new Error(`set-based flush forced ${r.count} of ${count} held changes`);
      return { run: r.run!, steps: r.steps!, ids };
    };
    await esFlush(s.flushWarmup, 'held warm-up');
    await setFlush(s.flushWarmup, 'held warm-up set');
    log(`flush: forcing ${n(s.flushHeld)} held changes by flushBacklog`);
    const esFlushed = await esFlush(s.flushHeld, 'held');
    log(`flush: forcing ${n(s.flushHeld)} held changes by set-based SQL`);
    const setFlushed = await setFlush(s.flushHeld, 'held set');
    const flushResult = combine([esFlushed.run], s.flushHeld);
    const setFlushResult = combine([setFlushed.run], s.flushHeld);
    const [flushCheck] = await setupSql<{ held: number; forced: number; v2: number }[]>`select
      (select count(*)::int from held_changes) as held,
      (select count(*)::int from entity_versions where source = 'FORCED' and version = 2 and conflict = 'SOFT') as forced,
      (select count(*)::int from changes where entity_id in (select entity_id from entity_versions where source = 'FORCED') and outcome = 'APPLIED' and version = 2) as v2`;
    if (flushCheck?.held !== 0 || flushCheck.forced !== flushedTotal || flushCheck.v2 !== flushedTotal) {
      throw new Error(`after the flushes: expected nothing held and ${flushedTotal} forced versions, found ${JSON.stringify(flushCheck)}`);
    }
    await sameRows(setupSql, 'forced flush', esFlushed.ids[0]!, setFlushed.ids[0]!);
    const flushTransactions = { es: await writers(esFlushed.ids), set: await writers(setFlushed.ids) };
    log(`flush: entity-sync ${Math.round(flushResult.rate)}/s, set-based SQL ${Math.round(setFlushResult.rate)}/s`);
    measured.flush = { es: flushResult, set: setFlushResult, setSteps: setFlushed.steps, transactions: flushTransactions };
    }

    // Phase 4: in-order updates of an entity with a long history vs one with a single version.
    if (want('history')) {
    const esBig = new InProcessUpdater(database.db, await entityWithHistory(database.db, setupSql, s.historyVersions, 'history big'), s.historyVersions);
    const esSmall = new InProcessUpdater(database.db, await entityWithHistory(database.db, setupSql, 1, 'history small'), 1);
    const rawBig = { id: await entityWithHistory(database.db, setupSql, s.historyVersions, 'raw history big'), version: s.historyVersions };
    const rawSmall = { id: await entityWithHistory(database.db, setupSql, 1, 'raw history small'), version: 1 };
    const rawUpdates = async (e: { id: string; version: number }, count: number) => {
      const r = await baseline.send({ cmd: 'rawUpdates', entityId: e.id, fromVersion: e.version, count });
      e.version = r.version!;
      return r.run!;
    };
    const history = { esBig: [] as TimedRun[], esSmall: [] as TimedRun[], rawBig: [] as TimedRun[], rawSmall: [] as TimedRun[] };
    const historyTasks: [keyof typeof history, (count: number) => Promise<TimedRun>][] = [
      ['esBig', (c) => esBig.run(c)],
      ['esSmall', (c) => esSmall.run(c)],
      ['rawBig', (c) => rawUpdates(rawBig, c)],
      ['rawSmall', (c) => rawUpdates(rawSmall, c)],
    ];
    for (const [, task] of historyTasks) await task(s.historyWarmup);
    const perRound = s.historyUpdates / s.historyRounds;
    for (let i = 0; i < s.historyRounds; i++) {
      for (const [key, task] of i % 2 === 0 ? historyTasks : [...historyTasks].reverse()) history[key].push(await task(perRound));
    }
    const historyResult = { esBig: combine(history.esBig), esSmall: combine(history.esSmall), rawBig: combine(history.rawBig), rawSmall: combine(history.rawSmall) };
    log(`history: entity-sync ${(1000 / historyResult.esBig.rate).toFixed(2)} vs ${(1000 / historyResult.esSmall.rate).toFixed(2)} ms/update`);
    measured.history = historyResult;
    }

    // Every change of phases 2 to 4 landed exactly once: versions = creates + updates of both sides
    // (the batch phases checked their own dataset).
    const creates = s.clients * s.entitiesPerClient;
    const historyMade = want('history') ? 2 * (s.historyVersions + 1) + 4 * (s.historyWarmup + s.historyUpdates) : 0;
    const expected = creates + (want('single') ? s.warmupRequests + s.requests : 0) + historyMade + 2 * flushedTotal;
    const [count] = await database.sql!<{ n: number }[]>`select count(*)::int as n from entity_versions v join entities e on e.id = v.entity_id
      join datasets d on d.id = e.dataset_id where d.name = ${DATASET}`;
    if (count?.n !== expected) throw new Error(`expected ${expected} entity versions, found ${count?.n}`);

    // Phase 5: live events. Each server in a fresh process of its own (bench/live-server.ts):
    // a second entity-sync instance with the production event bus (Postgres LISTEN/NOTIFY), and
    // the bare yoga + graphql-ws + createPubSub server; the sockets in bench/subscribers.ts.
    if (want('live')) {
    const liveEs = startChild<LiveServerCommand, LiveServerReply>('./live-server.ts');
    const liveBase = startChild<LiveServerCommand, LiveServerReply>('./live-server.ts');
    liveServers.push(liveEs, liveBase);
    subscribers = startChild<SubscriberCommand, SubscriberReply>('./subscribers.ts');
    const sub = subscribers;
    const [liveEsUrl, liveBaseUrl] = await Promise.all([
      liveEs.send({ cmd: 'start', kind: 'entity-sync', databaseUrl: benchUrl.toString() }).then((r) => r.url!),
      liveBase.send({ cmd: 'start', kind: 'yoga-pubsub', databaseUrl: benchUrl.toString() }).then((r) => r.url!),
    ]);
    const [liveEntity] = await createEntities(url, 1, 1, 'live');
    const open = async (name: string, kind: SubscriberTarget['kind'], serverUrl: string, count: number) => {
      await sub.send({ cmd: 'open', target: { name, kind, url: serverUrl, entityId: liveEntity!, version: 1 }, count, wave: s.socketWave });
      await sub.send({ cmd: 'events', name, count: 0 });
    };
    const liveMemory = {} as Record<'esBefore' | 'esAfter' | 'baseBefore' | 'baseAfter', MemorySnapshot>;
    for (const [side, server, kind, serverUrl] of [
      ['es', liveEs, 'entity-sync', liveEsUrl],
      ['base', liveBase, 'yoga-pubsub', liveBaseUrl],
    ] as const) {
      // A few sockets first, so code paths are compiled and caches filled before "before".
      await open(`${side}-warm`, kind, serverUrl!, 10);
      await sub.send({ cmd: 'close', name: `${side}-warm` });
      liveMemory[`${side}Before`] = (await server.send({ cmd: 'memory' })).memory!;
      await open(side, kind, serverUrl!, s.sockets);
      liveMemory[`${side}After`] = (await server.send({ cmd: 'memory' })).memory!;
    }
    log(`${s.sockets} sockets open on each server, every subscription live`);
    const liveLatency = { es: [] as number[], base: [] as number[] };
    const liveFirst = { es: [] as number[], base: [] as number[] };
    const perLive = s.liveEvents / s.liveRounds;
    for (let i = 0; i < 2 * s.liveRounds; i++) {
      const side = i % 4 === 0 || i % 4 === 3 ? 'es' : 'base';
      const r = await sub.send({ cmd: 'events', name: side, count: perLive });
      liveLatency[side].push(...r.latencies!);
      liveFirst[side].push(...r.first!);
    }
    await sub.send({ cmd: 'exit' });
    subscribers = undefined;
    for (const server of liveServers.splice(0)) await server.send({ cmd: 'exit' });
    const liveResult = {
      es: summarize(liveLatency.es, 1),
      base: summarize(liveLatency.base, 1),
      esFirst: summarize(liveFirst.es, 1),
      baseFirst: summarize(liveFirst.base, 1),
    };
    log(`live: entity-sync p50 ${liveResult.es.p50.toFixed(1)} ms, yoga pubsub p50 ${liveResult.base.p50.toFixed(1)} ms`);
    measured.live = { ...liveResult, memory: liveMemory };
    }

    // Phase 6: sustained load, 50 clients (bench/load.ts), entity-sync in a process of its own, then raw SQL.
    if (want('load')) measured.loadTest = await loadPhase({
      setupUrl: url,
      databaseUrl: benchUrl.toString(),
      sql: setupSql,
      settings: { clients: s.loadClients, batchSize: s.loadBatchSize, seconds: s.loadSeconds, midSeconds: Math.min(10, s.loadSeconds / 2) },
      startChild,
      log,
      tokens: {
        admin: adminToken,
        collector: async (deviceId) => (await createToken(database.db, { name: deviceId, role: 'collector', deviceId, datasets: [DATASET] })).secret,
      },
    });

    // Phase 7: events across two instances (NOTIFY, Redis) and submissions beside 100 webhooks (bench/events.ts).
    // Its instances share this database, so the token gql sends is looked up there: the admin's, for it
    // creates a dataset (the collector token set for the measured requests above is refused that).
    useToken(adminToken);
    if (want('events')) measured.events = await eventsPhase({ databaseUrl: benchUrl.toString(), redisUrl, sql: setupSql, settings: s, startChild: () => startChild<LiveServerCommand, LiveServerReply>('./live-server.ts'), log });

    const scale = want('scale') ? await scaleSection() : '';
    console.log(report({ ...measured, load: { before: loadBefore, after: loadavg()[0]! }, source: sourceState(), seconds: (performance.now() - started) / 1000 }, s) + scale);
  } finally {
    await app.stop();
    await database.close();
  }
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  if (subscribers?.child.connected) await subscribers.send({ cmd: 'exit' }).catch(() => subscribers?.child.kill());
  for (const server of liveServers) if (server.child.connected) await server.send({ cmd: 'exit' }).catch(() => server.child.kill());
  if (baseline.child.connected) await baseline.send({ cmd: 'exit' }).catch(() => baseline.child.kill());
  await setupSql.end({ timeout: 5 });
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
  log('database dropped');
}
process.exit(exitCode);
