/** The printed result: a markdown table, each entity-sync figure beside its baseline, as a ratio. */
import type { BatchFigures } from './batches.js';
import { eventRows, eventsDescription, type EventFigures, type EventSettings } from './events.js';
import type { LoadFigures } from './load.js';
import { ODK_CENTRAL_MS, type OfflineOneFigures } from './offline-one.js';
import { fmt, type LoadResult, type MemorySnapshot } from './lib.js';
import type { RunShape } from './workloads.js';

export interface Measured {
  /** Events across two instances (NOTIFY, Redis) and submissions beside webhooks (bench/events.ts). */
  events?: EventFigures;
  /** The batch phases (bench/batches.ts): in-order updates and reversed offline runs, entity-sync and its baselines. */
  batches?: BatchFigures;
  single?: LoadResult;
  echo?: LoadResult;
  memory?: { single: MemorySnapshot; echo: MemorySnapshot };
  /** One offline submission per request (bench/offline-one.ts). */
  offline?: OfflineOneFigures;
  /** Pulling the whole dataset: versions/s over all passes, and the latency of one page. */
  pull?: { es: { rate: number; page: LoadResult; versions: number }; raw: { rate: number; page: LoadResult; versions: number } };
  /** Forced flush of a backlog: entity-sync and set-based SQL; the latter's time per batch by statement. */
  flush?: { es: LoadResult; set: LoadResult; setSteps: { step: string; ms: number }[]; transactions: { es: number; set: number } };
  /** In-order single updates on an entity with a long history (big) and with one version (small). */
  history?: { esBig: LoadResult; esSmall: LoadResult; rawBig: LoadResult; rawSmall: LoadResult };
  /** Event latencies (count = samples) and the servers' memory around opening the sockets. */
  live?: { es: LoadResult; base: LoadResult; esFirst: LoadResult; baseFirst: LoadResult; memory: Record<'esBefore' | 'esAfter' | 'baseBefore' | 'baseAfter', MemorySnapshot> };
  load: { before: number; after: number };
  /** The sustained-load phase (bench/load.ts): entity-sync and the raw-SQL baseline. */
  loadTest?: { es: LoadFigures; raw: LoadFigures };
  /** Commit measured, and whether src/ had uncommitted changes. */
  source: string;
  seconds: number;
}

export interface Settings extends EventSettings {
  batchClients: number;
  batchSize: number;
  runShape: RunShape;
  batchWarmup: number;
  batchRounds: number;
  batchPerRound: number;
  clients: number;
  entitiesPerClient: number;
  warmupRequests: number;
  requests: number;
  rounds: number;
  flushWarmup: number;
  flushHeld: number;
  historyVersions: number;
  historyWarmup: number;
  historyUpdates: number;
  historyRounds: number;
  historyTarget: number;
  sockets: number;
  socketWave: number;
  liveEvents: number;
  liveRounds: number;
  pullLimit: number;
  pullRounds: number;
  loadClients: number;
  loadBatchSize: number;
  loadSeconds: number;
  offlineShape: RunShape;
  offlineRounds: number;
}

/** metric, entity-sync, baseline, ratio, target, whether it is met ('' when the row has no target). */
export type Row = [string, string, string, string, string, string];

