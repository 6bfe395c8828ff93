/**
 * The load phase of `npm run bench` (issue 7): `clients` concurrent clients for `seconds`, each
 * submitting small batches of in-order UPDATE changes to entities of its own, one batch at a
 * time, over loopback only and bounded in time. Measured: changes/s, batch latency, errors, lost
 * changes (acknowledged but not in the database afterwards) and the memory of the process doing
 * the work at the start, after `midSeconds` and at the end.
 *
 * - entity-sync: the real server in a process of its own (bench/live-server.ts: buildApp with the
 *   production event bus over Postgres LISTEN/NOTIFY), the HTTP clients in the bench process.
 * - Baseline: the same load written as raw SQL (bench/raw-sql.ts rawUpdate, one transaction per
 *   change, as submitChanges does), `clients` concurrent workers sharing a pool of 10 connections
 *   (the service's pool size), in a process of its own: this module, forked (bottom of the file).
 *
 * The two run one after the other (a minute each by default), entity-sync first.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { memory, serveCommands, summarize, updateData, type LiveServerCommand, type LiveServerReply, type LoadResult, type MemorySnapshot } from './lib.js';
import { rawUpdate, type RawContext } from './raw-sql.js';
import { createEntities, DATASET } from './service.js';

export interface LoadSettings {
  clients: number;
  /** Changes per batch: one in-order update of each of the client's own entities. */
  batchSize: number;
  seconds: number;
  /** When the middle memory reading is taken (10 s, or half a shorter run). */
  midSeconds: number;
}

/** One side's figures. */
export interface LoadFigures extends LoadResult {
  /** Batches answered (rate and latencies are per change and per batch). */
  batches: number;
  /** Failed requests and unexpected outcomes; must be 0. */
  errors: number;
  firstError: string | null;
  /** Changes acknowledged as applied, warm-up included (`count`: in the timed run only). */
  acknowledged: number;
  /** Acknowledged changes the database does not hold afterwards; must be 0. */
  lost: number;
  /** Versions in the database from this side's devices (acknowledged or not). */
  stored: number;
  memory: { start: MemorySnapshot; mid: MemorySnapshot; end: MemorySnapshot };
}

type StartChild = <C, R extends { ok: boolean; error?: string }>(file: string) => { send(cmd: C): Promise<R>; child: ChildProcess };

/** What the raw-SQL child is told, and what it answers. */
type RawLoadCommand = { cmd: 'run'; url: string; entityIds: string[][]; settings: LoadSettings } | { cmd: 'exit' };
interface RawLoadReply {
  ok: boolean;
  error?: string;
  latencies?: number[];
  seconds?: number;
  acknowledged?: number;
  /** Acknowledged in the timed run only. */
  timed?: number;
  errors?: number;
  firstError?: string | null;
  memory?: LoadFigures['memory'];
}

const SUBMIT = `mutation LoadSubmit($changes: [ChangeInput!]!) { submitChanges(changes: $changes) {
  __typename ... on MutationSubmitChangesSuccess { data { changeId outcome originalOutcome version } } ... on DomainError { code message } } }`;
const VERSION = `query LoadVersion($id: ID!) { entity(id: $id) { version } }`;

interface Answer {
  changeId: string;
  outcome: string;
  originalOutcome: string | null;
  version: number | null;
}

const split = <T>(xs: T[], parts: number): T[][] => Array.from({ length: parts }, (_, i) => xs.slice((i * xs.length) / parts, ((i + 1) * xs.length) / parts));

