import type { SyncEvent } from '../core/events.js';
import type { ChangeResult } from '../core/results.js';
import type { FlushResult } from '../sync/flush-backlog.js';
import type { FlushTrigger } from './metrics.js';

/** The part of a pino logger this needs (src/server/app.ts's Logger). */
interface InfoLogger {
  info: (...args: unknown[]) => void;
}

/** How often a socket refusal with one close code and reason is logged at most; the others are counted into the next line. */
const REFUSAL_LOG_EVERY_MS = 10_000;

/**
 * What happened, at `info`, in a line an operator can read off the log: a flush that forced
 * something, a batch that released held changes or had changes refused, a refused socket, a token
 * made or revoked. Rare on purpose: one line per flush run or batch, never one per change, and
 * only when something out of the ordinary happened (a run that forced nothing, a batch applied
 * in order, says nothing). Counts and ids, never payloads or secrets.
 */
export function activityLog(logger: InfoLogger, now: () => number = Date.now) {
  const refusals = new Map<string, { loggedAt: number; unlogged: number }>();
  return {
    /** One flush run: what it forced, the successors that released, what it refused. */
    flushed(trigger: FlushTrigger, result: Pick<FlushResult, 'forcedApplied' | 'releasedApplied' | 'refused' | 'oneByOne'>, ms?: number): void {
      const { forcedApplied: forced, releasedApplied: released, refused } = result;
      if (forced + refused === 0) return;
      logger.info(
        { event: 'backlogFlush', trigger, forced, released, refused, oneByOneBatches: result.oneByOne, ...(ms === undefined ? {} : { ms: Math.round(ms) }) },
        `backlog flush forced ${forced} held change(s), released ${released}, refused ${refused}`,
      );
    },
    /** One submitted batch; said only when it released held changes or had changes refused. */
    submitted(results: readonly ChangeResult[]): void {
      const released = sum(results, (r) => count(r.released, (s) => s.outcome === 'APPLIED'));
      const codes: Record<string, number> = {};
      for (const r of [...results, ...results.flatMap((x) => x.released)]) {
        if (r.outcome === 'REJECTED') codes[r.error?.code ?? 'UNKNOWN'] = (codes[r.error?.code ?? 'UNKNOWN'] ?? 0) + 1;
      }
      const rejected = sum(Object.values(codes), (n) => n);
      if (released + rejected === 0) return;
      const outcomes = { applied: 0, held: 0, duplicate: 0, rejected: 0 };
      for (const r of results) outcomes[r.outcome.toLowerCase() as keyof typeof outcomes] += 1;
      logger.info(
        { event: 'batch', changes: results.length, ...outcomes, released, ...(rejected ? { rejectedCodes: codes } : {}) },
        `a batch of ${results.length} change(s) released ${released} held change(s) and had ${rejected} refused`,
      );
    },
    /** A socket closed at connection_init (no token, a wrong or revoked one, no database); a burst is summed up. */
    socketRefused(refusal: { code: number; reason: string }): void {
      const key = `${refusal.code} ${refusal.reason}`;
      const seen = refusals.get(key);
      const at = now();
      if (seen && at - seen.loggedAt < REFUSAL_LOG_EVERY_MS) {
        seen.unlogged += 1;
        return;
      }
      refusals.set(key, { loggedAt: at, unlogged: 0 });
      const earlier = seen?.unlogged ?? 0;
      logger.info(
        { event: 'socketRefused', closeCode: refusal.code, closeReason: refusal.reason, ...(earlier ? { alsoRefusedSinceLastLine: earlier } : {}) },
        `socket refused: ${refusal.code} ${refusal.reason}`,
      );
    },
    /** An API token made through the API (`by`: the admin token that made it; null for anonymous access). */
    tokenCreated(token: { id: string; role: string }, by: string | null): void {
      logger.info({ event: 'tokenCreated', tokenId: token.id, role: token.role, by }, `API token ${token.id} created (${token.role})`);
    },
    /** A webhook delivery that spent its retry time: FAILED, shown in webhookDeliveries; said once, here. */
    webhookDeliveryFailed(f: { webhookId: string; deliveryId: number; eventId: string; attempts: number; error: string }): void {
      logger.info(
        { event: 'webhookDeliveryFailed', webhookId: f.webhookId, deliveryId: f.deliveryId, eventId: f.eventId, attempts: f.attempts, lastError: f.error.slice(0, 200) },
        `webhook ${f.webhookId}: delivery of event ${f.eventId} failed after ${f.attempts} attempt(s): ${f.error.slice(0, 200)}`,
      );
    },
    /** What this instance committed: revocations are said here, whoever asked (API or operator command). */
    published(events: readonly SyncEvent[]): void {
      for (const e of events) if (e.type === 'tokenRevoked') logger.info({ event: 'tokenRevoked', tokenId: e.tokenId }, `API token ${e.tokenId} revoked`);
    },
  };
}

export type ActivityLog = ReturnType<typeof activityLog>;

function count<T>(items: readonly T[], test: (item: T) => boolean): number {
  let n = 0;
  for (const item of items) if (test(item)) n += 1;
  return n;
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  let n = 0;
  for (const item of items) n += of(item);
  return n;
}
