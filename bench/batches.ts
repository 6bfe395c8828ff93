/**
 * The batch phases of `npm run bench` (issue 13): `clients` tablets at once, each a device with a
 * collector token bound to it and entities of its own, each sending one batch at a time.
 * - In-order: batches of one in-order UPDATE of each of the client's 100 entities. entity-sync
 *   (submitChanges over HTTP) beside the set-based SQL baseline (bench/set-sql.ts setUpdates: one
 *   transaction per batch, the best hand-written way) and today's per-change SQL (bench/raw-sql.ts
 *   rawUpdate: one transaction per change), each with as many workers at once.
 * - Runs: batches of offline runs sent reversed (bench/workloads.ts RunWork), beside their set-based
 *   SQL (setRuns). Afterwards every run must have ended applied, nothing held, versions dense.
 * Rounds rotate the sides (A B C, C B A, …); rates are changes over the summed wall time of a
 * side's rounds. CPU: the entity-sync server's process (asked over IPC before and after each
 * round) and the baseline's process. The baselines must write the same rows as entity-sync
 * (bench/checks.ts sameRows). Without a baseline (bench/profile.ts) only entity-sync runs.
 */
import type postgres from 'postgres';
import { BENCH_PROPS, combine, gql, perWorker, type BaselineCommand, type BaselineReply, type BatchKind, type LoadResult, type MemorySnapshot, type TimedRun } from './lib.js';
import { runsLanded, sameRows } from './checks.js';
import { createDataset, createEntities } from './service.js';
import { InOrderWork, RunWork, type BenchChange, type BenchRun, type RunShape } from './workloads.js';

export const BATCH_DATASET = 'batches';

export interface BatchSettings {
  clients: number;
  /** In-order: changes per batch (the client's entities, one update each). */
  batchSize: number;
  runShape: RunShape;
  /** Untimed batches per client and side first. */
  warmup: number;
  rounds: number;
  /** Batches per client in a round. */
  perRound: number;
}

/** The entity-sync server the clients send to; `cpu` and `memory` are its process's. */
export interface BatchServer {
  url: string;
  cpu(): Promise<NodeJS.CpuUsage>;
  memory(): Promise<MemorySnapshot>;
}

type Steps = { step: string; ms: number }[];

export interface BatchFigures {
  inOrder: { es: LoadResult; set?: LoadResult; perChange?: LoadResult; setSteps?: Steps; perChangeSteps?: Steps };
  runs: { es: LoadResult; set?: LoadResult; setSteps?: Steps };
  memory: { es: MemorySnapshot; baseline?: MemorySnapshot };
}

const SUBMIT = `mutation BatchSubmit($changes: [ChangeInput!]!) { submitChanges(changes: $changes) {
  __typename
  ... on MutationSubmitChangesSuccess { data { changeId outcome version conflict released { changeId outcome version conflict } } }
  ... on DomainError { code message } } }`;

interface Answer {
  changeId: string;
  outcome: string;
  version: number | null;
  conflict: string | null;
  released?: Answer[];
}

const fail = (what: string, got: unknown): never => {
  throw new Error(`${what}: got ${JSON.stringify(got).slice(0, 600)}`);
};

/** entity-sync's clients: over HTTP, one batch at a time each, every answer checked. */
class HttpClients {
  constructor(
    private server: BatchServer,
    private tokens: readonly string[],
    readonly works: readonly (InOrderWork | RunWork)[],
  ) {}

  /** `batches` batches per client, all clients at once; cpuMs: the server's. */
  async round(batches: number): Promise<TimedRun> {
    const before = await this.server.cpu();
    const run = await perWorker(this.works.length, batches, (w) => this.batch(w));
    const after = await this.server.cpu();
    return { ...run, cpuMs: (after.user - before.user + after.system - before.system) / 1000 };
  }

  private async submit(w: number, changes: readonly BenchChange[]): Promise<Map<string, Answer>> {
    const data = await gql<{ submitChanges: { data?: Answer[]; code?: string; message?: string } }>(this.server.url, SUBMIT, { changes }, this.tokens[w]!);
    const answers = data.submitChanges.data;
    if (!answers || answers.length !== changes.length) fail('submitChanges', data.submitChanges);
    return new Map(answers!.map((a) => [a.changeId, a]));
  }

