/**
 * The baseline process, started by bench/run.ts with an IPC channel so that its memory is its
 * own while its runs interleave with entity-sync's (machine load then hits both alike):
 * - `batchWorkers` / `batchRound`: batches of changes from several workers at once, each worker a
 *   device with entities of its own: in-order updates by set-based SQL (bench/set-sql.ts
 *   setUpdates) or by today's per-change SQL (bench/raw-sql.ts rawUpdate, one transaction per
 *   change), or offline runs by set-based SQL (setRuns); timed;
 * - `echo`: N requests from 16 concurrent clients to a bare graphql-yoga echo server that
 *   lives in this process, like entity-sync's server lives in the parent;
 * - `setFlush`: forces every due held change by set-based SQL, timed;
 * - `rawUpdates`: N in-order raw-SQL updates of one entity, each timed;
 * - `rawPull`: the dataset's versions in pages, by the select changesSince makes, each page timed.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { concurrentLoad, gql, memory, perWorker, timed, updateData, type BaselineCommand, type BaselineConfig, type BatchKind, serveCommands, type BaselineReply } from './lib.js';
import { PULL_HORIZON } from '../src/sync/changes-since.js';
import { rawUpdate, type RawContext } from './raw-sql.js';
import { newSteps, setFlush, setRuns, setUpdates, type Steps } from './set-sql.js';
import { InOrderWork, RunWork } from './workloads.js';
import { ECHO_MUTATION, startEchoServer } from './yoga-echo.js';

let config: BaselineConfig | undefined;
let ctx: RawContext | undefined;
let echo: Awaited<ReturnType<typeof startEchoServer>> | undefined;
let n = 0;

/** A batch baseline's workers: their work, and the time by statement since the last batchSteps. */
interface Workers {
  works: (InOrderWork | RunWork)[];
  contexts: RawContext[];
  steps: Steps;
  /** perChange: changes since the last batchSteps (its steps are per change). */
  changes: number;
}
const batchWorkers = new Map<BatchKind, Workers>();
const flushSteps = newSteps();

const touched = (w: Workers) => w.works.map((x) => (x instanceof RunWork ? [...x.touched] : [...x.entityIds]));

async function batchOf(kind: BatchKind, w: Workers, i: number): Promise<void> {
  const sql = ctx!.sql;
  const work = w.works[i]!;
  if (work instanceof RunWork) {
    const { runs, changes } = work.next();
    await setRuns(sql, changes, w.steps);
    work.landed(runs);
    return;
  }
  const changes = work.next();
  if (kind === 'set') await setUpdates(sql, changes, w.steps);
  else {
    for (const c of changes) await rawUpdate(w.contexts[i]!, { entityId: c.entityId, baseVersion: c.baseVersion!, data: c.data });
    w.changes += changes.length;
  }
  work.landed(changes);
}

const echoOnce = async () => {
  const value = randomUUID();
  const data = await gql<{ echo: string }>(echo!.url, ECHO_MUTATION, { value });
  if (data.echo !== value) throw new Error('echo answered something else');
};

async function handle(msg: BaselineCommand): Promise<BaselineReply> {
  switch (msg.cmd) {
    case 'init': {
      config = msg.config;
      const sql = postgres(config.url, { max: 10, onnotice: () => {} });
      ctx = { sql, dataset: config.dataset, deviceId: config.deviceId, stepMs: new Map() };
      echo = await startEchoServer();
      return { ok: true };
    }
    case 'batchWorkers': {
      const w: Workers = {
        works: msg.workers.map((x) => (msg.kind === 'setRuns' ? new RunWork(x.deviceId, msg.dataset, x.entityIds, msg.runShape!) : new InOrderWork(x.deviceId, msg.dataset, x.entityIds))),
        // Each perChange worker's steps go to the one map of its kind.
        contexts: [],
        steps: newSteps(),
        changes: 0,
      };
      w.contexts = msg.workers.map((x) => ({ sql: ctx!.sql, dataset: msg.dataset, deviceId: x.deviceId, stepMs: w.steps.ms }));
      batchWorkers.set(msg.kind, w);
      return { ok: true, touched: touched(w) };
    }
    case 'batchRound': {
      const w = batchWorkers.get(msg.kind)!;
      const run = await perWorker(w.works.length, msg.batches, (i) => batchOf(msg.kind, w, i));
      return { ok: true, run, touched: touched(w) };
    }
    case 'batchSteps': {
      const w = batchWorkers.get(msg.kind)!;
      const per = msg.kind === 'perChange' ? w.changes : w.steps.batches;
      const steps = [...w.steps.ms].map(([step, ms]) => ({ step, ms: ms / Math.max(1, per) }));
      w.steps.ms.clear();
      w.steps.batches = 0;
      w.changes = 0;
      return { ok: true, steps };
    }
    case 'resetSteps':
      for (const w of batchWorkers.values()) {
        w.steps.ms.clear();
        w.steps.batches = 0;
        w.changes = 0;
      }
      flushSteps.ms.clear();
      flushSteps.batches = 0;
      return { ok: true };
    case 'echo':
      return { ok: true, run: await concurrentLoad(config!.clients, msg.count, echoOnce) };
    case 'memory':
      return { ok: true, memory: memory() };
    case 'setFlush': {
      let count = 0;
      flushSteps.ms.clear();
      flushSteps.batches = 0;
      const run = await timed(async () => {
        count = await setFlush(ctx!.sql, flushSteps);
      });
      const steps = [...flushSteps.ms].map(([step, ms]) => ({ step, ms: ms / Math.max(1, flushSteps.batches) }));
      return { ok: true, run, count, steps };
    }
    case 'rawPull': {
      // What changesSince reads, hand-written: the dataset's versions after a (txid, seq) cursor,
      // below the same pull horizon, in commit order, one page at a time, every column.
      const sql = ctx!.sql;
      const [ds] = await sql<{ id: string }[]>`select id from datasets where name = ${config!.dataset}`;
      let cursor = { txid: '0', seq: '0' };
      let count = 0;
      const latencies: number[] = [];
      const started = performance.now();
      for (;;) {
        const t0 = performance.now();
        const rows = await sql.unsafe(
          `select v.*, v.txid::text as cursor_txid from entity_versions v
           where v.dataset_id = $1 and (v.txid, v.seq) > ($2::xid8, $3::bigint) and v.txid < ${PULL_HORIZON}
           order by v.txid, v.seq limit ${msg.limit + 1}`,
          [ds!.id, cursor.txid, cursor.seq],
        );
        const page = rows.slice(0, msg.limit);
        latencies.push(performance.now() - t0);
        count += page.length;
        const last = page.at(-1);
        if (last) cursor = { txid: last.cursor_txid as string, seq: String(last.seq) };
        if (rows.length <= msg.limit) break;
      }
      return { ok: true, run: { latencies, seconds: (performance.now() - started) / 1000 }, count };
    }
    case 'rawUpdates': {
      let version = msg.fromVersion;
      const run = await concurrentLoad(1, msg.count, async () => {
        version = await rawUpdate(ctx!, { entityId: msg.entityId, baseVersion: version, data: updateData(n++) });
      });
      return { ok: true, run, version };
    }
    case 'exit':
      await echo?.stop();
      await ctx?.sql.end({ timeout: 5 });
      return { ok: true };
  }
}

serveCommands(handle);