export function table(rows: Row[]): string {
  const head: Row = ['metric', 'entity-sync', 'baseline', 'ratio', 'target', 'met'];
  const all = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const left = (c: number) => c === 0 || c === 5;
  const line = (r: string[]) => `| ${r.map((cell, c) => (left(c) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  return [line(head), `| ${widths.map((w, c) => (left(c) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

const n = (x: number) => x.toLocaleString('en-US');
const kb = (mb: number) => `${(mb * 1024).toFixed(1)} KB`;

export function report(m: Measured, s: Settings): string {
  const r = (a: number, base: number) => (base > 0 && a >= 0 ? fmt.ratio(a / base) : 'n/a');
  const msPer = (x: LoadResult) => 1000 / x.rate;
  const cpuPer = (...xs: (LoadResult | undefined)[]) => xs.reduce((a, x) => a + (x?.cpuMs ?? NaN), 0) / xs.reduce((a, x) => a + (x?.count ?? NaN), 0);
  const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  /** A ratio row with a target: entity-sync / baseline at least `min`. */
  const atLeast = (metric: string, es: number, base: number, show: (x: number) => string, min: number): Row => [metric, show(es), show(base), r(es, base), `≥ ${min}×`, met(es / base >= min)];
  const plain = (metric: string, es: string, base: string, ratio: string): Row => [metric, es, base, ratio, '', ''];
  const runSize = (s.runShape.collect + s.runShape.existing) * s.runShape.length;
  const rows: Row[] = [];
  const b = m.batches;
  if (b) {
    const inOrderCpu = cpuPer(b.inOrder.es);
    rows.push(
      atLeast(`submitChanges, ${s.batchClients} clients × ${s.batchSize} in-order updates/batch: changes/s (vs set-based SQL)`, b.inOrder.es.rate, b.inOrder.set!.rate, fmt.rate, 0.5),
      plain(`submitChanges, same batches: changes/s (vs per-change SQL, baseline 2)`, fmt.rate(b.inOrder.es.rate), fmt.rate(b.inOrder.perChange!.rate), r(b.inOrder.es.rate, b.inOrder.perChange!.rate)),
      plain(`submitChanges: batch latency p50 (vs set-based SQL)`, fmt.ms(b.inOrder.es.p50), fmt.ms(b.inOrder.set!.p50), r(b.inOrder.es.p50, b.inOrder.set!.p50)),
      plain(`submitChanges: batch latency p99 (vs set-based SQL)`, fmt.ms(b.inOrder.es.p99), fmt.ms(b.inOrder.set!.p99), r(b.inOrder.es.p99, b.inOrder.set!.p99)),
      [`Node CPU per batched change (server process; vs set-based SQL process)`, fmt.ms(inOrderCpu), fmt.ms(cpuPer(b.inOrder.set)), r(inOrderCpu, cpuPer(b.inOrder.set)), '≤ 0.3 ms', met(inOrderCpu <= 0.3)],
      atLeast(`submitChanges, ${s.batchClients} clients × ${runSize} offline-run changes/batch, reversed: changes/s (vs set-based SQL)`, b.runs.es.rate, b.runs.set!.rate, fmt.rate, 0.5),
      plain(`offline runs: batch latency p50 (vs set-based SQL)`, fmt.ms(b.runs.es.p50), fmt.ms(b.runs.set!.p50), r(b.runs.es.p50, b.runs.set!.p50)),
      plain(`offline runs: Node CPU per change (server process; vs set-based SQL process)`, fmt.ms(cpuPer(b.runs.es)), fmt.ms(cpuPer(b.runs.set)), r(cpuPer(b.runs.es), cpuPer(b.runs.set))),
      plain(`RSS after the in-order batches (server process; vs baseline process)`, fmt.mb(b.memory.es.rssMb), fmt.mb(b.memory.baseline!.rssMb), r(b.memory.es.rssMb, b.memory.baseline!.rssMb)),
      plain(`heap used after the in-order batches (server process; vs baseline process)`, fmt.mb(b.memory.es.heapMb), fmt.mb(b.memory.baseline!.heapMb), r(b.memory.es.heapMb, b.memory.baseline!.heapMb)),
    );
  }
  if (m.offline) {
    const each = msPer(m.offline.es);
    rows.push(
      [`one offline submission per request, 1 client, reversed runs: ms each (vs ODK Central's, as issue 22 states it)`, fmt.ms(each), fmt.ms(ODK_CENTRAL_MS), `${(ODK_CENTRAL_MS / each).toFixed(1)}× faster`, '≤ 2.5 ms', met(each <= 2.5)],
      plain(`one offline submission per request: latency p50 / p99`, `${fmt.ms(m.offline.es.p50)} / ${fmt.ms(m.offline.es.p99)}`, '', ''),
    );
  }
  if (m.single && m.echo && m.memory) {
    rows.push(
      atLeast(`submitChange, ${s.clients} clients: changes/s (vs yoga echo req/s)`, m.single.rate, m.echo.rate, fmt.rate, 0.5),
      plain(`submitChange: latency p50`, fmt.ms(m.single.p50), fmt.ms(m.echo.p50), r(m.single.p50, m.echo.p50)),
      [`submitChange: latency p99`, fmt.ms(m.single.p99), fmt.ms(m.echo.p99), r(m.single.p99, m.echo.p99), '< 50 ms', met(m.single.p99 < 50)],
      plain('RSS after single phase (vs yoga-echo process)', fmt.mb(m.memory.single.rssMb), fmt.mb(m.memory.echo.rssMb), r(m.memory.single.rssMb, m.memory.echo.rssMb)),
      plain('heap used after single phase (vs yoga-echo process)', fmt.mb(m.memory.single.heapMb), fmt.mb(m.memory.echo.heapMb), r(m.memory.single.heapMb, m.memory.echo.heapMb)),
    );
  }
  if (m.pull) {
    rows.push(
      atLeast(`changesSince, ${n(m.pull.es.versions)} versions in pages of ${n(s.pullLimit)}: versions/s (vs raw SQL select)`, m.pull.es.rate, m.pull.raw.rate, fmt.rate, 0.7),
      plain(`changesSince: page latency p50`, fmt.ms(m.pull.es.page.p50), fmt.ms(m.pull.raw.page.p50), r(m.pull.es.page.p50, m.pull.raw.page.p50)),
    );
  }
  if (m.flush) {
    rows.push(
      atLeast(`flushBacklog, forced flush of ${n(s.flushHeld)} held changes: changes/s (vs set-based SQL)`, m.flush.es.rate, m.flush.set.rate, fmt.rate, 0.7),
      plain(`flushBacklog: transactions that wrote the forced versions (vs set-based SQL)`, n(m.flush.transactions.es), n(m.flush.transactions.set), r(m.flush.transactions.es, m.flush.transactions.set)),
      plain(`flushBacklog: Node CPU per forced change (vs set-based SQL process)`, fmt.ms(cpuPer(m.flush.es)), fmt.ms(cpuPer(m.flush.set)), r(cpuPer(m.flush.es), cpuPer(m.flush.set))),
    );
  }
  const h = m.history;
  if (h) {
    const esGrowth = msPer(h.esBig) / msPer(h.esSmall);
    const rawGrowth = msPer(h.rawBig) / msPer(h.rawSmall);
    rows.push(
      plain(`update, entity with ${n(s.historyVersions)} versions: ms/update (vs per-change SQL)`, fmt.ms(msPer(h.esBig)), fmt.ms(msPer(h.rawBig)), r(msPer(h.esBig), msPer(h.rawBig))),
      plain(`update, entity with 1 version: ms/update (vs per-change SQL)`, fmt.ms(msPer(h.esSmall)), fmt.ms(msPer(h.rawSmall)), r(msPer(h.esSmall), msPer(h.rawSmall))),
      [`update cost, ${n(s.historyVersions)} versions / 1 version (vs raw SQL's)`, fmt.ratio(esGrowth), fmt.ratio(rawGrowth), r(esGrowth, rawGrowth), `< ${s.historyTarget}×`, met(esGrowth < s.historyTarget)],
      plain(`updates on both: Node CPU per update (vs raw-SQL process)`, fmt.ms(cpuPer(h.esBig, h.esSmall)), fmt.ms(cpuPer(h.rawBig, h.rawSmall)), r(cpuPer(h.esBig, h.esSmall), cpuPer(h.rawBig, h.rawSmall))),
    );
  }
  if (m.live) {
    const mem = m.live.memory;
    const perSocket = (after: MemorySnapshot, before: MemorySnapshot, k: keyof MemorySnapshot) => (after[k] - before[k]) / s.sockets;
    rows.push(
      plain(`event latency p50, response -> subscriber, ${n(s.sockets)} sockets (vs bare yoga)`, fmt.ms(m.live.es.p50), fmt.ms(m.live.base.p50), r(m.live.es.p50, m.live.base.p50)),
      plain(`event latency p99, response -> subscriber, ${n(s.sockets)} sockets (vs bare yoga)`, fmt.ms(m.live.es.p99), fmt.ms(m.live.base.p99), r(m.live.es.p99, m.live.base.p99)),
      plain(`event latency to the first subscriber, median of events (vs bare yoga)`, fmt.ms(m.live.esFirst.p50), fmt.ms(m.live.baseFirst.p50), r(m.live.esFirst.p50, m.live.baseFirst.p50)),
      plain(`RSS per open socket (vs bare yoga + graphql-ws)`, kb(perSocket(mem.esAfter, mem.esBefore, 'rssMb')), kb(perSocket(mem.baseAfter, mem.baseBefore, 'rssMb')), r(perSocket(mem.esAfter, mem.esBefore, 'rssMb'), perSocket(mem.baseAfter, mem.baseBefore, 'rssMb'))),
      plain(`heap per open socket (vs bare yoga + graphql-ws)`, kb(perSocket(mem.esAfter, mem.esBefore, 'heapMb')), kb(perSocket(mem.baseAfter, mem.baseBefore, 'heapMb')), r(perSocket(mem.esAfter, mem.esBefore, 'heapMb'), perSocket(mem.baseAfter, mem.baseBefore, 'heapMb'))),
    );
  }
  const lt = m.loadTest;
  const midSeconds = Math.min(10, s.loadSeconds / 2);
  if (lt) {
    // Flat: RSS at the end within 10% of the reading at 10 s (after start-up and warm caches).
    const rssGrowth = lt.es.memory.end.rssMb / lt.es.memory.mid.rssMb - 1;
    rows.push(
      atLeast(`load, ${s.loadClients} clients × ${s.loadSeconds} s, ${s.loadBatchSize} updates/batch: changes/s (vs per-change SQL)`, lt.es.rate, lt.raw.rate, fmt.rate, 0.6),
      plain(`load: batch latency p50`, fmt.ms(lt.es.p50), fmt.ms(lt.raw.p50), r(lt.es.p50, lt.raw.p50)),
      plain(`load: batch latency p99`, fmt.ms(lt.es.p99), fmt.ms(lt.raw.p99), r(lt.es.p99, lt.raw.p99)),
      [`load: errors`, n(lt.es.errors), n(lt.raw.errors), r(lt.es.errors, lt.raw.errors), '0', lt.es.errors === 0 ? 'MET' : `NOT MET (first: ${lt.es.firstError})`],
      [`load: acknowledged changes not in the database`, `${n(lt.es.lost)} of ${n(lt.es.acknowledged)}`, `${n(lt.raw.lost)} of ${n(lt.raw.acknowledged)}`, r(lt.es.lost, lt.raw.lost), '0', met(lt.es.lost === 0)],
      plain(`load: RSS at start (vs raw-SQL process)`, fmt.mb(lt.es.memory.start.rssMb), fmt.mb(lt.raw.memory.start.rssMb), r(lt.es.memory.start.rssMb, lt.raw.memory.start.rssMb)),
      plain(`load: RSS at ${midSeconds} s`, fmt.mb(lt.es.memory.mid.rssMb), fmt.mb(lt.raw.memory.mid.rssMb), r(lt.es.memory.mid.rssMb, lt.raw.memory.mid.rssMb)),
      [`load: RSS at the end`, fmt.mb(lt.es.memory.end.rssMb), fmt.mb(lt.raw.memory.end.rssMb), r(lt.es.memory.end.rssMb, lt.raw.memory.end.rssMb), `≤ +10% of ${midSeconds} s`, `${met(rssGrowth <= 0.1)} (${rssGrowth >= 0 ? '+' : ''}${(rssGrowth * 100).toFixed(1)}%)`],
      plain(`load: heap used at ${midSeconds} s -> end`, `${fmt.mb(lt.es.memory.mid.heapMb)} -> ${fmt.mb(lt.es.memory.end.heapMb)}`, `${fmt.mb(lt.raw.memory.mid.heapMb)} -> ${fmt.mb(lt.raw.memory.end.heapMb)}`, r(lt.es.memory.end.heapMb, lt.raw.memory.end.heapMb)),
    );
  }
  if (m.events) rows.push(...eventRows(m.events, s));
  const targets = rows.filter((x) => x[4] !== '');
  const missed = targets.filter((x) => !x[5].startsWith('MET'));
  const steps = (list: { step: string; ms: number }[] | undefined) => {
    const all = list ?? [];
    const total = all.reduce((a, x) => a + x.ms, 0);
    return [...all.map((x) => `  ${x.step.padEnd(36)} ${x.ms.toFixed(3)} ms`), `  ${'total'.padEnd(36)} ${total.toFixed(3)} ms`].join('\n');
  };
  const perBatch = (x: LoadResult) => `batch latency p50 ${fmt.ms(x.p50)}`;
  return `
## entity-sync benchmark (real Postgres, ${new Date().toISOString()})

- Code: ${m.source}. Whole run: ${m.seconds.toFixed(0)} s. NODE_ENV=${process.env.NODE_ENV ?? '(unset)'} in every process of it (\`npm run bench\` sets production, as \`npm start\` does).
- Batches (bench/batches.ts): ${s.batchClients} clients at once, each a tablet (a device with a collector token bound to it and
  its own entities), each sending one batch at a time over HTTP to an entity-sync server in a process of its own (bench/live-server.ts,
  the production event bus over LISTEN/NOTIFY, a pool of 10). ${s.batchWarmup} warm-up batch per client and side, then ${s.batchRounds} rounds of
  ${s.batchPerRound} batches per client per side, the sides' order reversed every other round; every answer checked.
  In-order: ${s.batchSize} updates per batch, one of each of the client's entities at its current version (no conflicts).
  Baseline (set-based SQL, bench/set-sql.ts): the best hand-written way, one transaction per batch: the advisory locks of the
  change ids and entity ids in one sorted statement; one read of dataset, entities and prior change ids; the diffs in JS;
  one \`update … from unnest(…)\` of entities and one multi-row insert each into entity_versions and changes, pipelined; the
  same rows as entity-sync's (checked: bench/checks.ts). Baseline 2 (per-change SQL, bench/raw-sql.ts): today's statements of one
  in-order update, one transaction per change. Each baseline runs ${s.batchClients} workers at once in the baseline process (pool of 10).
  Offline runs: batches of ${s.runShape.collect} runs as ODK Collect sends them (an offline CREATE without branchId, then ${s.runShape.length - 1} UPDATEs with the
  branchId, trunkVersion null, baseVersion 1, 2, …) and ${s.runShape.existing} runs of ${s.runShape.length} UPDATEs on the client's existing entities
  (branchId, trunkVersion = current), the whole batch reversed: each run's later changes come first and are held, its first
  applies and releases them. Baseline: the same final rows by set-based SQL (locks of changes, entities and runs; one read that
  also finds no run begun before; entities inserted and updated, versions and changes inserted, multi-row). Checked afterwards
  on both sides: every run applied, nothing held, every entity's versions dense.
  Node CPU: process.cpuUsage() of the entity-sync server process over the timed rounds (asked over IPC before and after
  each round), per change; baseline: the baseline process's. The HTTP clients' CPU is in neither.
- One offline submission per request (bench/offline-one.ts): one client (a device with a collector token), one request at a time,
  each change alone in a submitChange over HTTP to the batch phase's server: rounds of ${s.offlineShape.collect} ODK Collect runs and ${s.offlineShape.existing} runs on existing
  entities, ${s.offlineShape.length} changes each, sent reversed (each later change HELD, then the first APPLIED releasing the rest, checked);
  1 warm-up round, ${s.offlineRounds} timed. Peer: ODK Central's ${ODK_CENTRAL_MS} ms per offline submission as issue 22 states it (no ODK Central runs here).
- Single: ${s.requests} timed submitChange updates (after ${s.warmupRequests} warm-up) from ${s.clients} concurrent keep-alive fetch clients,
  each updating its own ${s.entitiesPerClient} entities in turn. Baseline: a bare graphql-yoga server with an \`echo(value: String!)\`
  mutation, same clients and counts. Alternating runs of ${s.requests / s.rounds}; rates are requests over summed run time.
  Memory: the entity-sync server runs in this process together with its load generator; the yoga echo server and its load
  generator in the baseline process. Read after a forced GC at phase end.
- Pull: every version of the bench dataset so far (${n(m.pull?.es.versions ?? 0)}), from the start, in pages of ${n(s.pullLimit)}:
  entity-sync's changesSince over HTTP with the client library's own query (collector token), against the same
  select by raw SQL (dataset join, (txid, seq) cursor, the same pull horizon, every column); ${s.pullRounds} passes each, ABBA.
- Flush: a backlog of ${n(s.flushHeld)} held changes per side (BENCH_FLUSH_HELD), each the 2nd change of a 2-change offline run
  (branchId, trunkVersion 1, baseVersion 2) on an existing entity at version 1 whose 1st change never arrived, held 10 min.
  Made untimed just before each side's flush: one created and held by submitChanges, cloned with fresh ids by multi-row SQL
  inserts. After ${n(s.flushWarmup)} warm-up per side, entity-sync times \`flushBacklog(db, { olderThanSeconds: 0 })\` in process (the
  periodic task's and \`npm run flush\`'s path; events returned, not published), then the set-based SQL flush (bench/set-sql.ts
  setFlush) runs in the baseline process: 500 per transaction, one statement taking what is due (FOR UPDATE SKIP LOCKED) with its
  entities, entity try-locks and a successor check, then one multi-row statement each for held rows, entities, FORCED versions
  and the change log. Checked: every change forced exactly once, nothing held, the same rows on both sides. Transactions:
  distinct txids of the forced versions (batches of 500: ${n(Math.ceil(s.flushHeld / 500))}; one per change when forcing falls back change by change).
- History: one entity with ${n(s.historyVersions)} versions (create + ${n(s.historyVersions - 1)} online updates; the first two made by submitChanges,
  the rest cloned by SQL inserts) and one with 1 version (created by submitChanges); ${s.historyUpdates} in-order single updates each
  (after ${s.historyWarmup} warm-up; the small one ends at ${s.historyUpdates + s.historyWarmup + 1} versions), through src/sync/submit-changes.ts in process, no HTTP.
  Baseline: the raw-SQL update above on its own pair of entities built the same way. ${s.historyRounds} rounds of ${s.historyUpdates / s.historyRounds},
  order big/small/raw big/raw small, reversed every other round.
- Live: ${n(s.sockets)} graphql-ws sockets per server (\`createClient\`, \`ws\`), one \`entityChanged(dataset:)\` subscription each selecting
  \`dataset entityId version\`, all in one subscriber process that also sends the mutations. Each server runs alone in a fresh
  process (bench/live-server.ts). entity-sync: buildApp on the bench database with the production event bus
  (\`createEventBus({ notifier: postgresNotifier(sql) })\`, as src/main.ts wires it for a real Postgres: every event goes through
  Postgres NOTIFY and comes back on the instance's LISTEN); mutation: submitChange over HTTP. Baseline: bare graphql-yoga +
  graphql-ws whose \`publish\` mutation publishes to a yoga createPubSub topic the subscription listens to. ${s.liveEvents} events per
  side, one at a time, each awaited at all ${n(s.sockets)} subscribers, rounds of ${s.liveEvents / s.liveRounds} ABBA: ${n(m.live?.es.count ?? 0)} / ${n(m.live?.base.count ?? 0)} samples.
  Latency = arrival at a subscriber minus the mutation's HTTP response, on the subscriber process's clock; it includes that
  process reading the ${n(s.sockets)} messages in turn (same for both sides); negative when an event beats the response. First
  subscriber: the earliest arrival of each event; as the ${n(s.sockets)} subscriptions advance together, a server sends its frames
  near the end of its fan-out, so this is about the server's time from response to having served every subscriber.
  Memory per socket: (server process after opening the sockets and one event each - before) / ${n(s.sockets)}, after a forced GC;
  "before" follows 10 sockets opened, used and closed, so first-use compilation is not counted.
- Load: ${s.loadClients} concurrent clients for ${s.loadSeconds} s (BENCH_LOAD_SECONDS), each with ${s.loadBatchSize} entities of its own, sending one
  batch at a time of ${s.loadBatchSize} in-order UPDATE changes (one per entity, baseVersion = current) over HTTP on loopback, every result checked
  (APPLIED at the next version; anything else, or a request without an answer, is an error and the batch is resent with the same
  ids); two untimed warm-up batches per client first. entity-sync: the server alone in a fresh process (bench/live-server.ts, the
  production event bus over LISTEN/NOTIFY, a pool of 10 connections), the clients in this process. Baseline: the same load by raw
  SQL (bench/raw-sql.ts, one transaction per change, as submitChanges did before issue 13), ${s.loadClients} workers sharing a pool of 10 connections in a
  process of their own; the two sides run one after the other. Latency: per batch. Lost: acknowledged changes that the database
  does not hold afterwards, each with its version (entity-sync: by change id; raw SQL: by count per device). Memory: the process
  doing the work (server; raw-SQL workers), after a forced GC, at the start of the timed run, at ${midSeconds} s and at the end.
${eventsDescription(s)}
- Node CPU: user + system CPU time (process.cpuUsage) of the process doing the work (entity-sync: the server process in the
  batch phases, this process in the flush and history phases; SQL: the baseline process) over the timed runs, per change;
  the rest of the wall time is spent waiting (Postgres, scheduler).
- Ratio = entity-sync / baseline (throughput: higher is better; latency and memory: lower is better).
- Machine load average (1 min): ${m.load.before.toFixed(2)} before, ${m.load.after.toFixed(2)} after.

${table(rows)}

Targets met: ${targets.length - missed.length} of ${targets.length}.${missed.map((x) => `\n- missed: ${x[0]}: ${x[1]} (target ${x[4]})`).join('')}

${
  b
    ? `
Set-based SQL, in-order batch, time per batch by statement (as its worker sees it; ${perBatch(b.inOrder.set!)}):
${steps(b.inOrder.setSteps)}

Set-based SQL, offline-run batch, time per batch by statement (${perBatch(b.runs.set!)}):
${steps(b.runs.setSteps)}

Per-change SQL (baseline 2), time per change by statement:
${steps(b.inOrder.perChangeSteps)}
`
    : ''
}${
  m.flush
    ? `
Set-based SQL flush, time per transaction of up to 500 by statement:
${steps(m.flush.setSteps)}
`
    : ''
}`;
}
