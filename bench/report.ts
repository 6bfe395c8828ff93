/** The printed result: a markdown table, each entity-sync figure beside its baseline, as a ratio. */
import { fmt, type LoadResult, type MemorySnapshot } from './lib.js';

export interface Measured {
  batched: LoadResult;
  raw: LoadResult;
  rawSteps: { step: string; ms: number }[];
  single: LoadResult;
  echo: LoadResult;
  memory: { batched: MemorySnapshot; raw: MemorySnapshot; single: MemorySnapshot; echo: MemorySnapshot };
  load: { before: number; after: number };
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
}

type Row = [string, string, string, string];

function table(rows: Row[]): string {
  const head: Row = ['metric', 'entity-sync', 'baseline', 'ratio'];
  const all = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  return [line(head), `| ${widths.map((w, c) => (c === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export function report(m: Measured, s: Settings): string {
  const r = (a: number, base: number) => fmt.ratio(a / base);
  const rows: Row[] = [
    [`submitChanges, ${s.batchSize} updates/batch: changes/s (vs raw SQL)`, fmt.rate(m.batched.rate), fmt.rate(m.raw.rate), r(m.batched.rate, m.raw.rate)],
    [`submitChanges: batch latency p50`, fmt.ms(m.batched.p50), fmt.ms(m.raw.p50), r(m.batched.p50, m.raw.p50)],
    [`submitChanges: batch latency p99`, fmt.ms(m.batched.p99), fmt.ms(m.raw.p99), r(m.batched.p99, m.raw.p99)],
    [`submitChange, ${s.clients} clients: changes/s (vs yoga echo req/s)`, fmt.rate(m.single.rate), fmt.rate(m.echo.rate), r(m.single.rate, m.echo.rate)],
    [`submitChange: latency p50`, fmt.ms(m.single.p50), fmt.ms(m.echo.p50), r(m.single.p50, m.echo.p50)],
    [`submitChange: latency p99`, fmt.ms(m.single.p99), fmt.ms(m.echo.p99), r(m.single.p99, m.echo.p99)],
    ['RSS after batched phase (vs raw-SQL process)', fmt.mb(m.memory.batched.rssMb), fmt.mb(m.memory.raw.rssMb), r(m.memory.batched.rssMb, m.memory.raw.rssMb)],
    ['heap used after batched phase (vs raw-SQL process)', fmt.mb(m.memory.batched.heapMb), fmt.mb(m.memory.raw.heapMb), r(m.memory.batched.heapMb, m.memory.raw.heapMb)],
    ['RSS after single phase (vs yoga-echo process)', fmt.mb(m.memory.single.rssMb), fmt.mb(m.memory.echo.rssMb), r(m.memory.single.rssMb, m.memory.echo.rssMb)],
    ['heap used after single phase (vs yoga-echo process)', fmt.mb(m.memory.single.heapMb), fmt.mb(m.memory.echo.heapMb), r(m.memory.single.heapMb, m.memory.echo.heapMb)],
  ];
  const ratio = m.batched.rate / m.raw.rate;
  const stepTotal = m.rawSteps.reduce((a, x) => a + x.ms, 0);
  return `
## entity-sync benchmark (real Postgres, ${new Date().toISOString()})

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
- Ratio = entity-sync / baseline (throughput: higher is better; latency and memory: lower is better).
- Machine load average (1 min): ${m.load.before.toFixed(2)} before, ${m.load.after.toFixed(2)} after.

${table(rows)}

Raw-SQL time per change, by statement (round trips as the baseline sees them):
${m.rawSteps.map((x) => `  ${x.step.padEnd(24)} ${x.ms.toFixed(3)} ms`).join('\n')}
  ${'total'.padEnd(24)} ${stepTotal.toFixed(3)} ms   (entity-sync batched: ${(1000 / m.batched.rate).toFixed(3)} ms per change)

Target: batched submitChanges at least ${s.target * 100}% of the raw SQL rate: ${(ratio * 100).toFixed(1)}%, ${ratio >= s.target ? 'MET' : 'NOT MET'}.
`;
}
