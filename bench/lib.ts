import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
/** Small shared helpers for the benchmark: timing, percentiles, memory, HTTP load. */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RunShape } from './workloads.js';

export interface LoadResult {
  count: number;
  seconds: number;
  /** Operations per second over the whole timed run. */
  rate: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) of the measuring process over the runs, ms, when measured. */
  cpuMs?: number;
}

export interface MemorySnapshot {
  /** Resident set size, MB. */
  rssMb: number;
  /** V8 heap in use after a forced full GC, MB. */
  heapMb: number;
}

/** Settings the parent hands to the baseline process. */
export interface BaselineConfig {
  url: string;
  dataset: string;
  deviceId: string;
  clients: number;
}

/** Which baseline a batch round runs (bench/set-sql.ts, bench/raw-sql.ts). */
export type BatchKind = 'set' | 'perChange' | 'setRuns';

/** Parent -> baseline process. */
export type BaselineCommand =
  | { cmd: 'init'; config: BaselineConfig }
  /** The workers of a batch baseline: each a device with entities of its own (for runs: one run each per batch). */
  | { cmd: 'batchWorkers'; kind: BatchKind; dataset: string; workers: { deviceId: string; entityIds: string[] }[]; runShape?: RunShape }
  /** Every worker sends `batches` batches, one at a time, all workers at once; timed. */
  | { cmd: 'batchRound'; kind: BatchKind; batches: number }
  /** Mean milliseconds by statement per batch (per change for perChange) since the last call. */
  | { cmd: 'batchSteps'; kind: BatchKind }
  | { cmd: 'resetSteps' }
  | { cmd: 'echo'; count: number }
  | { cmd: 'memory' }
  /** Forces every held change that is due, by set-based SQL (bench/set-sql.ts setFlush), timed. */
  | { cmd: 'setFlush' }
  /** `count` in-order raw-SQL updates of one entity, one at a time, each timed. */
  | { cmd: 'rawUpdates'; entityId: string; fromVersion: number; count: number }
  /** Reads the whole dataset's versions in pages of `limit` as changesSince does, by raw SQL, each page timed. */
  | { cmd: 'rawPull'; limit: number }
  | { cmd: 'exit' };

/** Baseline process -> parent: the answer to the last command. */
export interface BaselineReply {
  ok: boolean;
  error?: string;
  /** rawBatch: wall time of the batch; echo: latencies and wall time of the run. */
  run?: TimedRun;
  memory?: MemorySnapshot;
  /** Mean milliseconds per raw-SQL statement since the last resetSteps or batchSteps. */
  steps?: { step: string; ms: number }[];
  /** setFlush: changes forced; rawPull: versions read. */
  count?: number;
  /** batchWorkers, batchRound: each worker's entities (for runs, those created too), in the order first touched. */
  touched?: string[][];
  /** rawUpdates: the entity's version after them. */
  version?: number;
}

/** Parent -> live-server process (bench/live-server.ts). */
export type LiveServerCommand =
  /** redisUrl: events over Redis instead of NOTIFY; deliver: false, no webhook deliveries on this instance. */
  | { cmd: 'start'; kind: SubscriberTarget['kind']; databaseUrl: string; redisUrl?: string; deliver?: boolean }
  | { cmd: 'memory' }
  | { cmd: 'cpu' }
  | { cmd: 'exit' };

export interface LiveServerReply {
  ok: boolean;
  error?: string;
  url?: string;
  memory?: MemorySnapshot;
  /** cpu: the server process's process.cpuUsage() so far. */
  cpu?: NodeJS.CpuUsage;
}

/** A server the subscriber process opens sockets to and sends mutations through. */
export interface SubscriberTarget {
  name: string;
  kind: 'entity-sync' | 'yoga-pubsub';
  url: string;
  /** entity-sync: the entity the submitChange updates go to, and its version. */
  entityId: string;
  version: number;
}

/** Parent -> subscriber process (bench/subscribers.ts). */
export type SubscriberCommand =
  | { cmd: 'open'; target: SubscriberTarget; count: number; wave: number }
  /** `count` events, one at a time; 0: warm up until every subscription has had an event. */
  | { cmd: 'events'; name: string; count: number }
  | { cmd: 'close'; name: string }
  | { cmd: 'exit' };

