import { CHANGE_OUTCOMES, CONFLICT_TYPES } from '../core/types.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/client.js';
import type { SyncObserver } from '../graphql/context.js';
import { backlogStats } from '../sync/backlog-stats.js';
import type { SyncEvent } from '../core/events.js';

/**
 * Prometheus metrics of one app (`GET /metrics`). Counters count what THIS instance processed:
 * they are fed by the resolvers (through `observer`) and by `published`, which sees only the
 * events this instance commits, never the ones arriving from other instances over the bus.
 * The backlog gauges are read from the shared database at scrape time, so every instance
 * reports the same backlog. Each app has its own registry, so two apps in one process (tests)
 * keep separate counts.
 */
export interface Metrics {
  registry: Registry;
  /** For the Context: what resolvers report that is counted. */
  observer: Pick<SyncObserver, 'submitted' | 'flushed'>;
  /** Every event this instance publishes passes here first (conflicts are counted from them). */
  published(events: readonly SyncEvent[]): void;
  /** A flush run ended, having forced and applied this many held changes. */
  flushed(trigger: FlushTrigger, forcedApplied: number): void;
  /** Times the request from now until its response is done. */
  timeRequest(req: IncomingMessage, res: ServerResponse): void;
  /** Answers a scrape in the text exposition format. */
  respond(res: ServerResponse): Promise<void>;
}

export type FlushTrigger = 'periodic' | 'mutation';

const TRIGGERS: readonly FlushTrigger[] = ['periodic', 'mutation'];
/** Routes get a label of their own; anything else is `other`, so a scanner cannot grow the series. */
const ROUTES = new Set(['/graphql', '/health', '/ready', '/metrics']);

export function createMetrics(opts: { db: Db; openSockets: () => number; onError?: (error: unknown) => void }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const changes = new Counter({
    name: 'entity_sync_changes_total',
    help: 'Submitted changes processed by this instance, by outcome (and error code when rejected).',
    labelNames: ['outcome', 'code'] as const,
    registers,
  });
  const conflicts = new Counter({
    name: 'entity_sync_conflicts_total',
    help: 'Conflicts this instance detected while applying changes (submitted, released or forced), by type.',
    labelNames: ['type'] as const,
    registers,
  });
  const flushRuns = new Counter({
    name: 'entity_sync_backlog_flush_runs_total',
    help: 'Backlog flush runs on this instance, by trigger (periodic task or flushBacklog mutation).',
    labelNames: ['trigger'] as const,
    registers,
  });
  const forced = new Counter({
    name: 'entity_sync_backlog_forced_changes_total',
    help: 'Held changes applied by force by this instance, by trigger.',
    labelNames: ['trigger'] as const,
    registers,
  });
  // Series exist from the start at 0, so rate() and alerts see the first increment.
  for (const outcome of CHANGE_OUTCOMES) if (outcome !== 'REJECTED') changes.inc({ outcome }, 0);
  for (const type of CONFLICT_TYPES) conflicts.inc({ type }, 0);
  for (const trigger of TRIGGERS) {
    flushRuns.inc({ trigger }, 0);
    forced.inc({ trigger }, 0);
  }

  new Gauge({
    name: 'entity_sync_open_sockets',
    help: 'WebSocket connections open on this instance.',
    registers,
    collect() {
      this.set(opts.openSockets());
    },
  });
  const held = new Gauge({ name: 'entity_sync_held_changes', help: 'Changes waiting in the held backlog (all instances: read from the database).', registers });
  const oldest = new Gauge({
    name: 'entity_sync_held_change_oldest_age_seconds',
    help: 'Seconds the oldest held change has waited; 0 when the backlog is empty.',
    registers,
  });
  const requestSeconds = new Histogram({
    name: 'entity_sync_http_request_duration_seconds',
    help: 'HTTP requests served by this instance, from arrival until the response ended (event streams included), by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });

  const flushed = (trigger: FlushTrigger, forcedApplied: number) => {
    flushRuns.inc({ trigger });
    forced.inc({ trigger }, forcedApplied);
  };

  return {
    registry,
    observer: {
      submitted: (results) => {
        for (const r of results) changes.inc(r.outcome === 'REJECTED' ? { outcome: r.outcome, code: r.error?.code ?? 'UNKNOWN' } : { outcome: r.outcome });
      },
      flushed: (result) => flushed('mutation', result.forcedApplied),
    },
    published: (events) => {
      for (const e of events) if (e.type === 'conflictDetected') conflicts.inc({ type: e.conflict });
    },
    flushed,
    timeRequest: (req, res) => {
      const stop = requestSeconds.startTimer();
      res.once('close', () => {
        const path = (req.url ?? '/').split('?')[0]!;
        stop({ route: ROUTES.has(path) ? path : 'other', method: req.method ?? 'GET', status: String(res.statusCode) });
      });
    },
    respond: async (res) => {
      try {
        const stats = await backlogStats(opts.db);
        held.set(stats.held);
        oldest.set(stats.oldestAgeSeconds ?? 0);
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      } catch (error) {
        // The backlog is read at scrape time: when the database does not answer, the scrape
        // fails visibly rather than report stale figures (the cause goes to the log, not out).
        opts.onError?.(error);
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('metrics unavailable: the database does not answer\n');
      }
    },
  };
}
