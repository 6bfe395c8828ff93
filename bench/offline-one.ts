/**
 * One offline submission per request (issue 22): the reversed-run work of the batch phase, sent
 * the way ODK Central receives it: each change of each run alone, in its own request
 * (submitChange over HTTP), by one client, one request at a time. A run's later changes arrive
 * first and are held; its first applies and releases them. Every answer is checked: held, or
 * applied releasing the run's rest in order.
 *
 * The figure is milliseconds per request; its peer is ODK Central's 38 ms per offline submission
 * (the figure the issue names), its target 2.5 ms.
 */
import { gql, summarize, type LoadResult } from './lib.js';
import { createDataset, createEntities } from './service.js';
import { BENCH_PROPS } from './lib.js';
import { RunWork, type BenchChange, type BenchRun, type RunShape } from './workloads.js';

export const OFFLINE_DATASET = 'offline_one';
/** ODK Central's time per offline submission, as issue 22 states it (not measured here: there is no ODK Central on this machine). */
export const ODK_CENTRAL_MS = 38;

const SUBMIT_ONE = `mutation OfflineOne($change: ChangeInput!) { submitChange(change: $change) {
  changeId outcome version conflict released { changeId outcome version conflict } } }`;

interface Answer {
  changeId: string;
  outcome: string;
  version: number | null;
  conflict: string | null;
  released: { changeId: string; outcome: string; version: number | null; conflict: string | null }[];
}

export interface OfflineOneSettings {
  shape: RunShape;
  /** Untimed rounds (each one batch's worth of runs) first. */
  warmup: number;
  rounds: number;
}

export interface OfflineOneFigures {
  /** One entry per request; rate = requests/s. */
  es: LoadResult;
  requests: number;
}

const fail = (what: string, got: unknown): never => {
  throw new Error(`offline one per request: ${what}: got ${JSON.stringify(got).slice(0, 400)}`);
};

export async function offlineOnePhase(o: { setupUrl: string; url: string; token: string; deviceId: string; settings: OfflineOneSettings }): Promise<OfflineOneFigures> {
  const s = o.settings;
  await createDataset(o.setupUrl, BENCH_PROPS, OFFLINE_DATASET);
  const existing = await createEntities(o.setupUrl, s.shape.existing, 100, 'offline one', OFFLINE_DATASET);
  const work = new RunWork(o.deviceId, OFFLINE_DATASET, existing, s.shape);
  const send = async (c: BenchChange) => (await gql<{ submitChange: Answer }>(o.url, SUBMIT_ONE, { change: c }, o.token)).submitChange;
  const round = async (latencies: number[]) => {
    const { runs, changes } = work.next();
    const answers = new Map<string, Answer>();
    for (const c of changes) {
      const t0 = performance.now();
      answers.set(c.id, await send(c));
      latencies.push(performance.now() - t0);
    }
    for (const run of runs) check(run, answers);
    work.landed(runs);
  };
  for (let i = 0; i < s.warmup; i++) await round([]);
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < s.rounds; i++) await round(latencies);
  const es = summarize(latencies, (performance.now() - t0) / 1000);
  return { es, requests: latencies.length };
}

/** Sent reversed: every later change held, then the first applied, releasing them in run order. */
function check(run: BenchRun, answers: Map<string, Answer>): void {
  const [first, ...rest] = run.changes;
  for (const c of rest) if (answers.get(c.id)?.outcome !== 'HELD') fail('a later change: expected HELD', answers.get(c.id));
  const head = answers.get(first!.id);
  if (head?.outcome !== 'APPLIED' || head.version !== run.firstVersion || head.conflict !== null) fail(`the first change: expected APPLIED at ${run.firstVersion}`, head);
  const expected = rest.map((c, i) => [c.id, 'APPLIED', run.firstVersion + 1 + i, null]);
  if (JSON.stringify(head!.released.map((r) => [r.changeId, r.outcome, r.version, r.conflict])) !== JSON.stringify(expected)) fail('the first change: released', head!.released);
}
