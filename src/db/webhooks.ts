import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, index, integer, jsonb, snakeCase, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { WebhookDeliveryStatus, WebhookEventType } from '../core/webhooks.js';

/**
 * Endpoints outside the service that are sent the events of chosen datasets (DESIGN "webhook").
 * The secret signs every request (Standard Webhooks); it is kept because signing needs it, and
 * shown once, when the webhook is made.
 */
export const webhooks = snakeCase.table('webhooks', {
  id: uuid().primaryKey().defaultRandom(),
  url: text().notNull(),
  /** Dataset names whose events it is sent; null: every dataset. */
  datasets: text().array(),
  events: text().$type<WebhookEventType>().array().notNull(),
  secret: text().notNull(),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
});

/**
 * The outbox: one row per event some webhook wants, written in the transaction of the change
 * that caused it (a rolled-back change leaves none). `seq` is commit order per entity (writers of
 * one entity hold its lock); `id` is the stable event id receivers deduplicate by. A dispatcher
 * turns undispatched rows into deliveries, one per matching webhook, outside the write path.
 */
export const webhookEvents = snakeCase.table(
  'webhook_events',
  {
    seq: bigserial({ mode: 'number' }).primaryKey(),
    id: uuid().notNull().unique().defaultRandom(),
    type: text().$type<WebhookEventType>().notNull(),
    datasetName: text().notNull(),
    /** What delivery order is kept per: the entity's id, or `change:<id>` for a refusal without one. */
    entityKey: text().notNull(),
    /** The event as the use-case returned it (ids, versions, codes). */
    payload: jsonb().$type<Record<string, unknown>>().notNull(),
    dispatched: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('webhook_events_undispatched_idx').on(t.seq).where(sql`not ${t.dispatched}`), index('webhook_events_created_at_idx').on(t.createdAt)],
);

/**
 * One event to one webhook, with its attempts. PENDING until its endpoint answers 2xx
 * (DELIVERED) or its retry time runs out (FAILED). A delivery is taken by one instance at a time:
 * `leaseUntil` (set when claimed with SKIP LOCKED) keeps others off it while it is in flight, and
 * lets another instance retry it after an instance died mid-delivery. `attempts` fences a late
 * answer: an instance whose lease ran out cannot settle a delivery someone else claimed since.
 */
export const webhookDeliveries = snakeCase.table(
  'webhook_deliveries',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    webhookId: uuid()
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    eventSeq: bigint({ mode: 'number' })
      .notNull()
      .references(() => webhookEvents.seq, { onDelete: 'cascade' }),
    entityKey: text().notNull(),
    status: text().$type<WebhookDeliveryStatus>().notNull().default('PENDING'),
    attempts: integer().notNull().default(0),
    nextAttemptAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    leaseUntil: timestamp({ withTimezone: true }),
    lastAttemptAt: timestamp({ withTimezone: true }),
    /** The HTTP status of the last answer; null when there was none (refused, timed out). */
    lastStatus: integer(),
    lastError: text(),
    deliveredAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'PENDING'`),
    index('webhook_deliveries_order_idx').on(t.webhookId, t.entityKey, t.eventSeq).where(sql`${t.status} = 'PENDING'`),
    index('webhook_deliveries_webhook_idx').on(t.webhookId, t.id),
    index('webhook_deliveries_event_idx').on(t.eventSeq),
  ],
);
