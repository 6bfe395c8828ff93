/**
 * The scale section of `npm run bench` (issue 20): each device its share of a large dataset.
 *
 * - `scale_big`: 1,000,000 entities in 100 regions (r00…r99, interleaved: entity i is in region
 *   i mod 100, so one region's rows are spread over the whole table as field data would be), one
 *   version each, loaded by set-based SQL; then `scale_10k` (10,000 entities, a dataset alone of
 *   the share's size) and `scale_2k` (2,000 entities) after it, so that in commit order their
 *   versions come after the million.
 * - A collector token with the subset `region in [r07]` (10,000 entities of the million), made by
 *   createToken (its share written as ENTERED rows of its subset log, timed); collector tokens
 *   without a subset on `scale_10k` and `scale_2k`.
 * - The server alone in a process of its own (bench/live-server.ts), its memory read between pages.
 *
 * Measured, each beside a baseline in the same run:
 * - the share's initial sync through the API, pages of 1,000 with the client library's fields (and
 *   `entered`, `left`), against the same rows read by hand-written SQL (the token's subset log joined
 *   to the versions, the same pages, the same horizon), and against the initial sync of `scale_10k`
 *   through the API by a token without a subset; alternating, `rounds` each;
 * - an empty incremental pull from the end, against the same empty page by hand-written SQL;
 * - the first page of 100 versions of `scale_2k`, against the same page by hand-written SQL;
 * - the server's memory across the syncs.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';
import type { Db } from '../src/db/client.js';
import { PULL_HORIZON } from '../src/sync/changes-since.js';
import { createToken } from '../src/sync/tokens.js';
import { fmt, gql, percentile, type LiveServerCommand, type LiveServerReply, type MemorySnapshot } from './lib.js';

export interface ScaleSettings {
  entities: number;
  regions: number;
  alone: number;
  small: number;
  pageLimit: number;
  rounds: number;
  emptyPulls: number;
  firstPages: number;
}

export const SCALE_DEFAULTS: ScaleSettings = { entities: 1_000_000, regions: 100, alone: 10_000, small: 2_000, pageLimit: 1000, rounds: 4, emptyPulls: 50, firstPages: 30 };

const FIELDS = 'entityId version label data deleted changeId conflict conflictingProperties';
const PULL = `query ChangesSince($dataset: String!, $cursor: String, $limit: Int) {
  changesSince(dataset: $dataset, cursor: $cursor, limit: $limit) {
    __typename
    ... on QueryChangesSinceSuccess { data { cursor hasMore left versions { ${FIELDS} } entered { ${FIELDS} } } }
    ... on DomainError { code message }
  }
}`;

interface Page {
  changesSince: { data: { cursor: string; hasMore: boolean; left: string[]; versions: unknown[]; entered: unknown[] } };
}

export interface ScaleFigures {
  settings: ScaleSettings;
  loadSeconds: number;
  tokenSeconds: number;
  share: { api: number[]; sql: number[]; alone: number[]; rows: number; aloneRows: number; pages: number; apiCpu: number[]; aloneCpu: number[] };
  empty: { api: number[]; sql: number[]; cpu: number };
  firstPage: { api: number[]; sql: number[]; cpu: number };
  memory: { before: MemorySnapshot; after: MemorySnapshot; peakHeapMb: number; peakRssMb: number };
  load: number;
  cpus: number;
}

type Child = { send(cmd: LiveServerCommand): Promise<LiveServerReply> };

async function load(sql: postgres.Sql, s: ScaleSettings): Promise<Record<'big' | 'alone' | 'small', string>> {
  const dataset = async (name: string) => (await sql<{ id: string }[]>`insert into datasets (name, properties) values (${name}, ${['region', 'n', 'note']}) returning id`)[0]!.id;
  const fill = async (id: string, count: number, region: (i: string) => string) => {
    // In chunks of 100,000 entities, each with its version 1 as the service writes a create.
    for (let from = 1; from <= count; from += 100_000) {
      const to = Math.min(count, from + 99_999);
      await sql.unsafe(`
        with made as (
          insert into entities (id, dataset_id, label, data, version)
          select gen_random_uuid(), $1::uuid, 'Household ' || i,
                 jsonb_build_object('region', ${region('i')}, 'n', i, 'note', 'visited; two adults, three children, water from the borehole'), 1
            from generate_series($2::int, $3::int) as i
          returning id, dataset_id, label, data)
        insert into entity_versions (entity_id, dataset_id, version, action, label, data, changed, source, change_id, server_diff, base_diff)
        select id, dataset_id, 1, 'CREATE', label, data, data || jsonb_build_object('label', label), 'ONLINE', gen_random_uuid()::text, '[]', '[]'
          from made order by (data->>'n')::int`, [id, from, to]);
    }
  };
  const big = await dataset('scale_big');
  await fill(big, s.entities, (i) => `'r' || lpad((${i} % ${s.regions})::text, 2, '0')`);
  const alone = await dataset('scale_10k');
  await fill(alone, s.alone, () => `'r07'`);
  const small = await dataset('scale_2k');
  await fill(small, s.small, () => `'r07'`);
  await sql`analyze entities`;
  await sql`analyze entity_versions`;
  return { big, alone, small };
}

/** One whole sync through the API: its time, rows and pages; the server's memory read after each page (untimed). */
async function apiSync(url: string, token: string, dataset: string, limit: number, server?: Child, peak?: { heap: number; rss: number }) {
  let cursor: string | null = null;
  let rows = 0;
  let pages = 0;
  let ms = 0;
  for (;;) {
    const t0 = performance.now();
    const page: Page = await gql(url, PULL, { dataset, cursor, limit }, token);
    ms += performance.now() - t0;
    const d = page.changesSince.data;
    rows += d.versions.length + d.entered.length + d.left.length;
    pages++;
    cursor = d.cursor;
    if (server && peak) {
      const m = (await server.send({ cmd: 'memory' })).memory!;
      peak.heap = Math.max(peak.heap, m.heapMb);
      peak.rss = Math.max(peak.rss, m.rssMb);
    }
    if (!d.hasMore) return { ms, rows, pages, cursor };
  }
}

