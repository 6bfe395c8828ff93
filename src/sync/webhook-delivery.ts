import { sql } from 'drizzle-orm';
import type { WebhookEvent } from '../core/webhooks.js';
import { DEFAULT_RETRY, nextAttemptDelay, webhookBody, type RetryPolicy } from '../core/webhooks.js';
import type { Db } from '../db/client.js';
import { LOCK, rowsOf } from './batch-store.js';

/**
 * Webhook deliveries from the outbox (DESIGN step 7, "Storage and scale"), on every instance at
 * once, outside every write transaction:
 * - dispatch: one instance at a time (a try-lock) turns outbox rows, in commit order, into one
 *   delivery per webhook that wants them;
 * - claim: due deliveries are leased with FOR UPDATE SKIP LOCKED, so each attempt is made by one
 *   instance; a delivery waits while an earlier one of its webhook and entity is pending (order
 *   per entity); at most `perWebhook` per webhook per claim, so one slow endpoint cannot take
 *   every slot;
 * - send (injected: src/server/webhook-sender.ts), then settle: DELIVERED, or retried after an
 *   exponential backoff with jitter, or FAILED once its retry time is spent. An instance killed
 *   mid-delivery leaves a lease that runs out, and another instance sends it again.
 */

export interface WebhookRequest {
  url: string;
  secret: string;
  /** The event's stable id (the `webhook-id` header): the same on every attempt and every webhook. */
  eventId: string;
  body: string;
}

export type SendResult = { ok: true; status: number } | { ok: false; status: number | null; error: string };
export type Sender = (request: WebhookRequest) => Promise<SendResult>;

interface Job extends WebhookRequest {
  id: number;
  webhookId: string;
  attempts: number;
  /** Milliseconds since its event committed, when claimed. */
  ageMs: number;
}

/** Events turned into deliveries per dispatch statement, at most. */
const DISPATCH_BATCH = 1000;
/**
 * Deliveries made per dispatch statement, at most (the first event's all, whatever their number):
 * with 100 webhooks, 1,000 events made 100,000 rows in one transaction of about 1.5 s, which held
 * back every pull's horizon and a shutdown that long.
 */
const DISPATCH_DELIVERIES = 5000;

/**
 * Dispatches the next outbox events (up to DISPATCH_BATCH, and DISPATCH_DELIVERIES deliveries),
 * unless another instance is dispatching now. A webhook gets the events committed after it was
 * made. Returns how many events it took, and whether more may be waiting.
 */
export async function dispatchEvents(db: Db): Promise<{ events: number; deliveries: number; more: boolean }> {
  return db.transaction(async (tx) => {
    const [lock] = rowsOf<{ got: boolean }>(await tx.execute(sql`select /* dispatchLock */ pg_try_advisory_xact_lock(${LOCK.webhooks}, hashtext('dispatch')) as got`));
    if (!lock?.got) return { events: 0, deliveries: 0, more: false };
    const [r] = rowsOf<{ events: number; deliveries: number; candidates: number }>(
      await tx.execute(sql`
        with candidates as (
          select seq, type, dataset_name, entity_key, created_at from webhook_events where not dispatched order by seq limit ${DISPATCH_BATCH}
        ), fanned as (
          -- How many deliveries the events up to each one make.
          select c.*, sum((select count(*) from webhooks w where c.type = any(w.events) and (w.datasets is null or c.dataset_name = any(w.datasets)) and w.created_at <= c.created_at))
                        over (order by c.seq) as upto
            from candidates c
        ), batch as (
          select seq, type, dataset_name, entity_key, created_at from fanned
           where upto <= ${DISPATCH_DELIVERIES} or seq = (select min(seq) from candidates)
        ), made as (
          insert into webhook_deliveries (webhook_id, event_seq, entity_key, created_at, next_attempt_at)
          select w.id, b.seq, b.entity_key, b.created_at, now() from batch b
            join webhooks w on b.type = any(w.events) and (w.datasets is null or b.dataset_name = any(w.datasets)) and w.created_at <= b.created_at
           order by b.seq, w.id
          returning 1
        ), marked as (
          update webhook_events e set dispatched = true from batch b where e.seq = b.seq returning 1
        )
        select /* dispatchEvents */ (select count(*) from marked)::int as events, (select count(*) from made)::int as deliveries,
               (select count(*) from candidates)::int as candidates`),
    );
    const events = Number(r?.events ?? 0);
    return { events, deliveries: Number(r?.deliveries ?? 0), more: events > 0 && (events < Number(r?.candidates ?? 0) || events === DISPATCH_BATCH) };
  });
}

