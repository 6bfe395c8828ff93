import { snakeCase, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** A named list of entities; only declared property names may be written. */
export const datasets = snakeCase.table('datasets', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull().unique(),
  properties: text().array().notNull().default([]),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
});
