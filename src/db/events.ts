import { bigserial, index, snakeCase, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Event messages too large for a NOTIFY payload, notified by id (see notify.ts). Each one stored
 * also prunes those older than an hour: by created_at, so that prune is an index range, not a
 * scan of the last hour's payloads on every large batch.
 */
export const eventPayloads = snakeCase.table(
  'event_payloads',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    payload: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('event_payloads_created_at_idx').on(t.createdAt)],
);