/** Runs the phase: both sides, one after the other, and checks what landed. */
export async function loadPhase(o: {
  /** The bench's in-process server, for the untimed set-up (entities via the API). */
  setupUrl: string;
  databaseUrl: string;
  /** A client of the bench database for the checks afterwards. */
  sql: postgres.Sql;
  settings: LoadSettings;
  startChild: StartChild;
  log: (s: string) => void;
  /** API tokens: each client submits with a collector token bound to its device; checks read as admin. */
  tokens: { admin: string; collector: (deviceId: string) => Promise<string> };
}): Promise<{ es: LoadFigures; raw: LoadFigures }> {
  const s = o.settings;
  const count = s.clients * s.batchSize;
  const esIds = split(await createEntities(o.setupUrl, count, 100, 'load es'), s.clients);
  const rawIds = split(await createEntities(o.setupUrl, count, 100, 'load raw'), s.clients);

  // entity-sync: the server alone in its process; the clients here.
  const server = o.startChild<LiveServerCommand, LiveServerReply>('./live-server.ts');
  let es: LoadFigures;
  try {
    const { url } = await server.send({ cmd: 'start', kind: 'entity-sync', databaseUrl: o.databaseUrl });
    o.log(`load: entity-sync, ${s.clients} clients for ${s.seconds} s`);
    const auth = { admin: o.tokens.admin, workers: await Promise.all(esIds.map((_, w) => o.tokens.collector(deviceOf(w)))) };
    const run = await esLoad(url!, esIds, s, auth, async () => (await server.send({ cmd: 'memory' })).memory!);
    await server.send({ cmd: 'exit' });
    const [found] = await o.sql<{ n: number }[]>`select count(*)::int as n from changes c join entity_versions v on v.change_id = c.change_id
      where c.original and c.outcome = 'APPLIED' and c.version = v.version and c.change_id = any(${run.acknowledgedIds})`;
    es = { ...run.figures, lost: run.acknowledgedIds.length - found!.n, stored: await storedBy(o.sql, 'load-es-%') };
  } finally {
    if (server.child.connected) server.child.kill();
  }
  o.log(`load: entity-sync ${Math.round(es.rate)} changes/s, ${es.errors} errors, ${es.lost} lost`);

  // Raw SQL: the same clients as workers in a process of their own.
  const child = o.startChild<RawLoadCommand, RawLoadReply>('./load.ts');
  let raw: LoadFigures;
  try {
    o.log(`load: raw SQL, ${s.clients} workers for ${s.seconds} s`);
    const r = await child.send({ cmd: 'run', url: o.databaseUrl, entityIds: rawIds, settings: s });
    await child.send({ cmd: 'exit' });
    const stored = await storedBy(o.sql, 'load-raw-%');
    // Raw updates do not report their change ids: what is stored is counted against what was acknowledged.
    raw = {
      ...summarize(r.latencies!, r.seconds!),
      count: r.timed!,
      rate: r.timed! / r.seconds!,
      batches: r.latencies!.length,
      errors: r.errors!,
      firstError: r.firstError ?? null,
      acknowledged: r.acknowledged!,
      lost: Math.max(0, r.acknowledged! - stored),
      stored,
      memory: r.memory!,
    };
  } finally {
    if (child.child.connected) child.child.kill();
  }
  o.log(`load: raw SQL ${Math.round(raw.rate)} changes/s, ${raw.errors} errors, ${raw.lost} lost`);
  return { es, raw };
}