/** Refreshes the planner's statistics of `webhook_deliveries`; returns the rows it now counts. */
async function analyzeDeliveries(db: Db): Promise<number> {
  await db.execute(sql`analyze webhook_deliveries`);
  const [r] = rowsOf<{ n: number }>(await db.execute(sql`select /* deliveriesAnalyzed */ greatest(reltuples, 0)::float8 as n from pg_class where oid = 'webhook_deliveries'::regclass`));
  return Number(r?.n ?? 0);
}

/** Leases up to `n` due deliveries for this instance (none of the webhooks in `busy`). */
async function claim(db: Db, n: number, opts: { perWebhook: number; leaseMs: number; busy: readonly string[] }): Promise<Job[]> {
  if (n <= 0) return [];
  const rows = rowsOf<Record<string, unknown>>(
    await db.execute(sql`
      with due as (
        select d.id, d.webhook_id, d.event_seq from webhook_deliveries d
         where d.status = 'PENDING' and d.next_attempt_at <= now() and (d.lease_until is null or d.lease_until < now())
           and d.webhook_id <> all(${sql.param([...opts.busy])}::uuid[])
           and not exists (select 1 from webhook_deliveries p
                            where p.webhook_id = d.webhook_id and p.entity_key = d.entity_key and p.status = 'PENDING' and p.event_seq < d.event_seq)
         order by d.event_seq limit ${n * 4}
      ), candidates as (
        -- Numbered per webhook after the limit: a webhook's rows among the earliest are its earliest,
        -- so the number is the same as over all its due rows, without numbering all of them.
        select id, row_number() over (partition by webhook_id order by event_seq) as n from due
      ), picked as (
        -- The lease is checked again on the row it locks: one another instance leased meanwhile is passed over.
        select d.id from webhook_deliveries d
         where d.id in (select id from candidates where n <= ${opts.perWebhook}) and d.status = 'PENDING' and (d.lease_until is null or d.lease_until < now())
         order by d.event_seq limit ${n}
         for update skip locked
      )
      update webhook_deliveries d /* claimDeliveries */
         set lease_until = now() + make_interval(secs => ${opts.leaseMs / 1000}), attempts = d.attempts + 1, last_attempt_at = now()
        from picked, webhooks w, webhook_events e
       where d.id = picked.id and w.id = d.webhook_id and e.seq = d.event_seq
      returning d.id, d.webhook_id, d.attempts, w.url, w.secret, e.id as event_id, e.payload, e.created_at::text as event_at,
                (extract(epoch from now() - d.created_at) * 1000)::float8 as age_ms`),
  );
  return rows.map((r) => {
    const payload = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as WebhookEvent;
    return {
      id: Number(r.id),
      webhookId: r.webhook_id as string,
      attempts: Number(r.attempts),
      ageMs: Number(r.age_ms),
      url: r.url as string,
      secret: r.secret as string,
      eventId: r.event_id as string,
      body: webhookBody(payload, new Date(r.event_at as string)),
    };
  });
}

/** Records an attempt's outcome, unless the lease ran out and another attempt was claimed since (`attempts` fences it). */
async function settle(db: Db, job: Job, result: SendResult, retry: RetryPolicy, elapsedMs: number, random: number): Promise<'FAILED' | null> {
  if (result.ok) {
    await db.execute(sql`
      update webhook_deliveries /* deliveryDone */ set status = 'DELIVERED', delivered_at = now(), lease_until = null, last_status = ${result.status}, last_error = null
       where id = ${job.id} and attempts = ${job.attempts} and status = 'PENDING'`);
    return null;
  }
  const delay = nextAttemptDelay(job.attempts, job.ageMs + elapsedMs, retry, random);
  const settled = await db.execute(sql`
    update webhook_deliveries /* deliveryFailed */
       set status = ${delay === null ? 'FAILED' : 'PENDING'}, next_attempt_at = now() + make_interval(secs => ${(delay ?? 0) / 1000}),
           lease_until = null, last_status = ${result.status}, last_error = ${result.error.slice(0, 500)}
     where id = ${job.id} and attempts = ${job.attempts} and status = 'PENDING'
    returning status`);
  // Only the attempt that made it FAILED says so (a fenced-off late attempt updates nothing).
  return rowsOf<{ status: string }>(settled).some((r) => r.status === 'FAILED') ? 'FAILED' : null;
}

/** Deliveries settled longer ago than `retentionMs`, and dispatched events no delivery refers to any more. */
export async function pruneDeliveries(db: Db, retentionMs: number): Promise<void> {
  const secs = retentionMs / 1000;
  await db.execute(sql`
    delete from webhook_deliveries /* pruneDeliveries */ where id in (
      select id from webhook_deliveries where status <> 'PENDING' and created_at < now() - make_interval(secs => ${secs}) limit 10000)`);
  await db.execute(sql`
    delete from webhook_events e /* pruneWebhookEvents */ where e.seq in (
      select seq from webhook_events where dispatched and created_at < now() - make_interval(secs => ${secs}) limit 10000)
      and not exists (select 1 from webhook_deliveries d where d.event_seq = e.seq)`);
}