/** The share read by hand-written SQL: the token's subset log after a cursor, joined to its versions, page by page. */
async function sqlSync(sql: postgres.Sql, tokenId: string, datasetId: string, limit: number) {
  let cursor = { txid: '0', seq: '0' };
  let rows = 0;
  const t0 = performance.now();
  for (;;) {
    const page = await sharePage(sql, tokenId, datasetId, cursor, limit);
    rows += Math.min(page.length, limit);
    const last = page[Math.min(page.length, limit) - 1];
    if (last) cursor = { txid: last.txid as string, seq: String(last.seq) };
    if (page.length <= limit) return { ms: performance.now() - t0, rows };
  }
}

const sharePage = (sql: postgres.Sql, tokenId: string, datasetId: string, cursor: { txid: string; seq: string }, limit: number) =>
  sql.unsafe(
    `select l.txid::text as txid, l.seq, l.kind, v.entity_id, v.version, v.label, v.data, v.deleted, v.change_id, v.conflict, v.conflicting_properties
       from subset_log l left join entity_versions v on v.seq = l.version_seq
      where l.token_id = $1 and l.dataset_id = $2 and (l.txid, l.seq) > ($3::xid8, $4::bigint) and l.txid < ${PULL_HORIZON}
      order by l.txid, l.seq limit ${limit + 1}`,
    [tokenId, datasetId, cursor.txid, cursor.seq],
  );

const versionsPage = (sql: postgres.Sql, datasetId: string, limit: number) =>
  sql.unsafe(
    `select v.entity_id, v.version, v.label, v.data, v.deleted, v.change_id, v.conflict, v.conflicting_properties, v.txid::text as txid, v.seq
       from entity_versions v where v.dataset_id = $1 and (v.txid, v.seq) > ('0'::xid8, 0) and v.txid < ${PULL_HORIZON}
      order by v.txid, v.seq limit ${limit + 1}`,
    [datasetId],
  );

async function timesOf(count: number, op: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await op();
    out.push(performance.now() - t0);
  }
  return out;
}

