/**
 * `npm run bench:soak`: a soak of the real service (`src/main.ts` as its own process, on a fresh
 * Postgres database) under a steady mix of work for SOAK_SECONDS (default 180): subscribers on
 * sockets and over SSE (one of each replaced every sample, so subscriptions also end and begin),
 * pulls (changesSince) and submits. Every SOAK_SAMPLE_SECONDS (10) it reads the service's own
 * /metrics: resident and heap memory, libuv handles (process._getActiveHandles().length, as
 * prom-client reports it), TCP sockets among them, and open WebSockets. It fails (exit 1) when,
 * from the warm-up to the end, memory or handles grow beyond the bounds printed with the table,
 * when a request fails, or when a subscriber stops receiving events.
 *
 * SOAK_DATABASE_URL (or DATABASE_URL; default postgres://postgres@127.0.0.1:5432/postgres) names
 * the server the fresh database is made on. Not part of bench/run.ts: that measures speed.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from 'graphql-ws';
import postgres from 'postgres';
import WebSocket from 'ws';

const env = process.env;
function setting(name: string, fallback: number): number {
  const n = env[name] === undefined || env[name] === '' ? fallback : Number(env[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} takes a number, not "${env[name]}"`);
  return n;
}
const config = {
  seconds: setting('SOAK_SECONDS', 180),
  sampleSeconds: setting('SOAK_SAMPLE_SECONDS', 10),
  wsSubscribers: setting('SOAK_WS_SUBSCRIBERS', 10),
  sseSubscribers: setting('SOAK_SSE_SUBSCRIBERS', 10),
  submitters: setting('SOAK_SUBMITTERS', 3),
  batch: setting('SOAK_BATCH', 10),
  pullers: setting('SOAK_PULLERS', 2),
  /** Each worker's pause between two requests: a steady load, not a saturating one. */
  pauseMs: setting('SOAK_PAUSE_MS', 100),
  /**
   * Growth from the warm-up to the end: of the median for RSS and handles, of the least heap
   * seen (what survived the last collection, near enough) for the heap, which swings with GC.
   */
  maxRssGrowthMb: setting('SOAK_MAX_RSS_GROWTH_MB', 64),
  maxHeapGrowthMb: setting('SOAK_MAX_HEAP_GROWTH_MB', 32),
  maxHandleGrowth: setting('SOAK_MAX_HANDLE_GROWTH', 10),
};
const adminUrl = env.SOAK_DATABASE_URL || env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DATASET = 'soak';

/** The service: a fresh database, then `node --import tsx src/main.ts` until stop(). */
async function startService() {
  const name = `es_soak_${randomBytes(5).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...env, DATABASE_URL: url.toString(), PORT: '0', HOST: '127.0.0.1', ANONYMOUS_ROLE: 'admin', LOG_LEVEL: 'warn', FLUSH_INTERVAL_SECONDS: '30', METRICS_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b) => (output += b));
  child.stderr.on('data', (b) => (output += b));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  let graphql: string | undefined;
  while (!(graphql = /listening on (http:\/\/\S+)/.exec(output)?.[1])) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${output}`);
    await sleep(100);
  }
  return {
    graphql,
    output: () => output,
    alive: () => child.exitCode === null,
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
      return code;
    },
  };
}

interface Sample {
  at: number;
  rssMb: number;
  heapMb: number;
  handles: number;
  tcp: number;
  sockets: number;
  events: number;
  submits: number;
  pulls: number;
}