  private async batch(w: number): Promise<void> {
    const work = this.works[w]!;
    if (work instanceof InOrderWork) {
      const changes = work.next();
      const answers = await this.submit(w, changes);
      for (const c of changes) {
        const a = answers.get(c.id);
        if (a?.outcome !== 'APPLIED' || a.version !== c.baseVersion! + 1 || a.conflict !== null) fail(`expected APPLIED at ${c.baseVersion! + 1}`, a);
      }
      work.landed(changes);
      return;
    }
    const { runs, changes } = work.next();
    const answers = await this.submit(w, changes);
    for (const run of runs) checkRun(run, answers);
    work.landed(runs);
  }
}

/** A reversed run: its later changes held, its first applied and releasing them in run order. */
function checkRun(run: BenchRun, answers: Map<string, Answer>): void {
  const [first, ...rest] = run.changes;
  const head = answers.get(first!.id);
  if (head?.outcome !== 'APPLIED' || head.version !== run.firstVersion || head.conflict !== null) fail(`a run's first change: expected APPLIED at ${run.firstVersion}`, head);
  const released = head!.released ?? [];
  const expected = rest.map((c, i) => [c.id, 'APPLIED', run.firstVersion + 1 + i, null]);
  if (JSON.stringify(released.map((r) => [r.changeId, r.outcome, r.version, r.conflict])) !== JSON.stringify(expected)) fail(`a run's first change: expected it to release ${JSON.stringify(expected)}`, released);
  for (const c of rest) if (answers.get(c.id)?.outcome !== 'HELD') fail('a later change of a reversed run: expected HELD', answers.get(c.id));
}

