import { bigserial, snakeCase, text, timestamp } from 'drizzle-orm/pg-core';

/** Event messages too large for a NOTIFY payload, notified by id (see notify.ts). */
export const eventPayloads = snakeCase.table('event_payloads', {
  id: bigserial({ mode: 'number' }).primaryKey(),
  payload: text().notNull(),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
});
