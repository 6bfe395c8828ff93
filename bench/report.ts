/** The printed result: a markdown table, each entity-sync figure beside its baseline, as a ratio. */
import type { LoadFigures } from './load.js';
import { fmt, type LoadResult, type MemorySnapshot } from './lib.js';

export interface Measured {
  batched: LoadResult;
  raw: LoadResult;
  rawSteps: { step: string; ms: number }[];
  single: LoadResult;
  echo: LoadResult;
  memory: { batched: MemorySnapshot; raw: MemorySnapshot; single: MemorySnapshot; echo: MemorySnapshot };
  /** Pulling the whole dataset: versions/s over all passes, and the latency of one page. */
  pull: { es: { rate: number; page: LoadResult; versions: number }; raw: { rate: number; page: LoadResult; versions: number } };
  /** Forced flush: rates over the timed rounds; raw-SQL time per forced change by statement. */
  flush: { es: LoadResult; raw: LoadResult; rawSteps: { step: string; ms: number }[] };
  /** In-order single updates on an entity with a long history (big) and with one version (small). */
  history: { esBig: LoadResult; esSmall: LoadResult; rawBig: LoadResult; rawSmall: LoadResult };
  /** Event latencies (count = samples) and the servers' memory around opening the sockets. */
  live: { es: LoadResult; base: LoadResult; esFirst: LoadResult; baseFirst: LoadResult; memory: Record<'esBefore' | 'esAfter' | 'baseBefore' | 'baseAfter', MemorySnapshot> };
  load: { before: number; after: number };
  /** The sustained-load phase (bench/load.ts): entity-sync and the raw-SQL baseline. */
  loadTest: { es: LoadFigures; raw: LoadFigures };
  /** Commit measured, and whether src/ had uncommitted changes. */
  source: string;
  seconds: number;
}

export interface Settings {
  batchSize: number;
  warmupBatches: number;
  batches: number;
  clients: number;
  entitiesPerClient: number;
  warmupRequests: number;
  requests: number;
  rounds: number;
  target: number;
  flushWarmup: number;
  flushRounds: number;
  flushPerRound: number;
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
}

type Row = [string, string, string, string];