export interface SubscriberReply {
  ok: boolean;
  error?: string;
  /** events: ms from the mutation's HTTP response to each subscriber's event. */
  latencies?: number[];
  /** events: the same for the earliest subscriber of each event. */
  first?: number[];
}

/** Latencies (ms) of the operations of one timed run and its wall time (s). */
export interface TimedRun {
  latencies: number[];
  seconds: number;
  /** CPU time (user + system) this process spent during the run, ms. */
  cpuMs?: number;
}

const cpuSince = (start: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

export const BENCH_PROPS = ['count', 'note', 'status'] as const;

/** The update every change in the benchmark makes (same shape on both sides). */
export function updateData(n: number): Record<string, unknown> {
  return { count: n, note: `bench note ${n}`, status: n % 2 === 0 ? 'even' : 'odd' };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(latencies: number[], seconds: number): LoadResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { count: latencies.length, seconds, rate: latencies.length / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

let gcFn: (() => void) | undefined;
/** A full GC, made available without a command-line flag. */
export function forceGc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

export function memory(): MemorySnapshot {
  forceGc();
  forceGc();
  const m = process.memoryUsage();
  return { rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20 };
}

let bearer: string | null = null;
/** The API token every later gql() sends (null: none, for servers with anonymous access). */
export function useToken(token: string | null): void {
  bearer = token;
}

/** POSTs one GraphQL operation (with the token of useToken unless given one); throws on HTTP or GraphQL errors. */
export async function gql<T>(url: string, query: string, variables: Record<string, unknown>, token: string | null = bearer): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (res.status !== 200 || body.errors || !body.data) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body.errors ?? body).slice(0, 500)}`);
  return body.data;
}

/**
 * Runs `total` operations over `clients` concurrent workers (each one request at a time),
 * timing each. `op(worker, i)` gets the worker number and a global sequence number.
 */
export async function concurrentLoad(clients: number, total: number, op: (worker: number, i: number) => Promise<void>): Promise<TimedRun> {
  const latencies: number[] = [];
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, worker) => {
      for (let i = next++; i < total; i = next++) {
        const t0 = performance.now();
        await op(worker, i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - start) / 1000, cpuMs: cpuSince(cpu) };
}

/**
 * `workers` concurrent workers, each doing `count` operations of its own one after the other;
 * each operation timed, and the CPU of this process over the run.
 */
export async function perWorker(workers: number, count: number, op: (worker: number) => Promise<void>): Promise<TimedRun> {
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        await op(w);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - start) / 1000, cpuMs: cpuSince(cpu) };
}

/** Times one operation. */
export async function timed(op: () => Promise<void>): Promise<TimedRun> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await op();
  const ms = performance.now() - t0;
  return { latencies: [ms], seconds: ms / 1000, cpuMs: cpuSince(cpu) };
}

/** Adds up interleaved runs: the rate is operations over the summed wall time of the runs. */
export function combine(runs: readonly TimedRun[], opsPerLatency = 1): LoadResult {
  const latencies = runs.flatMap((r) => r.latencies);
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  const r = summarize(latencies, seconds);
  const cpuMs = runs.every((x) => x.cpuMs !== undefined) ? runs.reduce((a, x) => a + x.cpuMs!, 0) : undefined;
  return { ...r, count: latencies.length * opsPerLatency, rate: (latencies.length * opsPerLatency) / seconds, ...(cpuMs !== undefined ? { cpuMs } : {}) };
}

export const fmt = {
  rate: (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`,
  ms: (n: number) => `${n.toFixed(2)} ms`,
  mb: (n: number) => `${n.toFixed(1)} MB`,
  ratio: (n: number) => `${n.toFixed(2)}×`,
};

/**
 * A child process's side of the IPC channel: each command is handled in turn and answered; a
 * failure answers `{ ok: false, error }`; after answering `exit`, the process ends.
 */
export function serveCommands<C extends { cmd: string }>(handle: (cmd: C) => Promise<{ ok: boolean; error?: string }>): void {
  process.on('message', (msg: C) => {
    handle(msg).then(
      (reply) => {
        process.send!(reply, () => {
          if (msg.cmd === 'exit') process.exit(0);
        });
      },
      (err: unknown) => process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
}

/** Listens on a free loopback port (benchmarks never leave the machine); resolves with the port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}
