/**
 * The baseline process, started by bench/run.ts with an IPC channel so that its memory is its
 * own while its runs interleave with entity-sync's (machine load then hits both alike):
 * - `rawBatch`: one batch of 100 UPDATE changes by raw SQL (bench/raw-sql.ts), timed;
 * - `echo`: N requests from 16 concurrent clients to a bare graphql-yoga echo server that
 *   lives in this process, like entity-sync's server lives in the parent;
 * - `rawFlush`: forces every due held change by raw SQL, timed;
 * - `rawUpdates`: N in-order raw-SQL updates of one entity, each timed;
 * - `rawPull`: the dataset's versions in pages, by the select changesSince makes, each page timed.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { concurrentLoad, gql, memory, timed, updateData, type BaselineCommand, type BaselineConfig, serveCommands, type BaselineReply } from './lib.js';
import { PULL_HORIZON } from '../src/sync/changes-since.js';
import { rawFlush, rawUpdate, type RawContext } from './raw-sql.js';
import { ECHO_MUTATION, startEchoServer } from './yoga-echo.js';

let config: BaselineConfig | undefined;
let ctx: RawContext | undefined;
let echo: Awaited<ReturnType<typeof startEchoServer>> | undefined;
let changesSinceReset = 0;
const flushStepMs = new Map<string, number>();
let forcedSinceReset = 0;
let n = 0;
const versions = new Map<string, number>();

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
      for (const id of config.entityIds) versions.set(id, 1);
      echo = await startEchoServer();
      return { ok: true };
    }
    case 'rawBatch': {
      const run = await timed(async () => {
        for (const id of config!.entityIds) {
          versions.set(id, await rawUpdate(ctx!, { entityId: id, baseVersion: versions.get(id)!, data: updateData(n++) }));
        }
      });
      changesSinceReset += config!.entityIds.length;
      return { ok: true, run };
    }
    case 'resetSteps': {
      const steps = [...ctx!.stepMs].map(([step, ms]) => ({ step, ms: ms / Math.max(1, changesSinceReset) }));
      ctx!.stepMs.clear();
      changesSinceReset = 0;
      return { ok: true, steps };
    }
    case 'echo':
      return { ok: true, run: await concurrentLoad(config!.clients, msg.count, echoOnce) };
    case 'memory':
      return { ok: true, memory: memory() };
    case 'rawFlush': {
      let count = 0;
      const run = await timed(async () => {
        count = await rawFlush(ctx!, flushStepMs);
      });
      forcedSinceReset += count;
      return { ok: true, run, count };
    }
    case 'flushSteps': {
      const steps = [...flushStepMs].map(([step, ms]) => ({ step, ms: ms / Math.max(1, forcedSinceReset) }));
      flushStepMs.clear();
      forcedSinceReset = 0;
      return { ok: true, steps };
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
          `select v.*, v.txid::text as cursor_txid from entity_versions v join entities e on e.id = v.entity_id
           where e.dataset_id = $1 and (v.txid, v.seq) > ($2::xid8, $3::bigint) and v.txid < ${PULL_HORIZON}
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
