import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/server/app.js';
import { startTestApp, useApp } from '../helpers/app.js';
import { domain, offline, offlineRun, uniqueName, type Domain, type Offline } from '../helpers/domain.js';
import { socketClient, waitUntil } from '../helpers/live.js';

/**
 * GET /metrics over real HTTP (Prometheus text format): counters of what this instance processed,
 * backlog gauges read from the database at scrape time, open sockets. Every figure is checked
 * exactly, against a scenario whose outcomes the test pins itself.
 */

const t = useApp({ flushIntervalSeconds: 0 });
const d = domain(t);
const o = offline(t);
let base: string;
beforeAll(async () => {
  base = t.url.replace(/\/graphql$/, '');
});

interface Scrape {
  status: number;
  contentType: string | null;
  text: string;
  /** The value of the sample with exactly these labels; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

async function scrape(from = base): Promise<Scrape> {
  const res = await fetch(`${from}/metrics`);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not exposition format: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}=${v}`).sort();
    samples.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    text,
    value: (name, labels = {}) =>
      samples.get(
        `${name}{${Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join(',')}}`,
      ),
  };
}

/** The change counters, by outcome (and code for rejections), as one object for exact comparison. */
function changeCounts(s: Scrape) {
  return {
    APPLIED: s.value('entity_sync_changes_total', { outcome: 'APPLIED' }),
    HELD: s.value('entity_sync_changes_total', { outcome: 'HELD' }),
    DUPLICATE: s.value('entity_sync_changes_total', { outcome: 'DUPLICATE' }),
    ENTITY_NOT_FOUND: s.value('entity_sync_changes_total', { outcome: 'REJECTED', code: 'ENTITY_NOT_FOUND' }),
    UNKNOWN_DATASET: s.value('entity_sync_changes_total', { outcome: 'REJECTED', code: 'UNKNOWN_DATASET' }),
  };
}

function flushCounts(s: Scrape) {
  return {
    periodicRuns: s.value('entity_sync_backlog_flush_runs_total', { trigger: 'periodic' }),
    mutationRuns: s.value('entity_sync_backlog_flush_runs_total', { trigger: 'mutation' }),
    periodicForced: s.value('entity_sync_backlog_forced_changes_total', { trigger: 'periodic' }),
    mutationForced: s.value('entity_sync_backlog_forced_changes_total', { trigger: 'mutation' }),
  };
}

const conflictCounts = (s: Scrape) => ({ SOFT: s.value('entity_sync_conflicts_total', { type: 'SOFT' }), HARD: s.value('entity_sync_conflicts_total', { type: 'HARD' }) });

/**
 * Runs a test against a server and database of its own, so that the counters it pins exactly
 * start at 0 whatever ran before it (CI also runs the suite shuffled).
 */
async function withFreshApp(test: (f: { d: Domain; o: Offline; scrape: () => Promise<Scrape> }) => Promise<void>) {
  const f = await startTestApp({ flushIntervalSeconds: 0 });
  try {
    const fBase = f.url.replace(/\/graphql$/, '');
    await test({ d: domain(f), o: offline(f), scrape: () => scrape(fBase) });
  } finally {
    await f.close();
  }
}

describe('GET /metrics', () => {
  it('answers in the Prometheus text format, with process metrics and every series at 0 before any work', () =>
    withFreshApp(async ({ scrape }) => {
      const s = await scrape();
      expect(s.status).toBe(200);
      expect(s.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(s.text).toContain('# TYPE entity_sync_changes_total counter');
      expect(s.text).toContain('# TYPE entity_sync_held_changes gauge');
      expect(s.text).toContain('# TYPE entity_sync_http_request_duration_seconds histogram');
      // Default process metrics, from this app's own registry.
      // CPU is counted from the registry's creation, moments ago: it may still read 0 (the kernel
      // accounts CPU in ticks), but it is there and a number.
      expect(s.value('process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
      expect(s.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
      expect(changeCounts(s)).toEqual({ APPLIED: 0, HELD: 0, DUPLICATE: 0, ENTITY_NOT_FOUND: undefined, UNKNOWN_DATASET: undefined });
      expect(conflictCounts(s)).toEqual({ SOFT: 0, HARD: 0 });
      expect(flushCounts(s)).toEqual({ periodicRuns: 0, mutationRuns: 0, periodicForced: 0, mutationForced: 0 });
      expect(s.value('entity_sync_held_changes')).toBe(0);
      expect(s.value('entity_sync_held_change_oldest_age_seconds')).toBe(0);
      expect(s.value('entity_sync_open_sockets')).toBe(0);
    }));

  it('counts changes by outcome, conflicts by type, the backlog, and flush runs with what they forced', () =>
    withFreshApp(async ({ d, o, scrape }) => {
      const ds = await d.createDataset(['name', 'age']);
      const create = { id: randomUUID(), dataset: ds, entityId: randomUUID(), action: 'CREATE' as const, label: 'Ann', data: { name: 'Ann', age: 30 } };
      const e = create.entityId;
      // APPLIED ×4: the create; an update of age on v1; another update of age on v1 (HARD: v2 set
      // age); an update of name on v1 (SOFT: v2 and v3 changed only age).
      expect((await d.submit(create))[0]).toMatchObject({ outcome: 'APPLIED', version: 1 });
      expect(await d.update(ds, e, 1, { age: 31 })).toMatchObject({ outcome: 'APPLIED', version: 2, conflict: null });
      expect(await d.update(ds, e, 1, { age: 32 })).toMatchObject({ outcome: 'APPLIED', version: 3, conflict: 'HARD', conflictingProperties: ['age'] });
      expect(await d.update(ds, e, 1, { name: 'Anna' })).toMatchObject({ outcome: 'APPLIED', version: 4, conflict: 'SOFT' });
      // HELD ×2: the second change of two offline runs whose first change never came.
      const runs = [offlineRun(ds, e, 4), offlineRun(ds, e, 4)];
      const held = await o.submit(runs[0]!.update(2, { age: 40 }), runs[1]!.update(2, { name: 'Annie' }));
      expect(held.map((r) => r.outcome)).toEqual(['HELD', 'HELD']);
      // DUPLICATE: the create again. REJECTED: an unknown entity, an unknown dataset (one batch).
      const [dup, notFound, noDataset] = await d.submit(
        create,
        { dataset: ds, entityId: randomUUID(), action: 'UPDATE', baseVersion: 1, data: { age: 1 } },
        { dataset: uniqueName('missing'), entityId: randomUUID(), action: 'CREATE', label: 'x', data: {} },
      );
      expect([dup!.outcome, notFound!.error?.code, noDataset!.error?.code]).toEqual(['DUPLICATE', 'ENTITY_NOT_FOUND', 'UNKNOWN_DATASET']);

      // The oldest held change has waited a measurable time (database clock) by now.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const before = await scrape();
      expect(changeCounts(before)).toEqual({ APPLIED: 4, HELD: 2, DUPLICATE: 1, ENTITY_NOT_FOUND: 1, UNKNOWN_DATASET: 1 });
      expect(conflictCounts(before)).toEqual({ SOFT: 1, HARD: 1 });
      expect(flushCounts(before)).toEqual({ periodicRuns: 0, mutationRuns: 0, periodicForced: 0, mutationForced: 0 });
      expect(before.value('entity_sync_held_changes')).toBe(2);
      const age = before.value('entity_sync_held_change_oldest_age_seconds')!;
      expect(age).toBeGreaterThan(0.04);
      expect(age).toBeLessThan(30);

      // The flushBacklog mutation forces both. A forced change's author view is unknown, so each is
      // flagged SOFT (DESIGN step 6): two more conflicts, counted like any other.
      const forced = await o.flush(0);
      expect(forced.map((r) => [r.outcome, r.conflict])).toEqual([
        ['APPLIED', 'SOFT'],
        ['APPLIED', 'SOFT'],
      ]);
      const after = await scrape();
      expect(flushCounts(after)).toEqual({ periodicRuns: 0, mutationRuns: 1, periodicForced: 0, mutationForced: 2 });
      expect(conflictCounts(after)).toEqual({ SOFT: 3, HARD: 1 });
      expect(after.value('entity_sync_held_changes')).toBe(0);
      expect(after.value('entity_sync_held_change_oldest_age_seconds')).toBe(0);
      // Forcing is not a submission: the outcome counters did not move.
      expect(changeCounts(after)).toEqual(changeCounts(before));

      // A flush with nothing to force is still a run.
      expect(await o.flush(0)).toEqual([]);
      expect(flushCounts(await scrape())).toEqual({ periodicRuns: 0, mutationRuns: 2, periodicForced: 0, mutationForced: 2 });
    }));

  it('times HTTP requests by route, method and status; unknown paths share one label', async () => {
    const s0 = await scrape();
    const count = (s: Scrape, route: string, method: string, status: string) =>
      s.value('entity_sync_http_request_duration_seconds_count', { route, method, status }) ?? 0;
    const healthBefore = count(s0, '/health', 'GET', '200');
    const otherBefore = count(s0, 'other', 'GET', '404');
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/no/such/${randomUUID()}`)).status).toBe(404);
    const query = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": "{ __typename }"}' });
    expect(query.status).toBe(200);
    const s1 = await scrape();
    expect(count(s1, '/health', 'GET', '200')).toBe(healthBefore + 2);
    expect(count(s1, 'other', 'GET', '404')).toBe(otherBefore + 1);
    expect(count(s1, '/graphql', 'POST', '200')).toBe(count(s0, '/graphql', 'POST', '200') + 1);
    expect(s1.text).not.toMatch(/route="\/no\/such/);
  });

  it('the open sockets gauge follows real graphql-ws sockets up and down', async () => {
    const sockets = async () => (await scrape()).value('entity_sync_open_sockets');
    expect(await sockets()).toBe(0);
    const a = socketClient(t.url);
    const b = socketClient(t.url);
    try {
      // The sockets are usable, not merely connected.
      expect((await a.request('{ datasets { name } }')).errors).toBeUndefined();
      expect((await b.request('{ datasets { name } }')).errors).toBeUndefined();
      expect(await sockets()).toBe(2);
      await a.close();
      await waitUntil(async () => (await sockets()) === 1, 'the gauge to drop to 1');
      await b.close();
      await waitUntil(async () => (await sockets()) === 0, 'the gauge to drop to 0');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('two instances on one database and one event bus', () => {
  let other: App;
  let otherBase: string;
  beforeAll(async () => {
    // A second app sharing the database and the bus: its events reach this one's bus as they
    // would from another instance over LISTEN/NOTIFY.
    other = buildApp({ db: t.database.db, bus: t.app.bus, flushIntervalSeconds: 0, auth: { anonymousRole: 'admin' } });
    otherBase = (await other.start(0, '127.0.0.1')).replace(/\/graphql$/, '');
  });
  afterAll(async () => {
    await other?.stop();
  });

  it('each counts only what it processed itself, not what the bus brought from the other', async () => {
    const ds = await d.createDataset(['age']);
    const e = await d.create(ds, 'Bo', { age: 1 });
    const mine = await scrape();
    const theirsBefore = await scrape(otherBase);
    const gql = (query: string, variables: Record<string, unknown>) =>
      fetch(`${otherBase}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) }).then((r) => r.json());
    const submit = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome conflict } } } }`;
    const change = (age: number) => ({ id: randomUUID(), dataset: ds, entityId: e, action: 'UPDATE', baseVersion: 1, data: { age } });
    const r = (await gql(submit, { c: [change(2), change(3)] })) as any;
    expect(r.data.submitChanges.data).toEqual([
      { outcome: 'APPLIED', conflict: null },
      { outcome: 'APPLIED', conflict: 'HARD' },
    ]);
    // The other instance's conflict event crossed the shared bus; this one did not count it.
    const theirs = await scrape(otherBase);
    expect(theirs.value('entity_sync_changes_total', { outcome: 'APPLIED' })).toBe(theirsBefore.value('entity_sync_changes_total', { outcome: 'APPLIED' })! + 2);
    expect(conflictCounts(theirs)).toEqual({ SOFT: conflictCounts(theirsBefore).SOFT, HARD: conflictCounts(theirsBefore).HARD! + 1 });
    const mineAfter = await scrape();
    expect(changeCounts(mineAfter)).toEqual(changeCounts(mine));
    expect(conflictCounts(mineAfter)).toEqual(conflictCounts(mine));
    // The backlog is the database's: both report the same.
    expect(theirs.value('entity_sync_held_changes')).toBe(mineAfter.value('entity_sync_held_changes'));
  });
});

describe('METRICS_TOKEN', () => {
  it('with a metrics token set, /metrics answers only a scraper that sends it; API tokens are not it', async () => {
    const guarded = buildApp({ db: t.database.db, flushIntervalSeconds: 0, metricsToken: 'scrape-secret', auth: { anonymousRole: 'admin' } });
    const base = (await guarded.start(0, '127.0.0.1')).replace(/\/graphql$/, '');
    try {
      const get = (authorization?: string) => fetch(`${base}/metrics`, { headers: authorization ? { authorization } : {} });
      for (const wrong of [undefined, 'Bearer scrape-secreT', 'Bearer scrape-secret-and-more', 'scrape-secret']) {
        const res = await get(wrong);
        expect([res.status, res.headers.get('www-authenticate')], String(wrong)).toEqual([401, 'Bearer']);
        expect(await res.text()).not.toContain('entity_sync_');
      }
      const ok = await get('Bearer scrape-secret');
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('entity_sync_changes_total');
      // /health stays open for load balancers.
      expect((await fetch(`${base}/health`)).status).toBe(200);
    } finally {
      await guarded.stop();
    }
  });
});

describe('the periodic flush', () => {
  it('counts its runs and the changes it forced under trigger="periodic"', async () => {
    const p = await startTestApp({ flushIntervalSeconds: 0.1, holdTimeoutSeconds: 0 });
    try {
      const pd = domain(p);
      const ds = await pd.createDataset(['age']);
      const e = await pd.create(ds, 'Cy', { age: 1 });
      const run = offlineRun(ds, e, 1);
      expect((await offline(p).one(run.update(2, { age: 5 }))).outcome).toBe('HELD');
      const pBase = p.url.replace(/\/graphql$/, '');
      const s = await waitUntil(async () => {
        const now = await scrape(pBase);
        return now.value('entity_sync_backlog_forced_changes_total', { trigger: 'periodic' }) === 1 ? now : null;
      }, 'the periodic flush to force the held change');
      expect(s.value('entity_sync_backlog_flush_runs_total', { trigger: 'periodic' })).toBeGreaterThanOrEqual(1);
      expect(s.value('entity_sync_backlog_flush_runs_total', { trigger: 'mutation' })).toBe(0);
      expect(s.value('entity_sync_backlog_forced_changes_total', { trigger: 'mutation' })).toBe(0);
      expect(s.value('entity_sync_held_changes')).toBe(0);
      expect(s.value('entity_sync_changes_total', { outcome: 'HELD' })).toBe(1);
      // It keeps running, forcing nothing more.
      const runs = s.value('entity_sync_backlog_flush_runs_total', { trigger: 'periodic' })!;
      const later = await waitUntil(async () => {
        const now = await scrape(pBase);
        return now.value('entity_sync_backlog_flush_runs_total', { trigger: 'periodic' })! > runs ? now : null;
      }, 'another periodic run');
      expect(later.value('entity_sync_backlog_forced_changes_total', { trigger: 'periodic' })).toBe(1);
    } finally {
      await p.close();
    }
  });
});

describe('when the database does not answer', () => {
  it('the scrape fails with 503 and a plain message, without the database error', async () => {
    const x = await startTestApp({ flushIntervalSeconds: 0 });
    try {
      await x.database.close();
      const res = await fetch(x.url.replace(/\/graphql$/, '/metrics'));
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('metrics unavailable: the database does not answer\n');
    } finally {
      await x.app.stop();
    }
  });
});