/** Runs both batch phases (set-up untimed); with `baseline`, its sides beside entity-sync's. */
export async function batchPhase(o: {
  /** A server for the untimed set-up (dataset, entities), with an admin token in use. */
  setupUrl: string;
  server: BatchServer;
  baseline?: (cmd: BaselineCommand) => Promise<BaselineReply>;
  /** A collector token bound to the device and to the batch dataset. */
  tokenFor: (deviceId: string) => Promise<string>;
  sql: postgres.Sql;
  settings: BatchSettings;
  log: (s: string) => void;
}): Promise<BatchFigures> {
  const s = o.settings;
  const ds = BATCH_DATASET;
  await createDataset(o.setupUrl, BENCH_PROPS, ds);
  const clients = Array.from({ length: s.clients }, (_, w) => w);
  const entities = async (prefix: string, perClient: number) => Promise.all(clients.map((w) => createEntities(o.setupUrl, perClient, 100, `${prefix} ${w}`, ds)));
  const tokens = (prefix: string) => Promise.all(clients.map((w) => o.tokenFor(`${prefix}-${w}`)));
  const workers = (prefix: string, ids: string[][]) => ids.map((entityIds, w) => ({ deviceId: `${prefix}-${w}`, entityIds }));
  const base = o.baseline;
  const baseRound = (kind: BatchKind) => async (n: number) => (await base!({ cmd: 'batchRound', kind, batches: n })).run!;
  const batchesPerSide = s.clients * (s.warmup + s.rounds * s.perRound);

  /** Warm-up, then `rounds` timed rounds per side, the sides' order reversed every other round; rates per change. */
  async function rounds(size: number, sides: (readonly [string, (n: number) => Promise<TimedRun>])[]): Promise<Map<string, LoadResult>> {
    for (const [, side] of sides) await side(s.warmup);
    if (base) await base({ cmd: 'resetSteps' });
    const runs = new Map<string, TimedRun[]>(sides.map(([k]) => [k, []]));
    for (let i = 0; i < s.rounds; i++) for (const [k, side] of i % 2 === 0 ? sides : [...sides].reverse()) runs.get(k)!.push(await side(s.perRound));
    return new Map([...runs].map(([k, r]) => [k, combine(r, size)]));
  }

  // In-order updates.
  const es = new HttpClients(
    o.server,
    await tokens('batch-es'),
    (await entities('batch es', s.batchSize)).map((ids, w) => new InOrderWork(`batch-es-${w}`, ds, ids)),
  );
  if (base) {
    await base({ cmd: 'batchWorkers', kind: 'set', dataset: ds, workers: workers('batch-set', await entities('batch set', s.batchSize)) });
    await base({ cmd: 'batchWorkers', kind: 'perChange', dataset: ds, workers: workers('batch-raw', await entities('batch raw', s.batchSize)) });
  }
  o.log(`batches: ${s.clients} clients, ${s.batchSize} in-order updates per batch`);
  const inOrder = await rounds(s.batchSize, [['es', (n) => es.round(n)], ...(base ? ([['set', baseRound('set')], ['perChange', baseRound('perChange')]] as const) : [])]);
  const setSteps = base ? (await base({ cmd: 'batchSteps', kind: 'set' })).steps! : undefined;
  const perChangeSteps = base ? (await base({ cmd: 'batchSteps', kind: 'perChange' })).steps! : undefined;
  const memory = { es: await o.server.memory(), ...(base ? { baseline: (await base({ cmd: 'memory' })).memory! } : {}) };
  const rate = (k: string) => Math.round(inOrder.get(k)?.rate ?? NaN);
  o.log(`batches: entity-sync ${rate('es')}/s${base ? `, set-based SQL ${rate('set')}/s, per-change SQL ${rate('perChange')}/s` : ''}`);

  // Offline runs, reversed.
  const runSize = (s.runShape.collect + s.runShape.existing) * s.runShape.length;
  const esRuns = new HttpClients(
    o.server,
    await tokens('runs-es'),
    (await entities('runs es', s.runShape.existing)).map((ids, w) => new RunWork(`runs-es-${w}`, ds, ids, s.runShape)),
  );
  if (base) await base({ cmd: 'batchWorkers', kind: 'setRuns', dataset: ds, workers: workers('runs-set', await entities('runs set', s.runShape.existing)), runShape: s.runShape });
  o.log(`runs: ${s.clients} clients, ${runSize} offline-run changes per batch, reversed`);
  const runs = await rounds(runSize, [['es', (n) => esRuns.round(n)], ...(base ? ([['set', baseRound('setRuns')]] as const) : [])]);
  const runSteps = base ? (await base({ cmd: 'batchSteps', kind: 'setRuns' })).steps! : undefined;
  o.log(`runs: entity-sync ${Math.round(runs.get('es')!.rate)}/s${base ? `, set-based SQL ${Math.round(runs.get('set')!.rate)}/s` : ''}`);

  // What landed: in-order versions by device, every run applied with nothing held, the same rows on both sides.
  const [inOrderVersions] = await o.sql<{ es: number; set: number; raw: number }[]>`select
    count(*) filter (where device_id like 'batch-es-%')::int as es, count(*) filter (where device_id like 'batch-set-%')::int as set,
    count(*) filter (where device_id like 'batch-raw-%')::int as raw from entity_versions`;
  const want = batchesPerSide * s.batchSize;
  if (inOrderVersions!.es !== want || (base && (inOrderVersions!.set !== want || inOrderVersions!.raw !== want))) {
    throw new Error(`in-order batches: expected ${want} versions per side, found ${JSON.stringify(inOrderVersions)}`);
  }
  const runVersions = s.clients * s.runShape.existing + batchesPerSide * runSize;
  await runsLanded(o.sql, 'runs, entity-sync', esRuns.works.flatMap((w) => [...(w as RunWork).touched]), runVersions);
  if (base) {
    // A round of no batches answers the workers' entities.
    const setTouched = (await base({ cmd: 'batchRound', kind: 'setRuns', batches: 0 })).touched!;
    await runsLanded(o.sql, 'runs, set-based SQL', setTouched.flat(), runVersions);
    const setIds = (await base({ cmd: 'batchRound', kind: 'set', batches: 0 })).touched!;
    await sameRows(o.sql, 'in-order batches', (es.works[0] as InOrderWork).entityIds[0]!, setIds[0]![0]!);
    const esTouched = [...(esRuns.works[0] as RunWork).touched];
    // The first entity created by the first batch, and the first existing entity, on each side.
    await sameRows(o.sql, 'runs (created)', esTouched[s.runShape.existing]!, setTouched[0]![s.runShape.existing]!);
    await sameRows(o.sql, 'runs (existing)', esTouched[0]!, setTouched[0]![0]!);
  }
  const out: BatchFigures = {
    inOrder: { es: inOrder.get('es')!, ...(base ? { set: inOrder.get('set')!, perChange: inOrder.get('perChange')!, setSteps: setSteps!, perChangeSteps: perChangeSteps! } : {}) },
    runs: { es: runs.get('es')!, ...(base ? { set: runs.get('set')!, setSteps: runSteps! } : {}) },
    memory,
  };
  return out;
}
