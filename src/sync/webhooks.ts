import { randomBytes } from 'node:crypto';
import { and, asc, count, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import { DomainError } from '../core/errors.js';
import { normalizeUuid } from '../core/validate.js';
import { checkWebhook, WEBHOOK_LIMITS, type WebhookDeliveryStatus, type WebhookInput } from '../core/webhooks.js';
import type { Db } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { webhookDeliveries, webhookEvents, webhooks } from '../db/webhooks.js';
import { LOCK, lockAll } from './batch-store.js';

/** Registering, listing and removing webhooks, and reading their deliveries (admins only, in src/graphql). */

export type WebhookRow = Omit<typeof webhooks.$inferSelect, 'secret'>;

const PUBLIC = { id: webhooks.id, url: webhooks.url, datasets: webhooks.datasets, events: webhooks.events, createdAt: webhooks.createdAt };

/** A Standard Webhooks secret: `whsec_` and 32 random bytes in base64 (what its libraries take). */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Registers a webhook; its secret is returned here, once. Events committed from now on are sent to it. */
export async function createWebhook(db: Db, input: WebhookInput): Promise<{ secret: string; webhook: WebhookRow }> {
  const checked = checkWebhook(input);
  if (!checked.ok) throw new DomainError(checked.error.code, checked.error.message);
  const spec = checked.spec;
  return db.transaction(async (tx) => {
    // One registration at a time, so the limit holds under concurrent calls.
    await lockAll(tx, [{ space: LOCK.webhooks, key: 'registry' }]);
    if (spec.datasets) {
      const found = new Set((await tx.select({ name: datasets.name }).from(datasets).where(inArray(datasets.name, spec.datasets))).map((r) => r.name));
      const missing = spec.datasets.filter((n) => !found.has(n));
      if (missing.length > 0) throw new DomainError('UNKNOWN_DATASET', `no dataset named ${missing.slice(0, 5).map((n) => `"${n}"`).join(', ')}`);
    }
    const [existing] = await tx.select({ n: count() }).from(webhooks);
    if ((existing?.n ?? 0) >= WEBHOOK_LIMITS.maxWebhooks) throw new DomainError('WEBHOOK_LIMIT', `${WEBHOOK_LIMITS.maxWebhooks} webhooks exist, the most the service accepts: delete one first`);
    const secret = newSecret();
    const [row] = await tx.insert(webhooks).values({ url: spec.url, datasets: spec.datasets, events: spec.events, secret }).returning(PUBLIC);
    return { secret, webhook: row! };
  });
}

export async function listWebhooks(db: Db): Promise<WebhookRow[]> {
  return db.select(PUBLIC).from(webhooks).orderBy(asc(webhooks.createdAt), asc(webhooks.id)).limit(WEBHOOK_LIMITS.maxWebhooks);
}

/** Removes a webhook and its deliveries: what it had not been sent is not sent. */
export async function deleteWebhook(db: Db, id: string): Promise<WebhookRow> {
  const uuid = normalizeUuid(id);
  const [row] = uuid ? await db.delete(webhooks).where(eq(webhooks.id, uuid)).returning(PUBLIC) : [];
  if (!row) throw new DomainError('WEBHOOK_NOT_FOUND', `no webhook has the id "${String(id).slice(0, 60)}"`);
  return row;
}

export interface DeliveryRow {
  id: number;
  eventId: string;
  eventType: string;
  dataset: string;
  entityKey: string;
  payload: Record<string, unknown>;
  status: WebhookDeliveryStatus;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  lastAttemptAt: Date | null;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
}

/** A webhook's deliveries, newest first: at most `limit` older than delivery `before` (its id). */
export async function deliveriesOf(db: Db, webhookId: string, opts: { before: number | null; limit: number; status?: WebhookDeliveryStatus | null }): Promise<DeliveryRow[]> {
  const uuid = normalizeUuid(webhookId);
  if (!uuid) return [];
  const d = webhookDeliveries;
  return db
    .select({
      id: d.id,
      eventId: webhookEvents.id,
      eventType: webhookEvents.type,
      dataset: webhookEvents.datasetName,
      entityKey: d.entityKey,
      payload: webhookEvents.payload,
      status: d.status,
      attempts: d.attempts,
      lastStatus: d.lastStatus,
      lastError: d.lastError,
      createdAt: d.createdAt,
      lastAttemptAt: d.lastAttemptAt,
      nextAttemptAt: d.nextAttemptAt,
      deliveredAt: d.deliveredAt,
    })
    .from(d)
    .innerJoin(webhookEvents, eq(webhookEvents.seq, d.eventSeq))
    .where(and(eq(d.webhookId, uuid), opts.before === null ? undefined : lt(d.id, opts.before), opts.status ? eq(d.status, opts.status) : undefined))
    .orderBy(desc(d.id))
    .limit(opts.limit);
}

/** How many of each webhook's deliveries are in each state, in the order of `webhookIds` (one statement for a page). */
export async function deliveryCounts(db: Db, webhookIds: readonly string[]): Promise<Record<WebhookDeliveryStatus, number>[]> {
  const rows =
    webhookIds.length === 0
      ? []
      : await db
          .select({ webhookId: webhookDeliveries.webhookId, status: webhookDeliveries.status, n: sql<number>`count(*)::int` })
          .from(webhookDeliveries)
          .where(inArray(webhookDeliveries.webhookId, [...webhookIds]))
          .groupBy(webhookDeliveries.webhookId, webhookDeliveries.status);
  return webhookIds.map((id) => {
    const out: Record<WebhookDeliveryStatus, number> = { PENDING: 0, DELIVERED: 0, FAILED: 0 };
    for (const r of rows) if (r.webhookId === id) out[r.status] = Number(r.n);
    return out;
  });
}