function table(rows: Row[]): string {
  const head: Row = ['metric', 'entity-sync', 'baseline', 'ratio'];
  const all = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  return [line(head), `| ${widths.map((w, c) => (c === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

const n = (x: number) => x.toLocaleString('en-US');
const kb = (mb: number) => `${(mb * 1024).toFixed(1)} KB`;

export function report(m: Measured, s: Settings): string {
  const r = (a: number, base: number) => (base > 0 && a >= 0 ? fmt.ratio(a / base) : 'n/a');
  const h = m.history;
  const msPer = (x: LoadResult) => 1000 / x.rate;
  const cpuPer = (...xs: LoadResult[]) => xs.reduce((a, x) => a + (x.cpuMs ?? NaN), 0) / xs.reduce((a, x) => a + x.count, 0);
  const esGrowth = msPer(h.esBig) / msPer(h.esSmall);
  const rawGrowth = msPer(h.rawBig) / msPer(h.rawSmall);
  const mem = m.live.memory;
  const perSocket = (after: MemorySnapshot, before: MemorySnapshot, k: keyof MemorySnapshot) => (after[k] - before[k]) / s.sockets;
  const flushed = s.flushRounds * s.flushPerRound;
  const lt = m.loadTest;
  const midSeconds = Math.min(10, s.loadSeconds / 2);
  // Flat: RSS at the end within 10% of the reading at 10 s (after start-up and warm caches).
  const rssGrowth = lt.es.memory.end.rssMb / lt.es.memory.mid.rssMb - 1;
  const loadErrors = lt.es.errors === 0 ? 'MET' : `NOT MET (first: ${lt.es.firstError})`;
  const rows: Row[] = [
    [`submitChanges, ${s.batchSize} updates/batch: changes/s (vs raw SQL)`, fmt.rate(m.batched.rate), fmt.rate(m.raw.rate), r(m.batched.rate, m.raw.rate)],
    [`submitChanges: batch latency p50`, fmt.ms(m.batched.p50), fmt.ms(m.raw.p50), r(m.batched.p50, m.raw.p50)],
    [`submitChanges: batch latency p99`, fmt.ms(m.batched.p99), fmt.ms(m.raw.p99), r(m.batched.p99, m.raw.p99)],
    [`submitChange, ${s.clients} clients: changes/s (vs yoga echo req/s)`, fmt.rate(m.single.rate), fmt.rate(m.echo.rate), r(m.single.rate, m.echo.rate)],
    [`submitChange: latency p50`, fmt.ms(m.single.p50), fmt.ms(m.echo.p50), r(m.single.p50, m.echo.p50)],
    [`submitChange: latency p99`, fmt.ms(m.single.p99), fmt.ms(m.echo.p99), r(m.single.p99, m.echo.p99)],
    [`changesSince, ${n(m.pull.es.versions)} versions in pages of ${n(s.pullLimit)}: versions/s (vs raw SQL select)`, fmt.rate(m.pull.es.rate), fmt.rate(m.pull.raw.rate), r(m.pull.es.rate, m.pull.raw.rate)],
    [`changesSince: page latency p50`, fmt.ms(m.pull.es.page.p50), fmt.ms(m.pull.raw.page.p50), r(m.pull.es.page.p50, m.pull.raw.page.p50)],
    ['RSS after batched phase (vs raw-SQL process)', fmt.mb(m.memory.batched.rssMb), fmt.mb(m.memory.raw.rssMb), r(m.memory.batched.rssMb, m.memory.raw.rssMb)],
    ['heap used after batched phase (vs raw-SQL process)', fmt.mb(m.memory.batched.heapMb), fmt.mb(m.memory.raw.heapMb), r(m.memory.batched.heapMb, m.memory.raw.heapMb)],
    ['RSS after single phase (vs yoga-echo process)', fmt.mb(m.memory.single.rssMb), fmt.mb(m.memory.echo.rssMb), r(m.memory.single.rssMb, m.memory.echo.rssMb)],
    ['heap used after single phase (vs yoga-echo process)', fmt.mb(m.memory.single.heapMb), fmt.mb(m.memory.echo.heapMb), r(m.memory.single.heapMb, m.memory.echo.heapMb)],
    [`flushBacklog, ${n(flushed)} held changes (not 20,000): changes/s (vs raw SQL)`, fmt.rate(m.flush.es.rate), fmt.rate(m.flush.raw.rate), r(m.flush.es.rate, m.flush.raw.rate)],
    [`flushBacklog: Node CPU per forced change (vs raw-SQL process)`, fmt.ms(cpuPer(m.flush.es)), fmt.ms(cpuPer(m.flush.raw)), r(cpuPer(m.flush.es), cpuPer(m.flush.raw))],
    [`update, entity with ${n(s.historyVersions)} versions: ms/update (vs raw SQL)`, fmt.ms(msPer(h.esBig)), fmt.ms(msPer(h.rawBig)), r(msPer(h.esBig), msPer(h.rawBig))],
    [`update, entity with 1 version: ms/update (vs raw SQL)`, fmt.ms(msPer(h.esSmall)), fmt.ms(msPer(h.rawSmall)), r(msPer(h.esSmall), msPer(h.rawSmall))],
    [`update cost, ${n(s.historyVersions)} versions / 1 version (vs raw SQL's)`, fmt.ratio(esGrowth), fmt.ratio(rawGrowth), r(esGrowth, rawGrowth)],
    [`updates on both: Node CPU per update (vs raw-SQL process)`, fmt.ms(cpuPer(h.esBig, h.esSmall)), fmt.ms(cpuPer(h.rawBig, h.rawSmall)), r(cpuPer(h.esBig, h.esSmall), cpuPer(h.rawBig, h.rawSmall))],
    [`event latency p50, response -> subscriber, ${n(s.sockets)} sockets (vs bare yoga)`, fmt.ms(m.live.es.p50), fmt.ms(m.live.base.p50), r(m.live.es.p50, m.live.base.p50)],
    [`event latency p99, response -> subscriber, ${n(s.sockets)} sockets (vs bare yoga)`, fmt.ms(m.live.es.p99), fmt.ms(m.live.base.p99), r(m.live.es.p99, m.live.base.p99)],
    [`event latency to the first subscriber, median of events (vs bare yoga)`, fmt.ms(m.live.esFirst.p50), fmt.ms(m.live.baseFirst.p50), r(m.live.esFirst.p50, m.live.baseFirst.p50)],
    [`RSS per open socket (vs bare yoga + graphql-ws)`, kb(perSocket(mem.esAfter, mem.esBefore, 'rssMb')), kb(perSocket(mem.baseAfter, mem.baseBefore, 'rssMb')), r(perSocket(mem.esAfter, mem.esBefore, 'rssMb'), perSocket(mem.baseAfter, mem.baseBefore, 'rssMb'))],
    [`heap per open socket (vs bare yoga + graphql-ws)`, kb(perSocket(mem.esAfter, mem.esBefore, 'heapMb')), kb(perSocket(mem.baseAfter, mem.baseBefore, 'heapMb')), r(perSocket(mem.esAfter, mem.esBefore, 'heapMb'), perSocket(mem.baseAfter, mem.baseBefore, 'heapMb'))],
    [`load, ${s.loadClients} clients × ${s.loadSeconds} s, ${s.loadBatchSize} updates/batch: changes/s (vs raw SQL)`, fmt.rate(lt.es.rate), fmt.rate(lt.raw.rate), r(lt.es.rate, lt.raw.rate)],
    [`load: batch latency p50`, fmt.ms(lt.es.p50), fmt.ms(lt.raw.p50), r(lt.es.p50, lt.raw.p50)],
    [`load: batch latency p99`, fmt.ms(lt.es.p99), fmt.ms(lt.raw.p99), r(lt.es.p99, lt.raw.p99)],
    [`load: errors (must be 0)`, n(lt.es.errors), n(lt.raw.errors), r(lt.es.errors, lt.raw.errors)],
    [`load: acknowledged changes not in the database (must be 0)`, `${n(lt.es.lost)} of ${n(lt.es.acknowledged)}`, `${n(lt.raw.lost)} of ${n(lt.raw.acknowledged)}`, r(lt.es.lost, lt.raw.lost)],
    [`load: RSS at start (vs raw-SQL process)`, fmt.mb(lt.es.memory.start.rssMb), fmt.mb(lt.raw.memory.start.rssMb), r(lt.es.memory.start.rssMb, lt.raw.memory.start.rssMb)],
    [`load: RSS at ${midSeconds} s`, fmt.mb(lt.es.memory.mid.rssMb), fmt.mb(lt.raw.memory.mid.rssMb), r(lt.es.memory.mid.rssMb, lt.raw.memory.mid.rssMb)],
    [`load: RSS at the end`, fmt.mb(lt.es.memory.end.rssMb), fmt.mb(lt.raw.memory.end.rssMb), r(lt.es.memory.end.rssMb, lt.raw.memory.end.rssMb)],
    [`load: heap used at ${midSeconds} s -> end`, `${fmt.mb(lt.es.memory.mid.heapMb)} -> ${fmt.mb(lt.es.memory.end.heapMb)}`, `${fmt.mb(lt.raw.memory.mid.heapMb)} -> ${fmt.mb(lt.raw.memory.end.heapMb)}`, r(lt.es.memory.end.heapMb, lt.raw.memory.end.heapMb)],
  ];
  const ratio = m.batched.rate / m.raw.rate;
  const stepTotal = m.rawSteps.reduce((a, x) => a + x.ms, 0);
  const flushStepTotal = m.flush.rawSteps.reduce((a, x) => a + x.ms, 0);
  const steps = (list: { step: string; ms: number }[]) => list.map((x) => `  ${x.step.padEnd(24)} ${x.ms.toFixed(3)} ms`).join('\n');
  return `
## entity-sync benchmark (real Postgres, ${new Date().toISOString()})

- Code: ${m.source}. Whole run: ${m.seconds.toFixed(0)} s.
- Batched: ${s.batches} timed batches (after ${s.warmupBatches} warm-up) of ${s.batchSize} UPDATE changes over HTTP, one batch at a
  time; each batch updates ${s.batchSize} distinct entities once each, in order (baseVersion = current, no conflicts).
  Baseline: what one in-order update needs, hand-written with the \`postgres\` driver (prepared statements), one
  transaction per change: advisory locks on change id and entity id, change-log / dataset / entity selects,
  entity update, entity_versions and changes inserts; on another ${s.batchSize} entities of the same database,
  same counts. Batches alternate entity-sync / raw SQL (ABBA).
- Single: ${s.requests} timed submitChange updates (after ${s.warmupRequests} warm-up) from ${s.clients} concurrent keep-alive fetch clients,
  each updating its own ${s.entitiesPerClient} entities in turn. Baseline: a bare graphql-yoga server with an \`echo(value: String!)\`
  mutation, same clients and counts. Alternating runs of ${s.requests / s.rounds}; rates are requests over summed run time.
- Memory: the entity-sync server runs in this process together with its load generator; the baselines (raw SQL
  client, yoga echo server and its load generator) run in a child process. Read after a forced GC at phase end.
- Pull: every version of the bench dataset so far (${n(m.pull.es.versions)}), from the start, in pages of ${n(s.pullLimit)}:
  entity-sync's changesSince over HTTP with the client library's own query (collector token), against the same
  select by raw SQL (dataset join, (txid, seq) cursor, the same pull horizon, every column); ${s.pullRounds} passes each, ABBA.
- Flush: held changes that are each the 2nd change of a 2-change offline run (branchId, trunkVersion 1, baseVersion 2)
  on an existing entity at version 1, whose 1st change never arrived, held 10 min. Made untimed just before each round:
  one created and one held by submitChanges, cloned with fresh ids by SQL inserts. ${s.flushRounds} rounds of ${s.flushPerRound} per side
  (after ${s.flushWarmup} warm-up), ABBA; entity-sync times \`flushBacklog(db, { olderThanSeconds: 0 })\` in process (the periodic
  task's and \`npm run flush\`'s path; events returned, not published). ${n(flushed)} per side, not 20,000: at the rates
  below, 20,000 would take ${(20000 / m.flush.es.rate).toFixed(0)} s (entity-sync) and ${(20000 / m.flush.raw.rate).toFixed(0)} s (raw SQL) on this machine. Baseline: raw SQL listing
  what is due (200 at a time, oldest first), then per change one transaction: entity advisory lock, delete held row,
  select entity, update entity, insert FORCED version, update change log, look for the held successor to release.
  Every round checked: all forced, nothing left held.
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
  side, one at a time, each awaited at all ${n(s.sockets)} subscribers, rounds of ${s.liveEvents / s.liveRounds} ABBA: ${n(m.live.es.count)} / ${n(m.live.base.count)} samples.
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
  SQL (bench/raw-sql.ts, one transaction per change as submitChanges does), ${s.loadClients} workers sharing a pool of 10 connections in a
  process of their own; the two sides run one after the other. Latency: per batch. Lost: acknowledged changes that the database
  does not hold afterwards, each with its version (entity-sync: by change id; raw SQL: by count per device). Memory: the process
  doing the work (server; raw-SQL workers), after a forced GC, at the start of the timed run, at ${midSeconds} s and at the end.
- Node CPU: user + system CPU time (process.cpuUsage) of the process doing the work (entity-sync: this process; raw SQL:
  the baseline process) over the timed runs, per change; the rest of the wall time is spent waiting (Postgres, scheduler).
- Ratio = entity-sync / baseline (throughput: higher is better; latency and memory: lower is better).
- Machine load average (1 min): ${m.load.before.toFixed(2)} before, ${m.load.after.toFixed(2)} after.

${table(rows)}

Raw-SQL time per change, by statement (round trips as the baseline sees them):
${steps(m.rawSteps)}
  ${'total'.padEnd(24)} ${stepTotal.toFixed(3)} ms   (entity-sync batched: ${(1000 / m.batched.rate).toFixed(3)} ms per change)

Raw-SQL time per forced change, by statement:
${steps(m.flush.rawSteps)}
  ${'total'.padEnd(24)} ${flushStepTotal.toFixed(3)} ms   (entity-sync flushBacklog: ${(1000 / m.flush.es.rate).toFixed(3)} ms per change)

Verdicts:
- batched submitChanges at least ${s.target * 100}% of the raw SQL rate: ${(ratio * 100).toFixed(1)}%, ${ratio >= s.target ? 'MET' : 'NOT MET'}.
- update on an entity with ${n(s.historyVersions)} versions under ${s.historyTarget}× the cost on one with 1: ${esGrowth.toFixed(2)}×, ${esGrowth < s.historyTarget ? 'MET' : 'NOT MET'}.
- load, ${s.loadClients} clients × ${s.loadSeconds} s: no errors: ${n(lt.es.errors)}, ${loadErrors}.
- load: no acknowledged change lost: ${n(lt.es.lost)} of ${n(lt.es.acknowledged)}, ${lt.es.lost === 0 ? 'MET' : 'NOT MET'}.
- load: memory flat (server RSS at the end within 10% of its RSS at ${midSeconds} s): ${rssGrowth >= 0 ? '+' : ''}${(rssGrowth * 100).toFixed(1)}%, ${rssGrowth <= 0.1 ? 'MET' : 'NOT MET'} (raw-SQL process: ${((lt.raw.memory.end.rssMb / lt.raw.memory.mid.rssMb - 1) * 100).toFixed(1)}%).
`;
}