export async function scalePhase(opts: { db: Db; sql: postgres.Sql; databaseUrl: string; server: Child; log: (s: string) => void; settings?: Partial<ScaleSettings> }): Promise<ScaleFigures> {
  const s = { ...SCALE_DEFAULTS, ...opts.settings };
  const { sql, log } = opts;
  const load0 = loadavg()[0]!;
  log(`scale: loading ${s.entities.toLocaleString('en-US')} entities in ${s.regions} regions, then ${s.alone.toLocaleString('en-US')} and ${s.small.toLocaleString('en-US')} in datasets of their own`);
  const l0 = performance.now();
  const ids = await load(sql, s);
  const loadSeconds = (performance.now() - l0) / 1000;
  log(`scale: loaded in ${loadSeconds.toFixed(0)} s; making the region token (its share written)`);
  const t0 = performance.now();
  const region = await createToken(opts.db, { name: 'scale tablet r07', role: 'collector', deviceId: 'scale-r07', datasets: ['scale_big'], subset: [{ property: 'region', values: ['r07'] }] });
  const tokenSeconds = (performance.now() - t0) / 1000;
  const alone = await createToken(opts.db, { name: 'scale tablet 10k', role: 'collector', deviceId: 'scale-10k', datasets: ['scale_10k'] });
  const small = await createToken(opts.db, { name: 'scale tablet 2k', role: 'collector', deviceId: 'scale-2k', datasets: ['scale_2k'] });
  await sql`analyze subset_log`;
  const url = (await opts.server.send({ cmd: 'start', kind: 'entity-sync', databaseUrl: opts.databaseUrl })).url!;

  // Warm-up: each sync once (caches, compiled code), then the memory before.
  const warm = await apiSync(url, region.secret, 'scale_big', s.pageLimit);
  await apiSync(url, alone.secret, 'scale_10k', s.pageLimit);
  await sqlSync(sql, region.token.id, ids.big, s.pageLimit);
  const before = (await opts.server.send({ cmd: 'memory' })).memory!;
  const peak = { heap: before.heapMb, rss: before.rssMb };
  const share = { api: [] as number[], sql: [] as number[], alone: [] as number[], rows: warm.rows, aloneRows: 0, pages: warm.pages, apiCpu: [] as number[], aloneCpu: [] as number[] };
  // The server's CPU time over one sync (asked over IPC before and after, untimed).
  const cpuOf = async (op: () => Promise<void>): Promise<number> => {
    const before = (await opts.server.send({ cmd: 'cpu' })).cpu!;
    await op();
    const after = (await opts.server.send({ cmd: 'cpu' })).cpu!;
    return (after.user - before.user + after.system - before.system) / 1000;
  };
  for (let i = 0; i < s.rounds; i++) {
    const steps: (() => Promise<void>)[] = [
      async () => {
        share.apiCpu.push(
          await cpuOf(async () => {
            const r = await apiSync(url, region.secret, 'scale_big', s.pageLimit);
            if (r.rows !== warm.rows) throw new Error(`the share's sync read ${r.rows} rows, the first ${warm.rows}`);
            share.api.push(r.ms);
          }),
        );
        // Once more, reading the server's memory between pages (untimed).
        await apiSync(url, region.secret, 'scale_big', s.pageLimit, opts.server, peak);
      },
      async () => {
        const r = await sqlSync(sql, region.token.id, ids.big, s.pageLimit);
        if (r.rows !== warm.rows) throw new Error(`hand-written SQL read ${r.rows} rows of the share, the API ${warm.rows}`);
        share.sql.push(r.ms);
      },
      async () => {
        share.aloneCpu.push(
          await cpuOf(async () => {
            const r = await apiSync(url, alone.secret, 'scale_10k', s.pageLimit);
            share.aloneRows = r.rows;
            share.alone.push(r.ms);
          }),
        );
      },
    ];
    for (const step of i % 2 === 0 ? steps : [...steps].reverse()) await step();
  }
  const after = (await opts.server.send({ cmd: 'memory' })).memory!;
  log(`scale: share sync ${fmt.ms(percentile([...share.api].sort((a, b) => a - b), 50))} (${share.rows} rows, ${share.pages} pages)`);

  const empty = { api: [] as number[], sql: [] as number[], cpu: 0 };
  empty.cpu =
    (await cpuOf(async () => {
      empty.api = await timesOf(s.emptyPulls, async () => {
        const p: Page = await gql(url, PULL, { dataset: 'scale_big', cursor: warm.cursor, limit: s.pageLimit }, region.secret);
        if (p.changesSince.data.versions.length + p.changesSince.data.entered.length > 0) throw new Error('the empty pull was not empty');
      });
    })) / s.emptyPulls;
  const [, txid, seq] = /^v1:(\d+):(\d+)$/.exec(Buffer.from(warm.cursor, 'base64url').toString())!;
  empty.sql = await timesOf(s.emptyPulls, () => sharePage(sql, region.token.id, ids.big, { txid: txid!, seq: seq! }, s.pageLimit));

  const firstPage = { api: [] as number[], sql: [] as number[], cpu: 0 };
  firstPage.cpu =
    (await cpuOf(async () => {
      firstPage.api = await timesOf(s.firstPages, async () => {
        const p: Page = await gql(url, PULL, { dataset: 'scale_2k', limit: 100 }, small.secret);
        if (p.changesSince.data.versions.length !== 100) throw new Error('the first page of scale_2k was not 100 versions');
      });
    })) / s.firstPages;
  firstPage.sql = await timesOf(s.firstPages, () => versionsPage(sql, ids.small, 100));
  return { settings: s, loadSeconds, tokenSeconds, share, empty, firstPage, memory: { before, after, peakHeapMb: peak.heap, peakRssMb: peak.rss }, load: load0, cpus: cpus().length };
}