export interface WebhookWorkerOptions {
  send: Sender;
  /** Requests in flight on this instance at most. */
  concurrency?: number;
  /** Requests in flight to one webhook on this instance at most. */
  perWebhook?: number;
  /** How often to look for work when not woken (events of other instances, retries). */
  pollMs?: number;
  /** How long a claimed delivery is this instance's: longer than a request may take. */
  leaseMs: number;
  retry?: RetryPolicy;
  /** How long settled deliveries are kept (and shown). */
  retentionMs?: number;
  onError: (error: unknown) => void;
  /** A delivery that spent its retry time and is now FAILED (once per delivery). */
  onFailed?: (failed: { webhookId: string; deliveryId: number; eventId: string; attempts: number; error: string }) => void;
  random?: () => number;
  /** Deliveries this instance dispatches before it analyzes their table (and at least as many as the table held then). */
  analyzeAfter?: number;
}

export interface WebhookWorker {
  /** Look for work now (this instance just committed events). */
  wake(): void;
  /** Stops claiming; resolves once the requests in flight are settled. */
  stop(): Promise<void>;
}

export function startWebhookWorker(db: Db, opts: WebhookWorkerOptions): WebhookWorker {
  const concurrency = opts.concurrency ?? 16;
  const perWebhook = opts.perWebhook ?? 4;
  const retry = opts.retry ?? DEFAULT_RETRY;
  const random = opts.random ?? Math.random;
  const inFlight = new Map<number, Promise<void>>();
  const perHook = new Map<string, number>();
  let stopped = false;
  let running: Promise<void> | null = null;
  let again = false;
  let lastPrune = 0;
  let failing = false;
  const analyzeAfter = opts.analyzeAfter ?? 10_000;
  let madeSinceAnalyze = 0;
  let rowsAtAnalyze = 0;

  const run = async (job: Job) => {
    const started = Date.now();
    let result: SendResult;
    try {
      result = await opts.send(job);
    } catch (error) {
      result = { ok: false, status: null, error: error instanceof Error ? error.message : String(error) };
    }
    const settled = await settle(db, job, result, retry, Date.now() - started, random()).catch((error: unknown) => {
      opts.onError(error);
      return null;
    });
    if (settled === 'FAILED' && !result.ok) opts.onFailed?.({ webhookId: job.webhookId, deliveryId: job.id, eventId: job.eventId, attempts: job.attempts, error: result.error });
  };

  const tick = async () => {
    if (Date.now() - lastPrune > 600_000) {
      lastPrune = Date.now();
      await pruneDeliveries(db, opts.retentionMs ?? 7 * 24 * 3600_000).catch(opts.onError);
    }
    // A few dispatches, then deliveries: a long outbox (an endpoint back after a day) is worked
    // off tick after tick while deliveries go on, not all of it first.
    let more = true;
    for (let i = 0; i < 8 && more && !stopped; i++) {
      const made = await dispatchEvents(db);
      more = made.more;
      madeSinceAnalyze += made.deliveries;
    }
    if (more) again = true;
    if (stopped) return;
    // The claim's plan rests on the table's statistics. Planned on those of a nearly empty table
    // after a burst (a million deliveries), one claim ran for 160 s, and deliveries stalled until
    // autovacuum came by; analyzed, it takes under a millisecond. So the instance that made them
    // analyzes once the table has about doubled since it last did.
    if (madeSinceAnalyze >= Math.max(analyzeAfter, rowsAtAnalyze)) {
      madeSinceAnalyze = 0;
      rowsAtAnalyze = await analyzeDeliveries(db);
    }
    const busy = [...perHook].filter(([, n]) => n >= perWebhook).map(([id]) => id);
    const jobs = await claim(db, concurrency - inFlight.size, { perWebhook, leaseMs: opts.leaseMs, busy });
    for (const job of jobs) {
      perHook.set(job.webhookId, (perHook.get(job.webhookId) ?? 0) + 1);
      const done = run(job).finally(() => {
        inFlight.delete(job.id);
        const left = (perHook.get(job.webhookId) ?? 1) - 1;
        if (left > 0) perHook.set(job.webhookId, left);
        else perHook.delete(job.webhookId);
        // A settled delivery may unblock the next of its entity, and frees a slot.
        wake();
      });
      inFlight.set(job.id, done);
    }
  };

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = tick()
      .then(
        () => {
          failing = false;
        },
        (error: unknown) => {
          // A database out of reach fails every poll: said once, until a poll succeeds again.
          if (!failing) opts.onError(error);
          failing = true;
        },
      )
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          wake();
        }
      });
  }

  const timer = setInterval(wake, opts.pollMs ?? 1000);
  timer.unref();
  wake();
  return {
    wake,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
      await Promise.all(inFlight.values());
    },
  };
}
