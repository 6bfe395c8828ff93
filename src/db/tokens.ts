import { snakeCase, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { Role } from '../core/auth.js';

/**
 * API tokens. Only a SHA-256 of the secret is kept: tokens are 256 random bits, so a plain
 * hash is enough (a slow password hash buys nothing against that entropy and would cost every
 * request); a leaked table gives no usable token.
 */
export const apiTokens = snakeCase.table('api_tokens', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull(),
  secretHash: text().notNull().unique(),
  role: text().$type<Role>().notNull(),
  /** The only device the token may act as; null: any. */
  deviceId: text(),
  /** Dataset names the token may use; null: every dataset. */
  datasets: text().array(),
  createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  revokedAt: timestamp({ withTimezone: true }),
});