/** The scale section of the report: a table of its own, each figure beside its baseline. */
export function scaleReport(f: ScaleFigures): string {
  const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  const p99 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 99);
  const n = (x: number) => x.toLocaleString('en-US');
  const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  const s = f.settings;
  const shareApi = med(f.share.api);
  const shareSql = med(f.share.sql);
  const aloneApi = med(f.share.alone);
  const heapGrowth = f.memory.after.heapMb - f.memory.before.heapMb;
  type Row = [string, string, string, string, string, string];
  const rows: Row[] = [
    [`initial sync of the share (${n(f.share.rows)} rows, ${f.share.pages} pages of ${n(s.pageLimit)}) through the API (vs the same rows by hand-written SQL)`, fmt.ms(shareApi), fmt.ms(shareSql), fmt.ratio(shareApi / shareSql), '< 1 s and ≤ 2×', met(shareApi < 1000 && shareApi / shareSql <= 2)],
    [`the same sync (vs the initial sync of a ${n(s.alone)}-entity dataset alone, ${n(f.share.aloneRows)} rows, token without a subset)`, fmt.ms(shareApi), fmt.ms(aloneApi), fmt.ratio(shareApi / aloneApi), '≤ 1.5×', met(shareApi / aloneApi <= 1.5)],
    [`empty incremental pull of the share, median of ${s.emptyPulls} (vs the same page by hand-written SQL)`, fmt.ms(med(f.empty.api)), fmt.ms(med(f.empty.sql)), fmt.ratio(med(f.empty.api) / med(f.empty.sql)), '< 10 ms', met(med(f.empty.api) < 10)],
    [`empty incremental pull, p99`, fmt.ms(p99(f.empty.api)), fmt.ms(p99(f.empty.sql)), fmt.ratio(p99(f.empty.api) / p99(f.empty.sql)), '', ''],
    [`empty incremental pull: server CPU time per pull`, fmt.ms(f.empty.cpu), '', '', '', ''],
    [`first page of 100 versions of a ${n(s.small)}-entity dataset beside the million, median of ${s.firstPages} (vs hand-written SQL)`, fmt.ms(med(f.firstPage.api)), fmt.ms(med(f.firstPage.sql)), fmt.ratio(med(f.firstPage.api) / med(f.firstPage.sql)), '< 20 ms', met(med(f.firstPage.api) < 20)],
    [`first page of 100 versions: server CPU time per page`, fmt.ms(f.firstPage.cpu), '', '', '', ''],
    [`server CPU time of the share's initial sync (vs of the sync of the dataset alone)`, fmt.ms(med(f.share.apiCpu)), fmt.ms(med(f.share.aloneCpu)), fmt.ratio(med(f.share.apiCpu) / med(f.share.aloneCpu)), '', ''],
    [`server heap after a forced GC, before -> after ${s.rounds} syncs of the share and of the dataset alone (peak between pages)`, `${fmt.mb(f.memory.before.heapMb)} -> ${fmt.mb(f.memory.after.heapMb)} (peak ${fmt.mb(f.memory.peakHeapMb)})`, '', '', 'flat (≤ +5 MB)', met(heapGrowth <= 5)],
    [`server RSS, before -> after (peak between pages)`, `${fmt.mb(f.memory.before.rssMb)} -> ${fmt.mb(f.memory.after.rssMb)} (peak ${fmt.mb(f.memory.peakRssMb)})`, '', '', '', ''],
    [`token made with its share (${n(f.share.rows)} ENTERED rows from ${n(s.entities)} entities), once`, fmt.ms(f.tokenSeconds * 1000), '', '', '', ''],
  ];
  const head: Row = ['metric', 'entity-sync', 'baseline', 'ratio', 'target', 'met'];
  const all = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => (c === 0 || c === 5 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const targets = rows.filter((r) => r[4] !== '');
  return `
## Scale: each device its share (issue 20)

- Machine load average (1 min) when the section began: ${f.load.toFixed(2)} (on ${f.cpus} cores).
- ${n(s.entities)} entities in ${s.regions} regions (entity i in region i mod ${s.regions}), one version each, loaded by set-based SQL in
  ${f.loadSeconds.toFixed(0)} s; a ${n(s.alone)}-entity and a ${n(s.small)}-entity dataset after it. A collector token with the subset
  \`region in [r07]\`; the server alone in a process of its own (bench/live-server.ts). Syncs: pages of ${n(s.pageLimit)} from no cursor
  over HTTP with the client library's fields plus \`entered\` and \`left\`; ${s.rounds} rounds after a warm-up, the order reversed every
  other round; figures are medians. Hand-written SQL: the same pages read from the token's subset log joined to the versions, with
  the same pull horizon, by a postgres.js client in the bench process. Server CPU: process.cpuUsage() of the server process over
  one sync (client and Postgres not included), median of the rounds.

${[line(head), `| ${widths.map((w, c) => (c === 0 || c === 5 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`, ...rows.map(line)].join('\n')}

Scale targets met: ${targets.filter((r) => r[5] === 'MET').length} of ${targets.length}.
`;
}