/** One reading of the service's /metrics. */
async function metrics(graphqlUrl: string): Promise<Omit<Sample, 'at' | 'events' | 'submits' | 'pulls'>> {
  const text = await (await fetch(graphqlUrl.replace(/\/graphql$/, '/metrics'))).text();
  const value = (metric: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${metric} `));
    if (!line) throw new Error(`no ${metric} in /metrics`);
    return Number(line.slice(metric.length + 1));
  };
  return {
    rssMb: value('process_resident_memory_bytes') / 2 ** 20,
    heapMb: value('nodejs_heap_size_used_bytes') / 2 ** 20,
    handles: value('nodejs_active_handles_total'),
    tcp: value('nodejs_active_handles{type="Socket"}'),
    sockets: value('entity_sync_open_sockets'),
  };
}

async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (res.status !== 200 || body.errors || !body.data) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  return body.data;
}

const SUBMIT = `mutation($c: [ChangeInput!]!) { submitChanges(changes: $c) { ... on MutationSubmitChangesSuccess { data { outcome version } } ... on DomainError { code message } } }`;
const PULL = `query($ds: String!, $cursor: String) { changesSince(dataset: $ds, cursor: $cursor, limit: 200) {
  ... on QueryChangesSinceSuccess { data { cursor hasMore versions { version changeId } } } ... on DomainError { code message } } }`;
const SUB = `subscription($ds: String!) { entityChanged(dataset: $ds) { entityId version } }`;

async function main(): Promise<void> {
  const service = await startService();
  const url = service.graphql;
  const stats = { events: 0, submits: 0, pulls: 0, errors: [] as string[] };
  const fail = (what: string) => (e: unknown) => {
    if (stats.errors.length < 20) stats.errors.push(`${what}: ${(e as Error).message ?? e}`);
  };
  let running = true;
  try {
    await gql(url, 'mutation($n: String!) { createDataset(name: $n, properties: ["n", "by"]) { __typename } }', { n: DATASET });

    // Subscribers: one graphql-ws client (one socket) or one SSE stream each.
    const received = new Map<object, number>();
    const wsSubscriber = () => {
      const client: Client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: fail('socket') });
      const key = {};
      received.set(key, 0);
      client.subscribe({ query: SUB, variables: { ds: DATASET } }, { next: () => (stats.events++, received.set(key, received.get(key)! + 1)), error: fail('ws subscription'), complete: () => {} });
      return { key, close: () => client.dispose() };
    };
    const sseSubscriber = () => {
      const abort = new AbortController();
      const key = {};
      received.set(key, 0);
      void (async () => {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ query: SUB, variables: { ds: DATASET } }), signal: abort.signal });
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          const n = decoder.decode(chunk, { stream: true }).split('event: next').length - 1;
          stats.events += n;
          received.set(key, received.get(key)! + n);
        }
      })().catch((e) => (abort.signal.aborted ? undefined : fail('sse')(e)));
      return { key, close: async () => abort.abort() };
    };
    const ws = Array.from({ length: config.wsSubscribers }, wsSubscriber);
    const sse = Array.from({ length: config.sseSubscribers }, sseSubscriber);
    await sleep(1000);

    // Submitters: creates and updates of their own entities. Pullers: changesSince, page after page.
    const submitter = async (w: number) => {
      const versions = new Map<string, number>();
      while (running) {
        const updates = [...versions.keys()].slice(-Math.floor(config.batch / 2)).map((id) => ({ id: randomUUID(), dataset: DATASET, entityId: id, action: 'UPDATE', baseVersion: versions.get(id)!, data: { n: versions.get(id)! + 1 } }));
        const creates = Array.from({ length: config.batch - updates.length }, () => ({ id: randomUUID(), dataset: DATASET, entityId: randomUUID(), action: 'CREATE', label: `w${w}`, data: { n: 1, by: `w${w}` } }));
        const batch = [...updates, ...creates];
        try {
          const results = (await gql(url, SUBMIT, { c: batch })).submitChanges.data as { outcome: string; version: number }[];
          results.forEach((r, i) => {
            if (r.outcome !== 'APPLIED') throw new Error(`${r.outcome} for ${JSON.stringify(batch[i])}`);
            versions.set(batch[i]!.entityId, r.version);
          });
          // Keep a few hundred entities per worker: updates go round them.
          for (const id of [...versions.keys()].slice(0, Math.max(0, versions.size - 300))) versions.delete(id);
          stats.submits++;
        } catch (e) {
          fail('submit')(e);
        }
        await sleep(config.pauseMs);
      }
    };
    const puller = async () => {
      let cursor: string | null = null;
      while (running) {
        try {
          const page: { cursor: string; hasMore: boolean } = (await gql(url, PULL, { ds: DATASET, cursor })).changesSince.data;
          cursor = page.cursor;
          stats.pulls++;
        } catch (e) {
          fail('pull')(e);
        }
        await sleep(config.pauseMs);
      }
    };
    const workers = [...Array.from({ length: config.submitters }, (_, w) => submitter(w)), ...Array.from({ length: config.pullers }, puller)];

    const began = Date.now();
    const samples: Sample[] = [];
    const take = async () => samples.push({ at: Math.round((Date.now() - began) / 1000), ...(await metrics(url)), events: stats.events, submits: stats.submits, pulls: stats.pulls });
    await take();
    for (let i = 1; i * config.sampleSeconds <= config.seconds; i++) {
      await sleep(began + i * config.sampleSeconds * 1000 - Date.now());
      if (!service.alive()) throw new Error(`the service exited:\n${service.output().slice(-3000)}`);
      // Churn: one subscriber of each kind leaves, a new one comes.
      const [oldWs, oldSse] = [ws.shift()!, sse.shift()!];
      await Promise.all([oldWs.close(), oldSse.close()]);
      received.delete(oldWs.key);
      received.delete(oldSse.key);
      ws.push(wsSubscriber());
      sse.push(sseSubscriber());
      await take();
    }
    running = false;
    await Promise.all(workers);
    // Every subscriber that lived through at least one sample received events.
    await sleep(1000);
    const silent = [...ws.slice(0, -1), ...sse.slice(0, -1)].filter((s) => received.get(s.key) === 0).length;
    await Promise.all([...ws, ...sse].map((s) => s.close()));
    await sleep(2000);
    const after = await metrics(url);

    report(samples, after, silent, stats.errors);
  } finally {
    running = false;
    const code = await service.stop();
    if (code !== 0) {
      console.error(`the service exited with ${code}:\n${service.output().slice(-3000)}`);
      process.exitCode = 1;
    }
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function report(samples: Sample[], after: Awaited<ReturnType<typeof metrics>>, silent: number, errors: string[]): void {
  const rows = samples.map((s, i) => {
    const prev = samples[i - 1];
    const dt = prev ? s.at - prev.at : 0;
    const rate = (n: number, p?: number) => (prev && dt > 0 ? ((n - p!) / dt).toFixed(0) : '-');
    return [`${s.at}`, s.rssMb.toFixed(1), s.heapMb.toFixed(1), `${s.handles}`, `${s.tcp}`, `${s.sockets}`, rate(s.events, prev?.events), rate(s.submits, prev?.submits), rate(s.pulls, prev?.pulls)];
  });
  const head = ['t (s)', 'rss MB', 'heap MB', 'handles', 'tcp', 'ws', 'events/s', 'batches/s', 'pulls/s'];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => ' ---: ').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`after the load: ${after.handles} handles, ${after.tcp} tcp, ${after.sockets} ws, rss ${after.rssMb.toFixed(1)} MB, heap ${after.heapMb.toFixed(1)} MB`);

  // Warm-up: samples 2 to 7 (the first minute but its first 20 s); the end: the last six.
  const warm = samples.slice(2, 8);
  const last = samples.slice(-6);
  const growth = (f: (s: Sample) => number) => median(last.map(f)) - median(warm.map(f));
  const least = (xs: Sample[]) => Math.min(...xs.map((s) => s.heapMb));
  const checks = [
    { what: 'rss growth (MB)', value: growth((s) => s.rssMb), max: config.maxRssGrowthMb },
    { what: 'heap growth (MB, least of each window)', value: least(last) - least(warm), max: config.maxHeapGrowthMb },
    { what: 'handle growth', value: growth((s) => s.handles), max: config.maxHandleGrowth },
    { what: 'open WebSockets after the load', value: after.sockets, max: 0 },
    { what: 'subscribers that got no event', value: silent, max: 0 },
    { what: 'failed requests', value: errors.length, max: 0 },
  ];
  for (const c of checks) console.log(`${c.value <= c.max ? 'ok  ' : 'FAIL'} ${c.what}: ${Number.isInteger(c.value) ? c.value : c.value.toFixed(1)} (bound ${c.max})`);
  for (const e of errors) console.log(`  ${e}`);
  const tooShort = samples.length < 14;
  if (tooShort) console.log(`FAIL too short to compare the warm-up with the end: ${samples.length} samples, at least 14 (SOAK_SECONDS / SOAK_SAMPLE_SECONDS >= 13)`);
  if (checks.some((c) => c.value > c.max) || tooShort) process.exitCode = 1;
}

await main();