/** Versions stored with changes from devices named like `pattern`. */
async function storedBy(sql: postgres.Sql, pattern: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from entity_versions where device_id like ${pattern}`;
  return row!.n;
}

const deviceOf = (worker: number) => `load-es-${worker}`;

async function post<T>(url: string, token: string, query: string, variables: Record<string, unknown>): Promise<{ status: number; data?: T; errors?: { message: string }[] }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, ...((await res.json()) as { data?: T; errors?: { message: string }[] }) };
}

/**
 * The entity-sync clients. Each sends one batch at a time, every result checked (APPLIED at the
 * next version). A batch whose answer never came is resent with the same change ids, as a real
 * client would (DUPLICATE then counts as acknowledged); each such failure counts as an error.
 */
async function esLoad(
  url: string,
  ids: string[][],
  s: LoadSettings,
  auth: { admin: string; workers: string[] },
  serverMemory: () => Promise<MemorySnapshot>,
): Promise<{ figures: Omit<LoadFigures, 'lost' | 'stored'>; acknowledgedIds: string[] }> {
  const versions = new Map<string, number>(ids.flat().map((id) => [id, 1]));
  const acknowledgedIds: string[] = [];
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let n = 0;
  const failed = (what: string) => {
    errors += 1;
    firstError ??= what.slice(0, 300);
  };

  async function batch(worker: number): Promise<void> {
    const deviceId = deviceOf(worker);
    const changes = ids[worker]!.map((entityId) => ({ id: randomUUID(), deviceId, dataset: DATASET, entityId, action: 'UPDATE', baseVersion: versions.get(entityId)!, data: updateData(n++) }));
    const t0 = performance.now();
    let clean = true;
    const fail = (what: string) => {
      clean = false;
      failed(what);
    };
    for (let attempt = 1; ; attempt++) {
      let answers: Answer[] | undefined;
      try {
        const res = await post<{ submitChanges: { data?: Answer[]; code?: string; message?: string } }>(url, auth.workers[worker]!, SUBMIT, { changes });
        answers = res.data?.submitChanges.data;
        if (res.status !== 200 || !answers) fail(`HTTP ${res.status}: ${JSON.stringify(res.errors ?? res.data)}`);
      } catch (e) {
        fail(`no answer: ${(e as Error).message}`);
      }
      if (answers) {
        latencies.push(performance.now() - t0);
        answers.forEach((a, i) => {
          const c = changes[i]!;
          const applied = a.outcome === 'APPLIED' || (a.outcome === 'DUPLICATE' && a.originalOutcome === 'APPLIED');
          if (a.changeId !== c.id || !applied || a.version !== c.baseVersion + 1) fail(`unexpected result ${JSON.stringify(a)} for ${JSON.stringify(c)}`);
          if (applied && a.changeId === c.id) acknowledgedIds.push(c.id);
        });
        break;
      }
      if (attempt === 3) break;
    }
    // Whatever happened, the next batch starts from the server's versions if they are not the expected ones.
    if (!clean) {
      for (const id of ids[worker]!) {
        const r = await post<{ entity: { version: number } | null }>(url, auth.admin, VERSION, { id }).catch(() => null);
        if (r?.data?.entity) versions.set(id, r.data.entity.version);
      }
    } else {
      for (const c of changes) versions.set(c.entityId, c.baseVersion + 1);
    }
  }

  // Warm-up (not timed): two batches per client, so the start reading follows compilation and pools filling.
  await Promise.all(ids.map(async (_, w) => {
    await batch(w);
    await batch(w);
  }));
  latencies.length = 0;
  const warmAcks = acknowledgedIds.length;
  const start = await serverMemory();
  const t0 = performance.now();
  const end = t0 + s.seconds * 1000;
  const mid = new Promise<MemorySnapshot>((resolve, reject) => setTimeout(() => serverMemory().then(resolve, reject), s.midSeconds * 1000));
  mid.catch(() => {}); // awaited below; not unhandled if the run fails first
  await Promise.all(
    ids.map(async (_, w) => {
      while (performance.now() < end) await batch(w);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const middle = await mid;
  const count = acknowledgedIds.length - warmAcks;
  return {
    figures: {
      ...summarize(latencies, seconds),
      count,
      rate: count / seconds,
      batches: latencies.length,
      errors,
      firstError,
      acknowledged: acknowledgedIds.length,
      memory: { start, mid: middle, end: await serverMemory() },
    },
    acknowledgedIds,
  };
}

/** The raw-SQL workers (in the forked child): one transaction per change, one batch at a time per worker. */
async function rawLoad(url: string, ids: string[][], s: LoadSettings): Promise<RawLoadReply> {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  try {
    const versions = new Map<string, number>(ids.flat().map((id) => [id, 1]));
    const latencies: number[] = [];
    let acknowledged = 0;
    let errors = 0;
    let firstError: string | null = null;
    let n = 0;
    const contexts = ids.map((_, w): RawContext => ({ sql, dataset: DATASET, deviceId: `load-raw-${w}`, stepMs: new Map() }));
    const batch = async (w: number) => {
      const t0 = performance.now();
      for (const id of ids[w]!) {
        try {
          versions.set(id, await rawUpdate(contexts[w]!, { entityId: id, baseVersion: versions.get(id)!, data: updateData(n++) }));
          acknowledged += 1;
        } catch (e) {
          errors += 1;
          firstError ??= (e as Error).message;
        }
      }
      latencies.push(performance.now() - t0);
    };
    await Promise.all(ids.map(async (_, w) => {
      await batch(w);
      await batch(w);
    }));
    latencies.length = 0;
    const warm = acknowledged;
    const start = memory();
    const t0 = performance.now();
    const end = t0 + s.seconds * 1000;
    let mid: MemorySnapshot | undefined;
    const timer = setTimeout(() => (mid = memory()), s.midSeconds * 1000);
    await Promise.all(
      ids.map(async (_, w) => {
        while (performance.now() < end) await batch(w);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    clearTimeout(timer);
    return { ok: true, latencies, seconds, acknowledged, timed: acknowledged - warm, errors, firstError, memory: { start, mid: mid ?? memory(), end: memory() } };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

// Forked by loadPhase (argv[1] is this file only then), this module is the raw-SQL side's process.
if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  serveCommands<RawLoadCommand>((msg) => (msg.cmd === 'run' ? rawLoad(msg.url, msg.entityIds, msg.settings) : Promise.resolve({ ok: true })));
}
