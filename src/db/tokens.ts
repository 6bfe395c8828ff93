import { bigserial, jsonb, snakeCase, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { Role } from '../core/auth.js';
import type { Subset } from '../core/subsets.js';

/**
 * API tokens. Only a SHA-256 of the secret is kept: tokens are 256 random bits, so a plain
 * hash is enough (a slow password hash buys nothing against that entropy and would cost every
 * request); a leaked table gives no usable token.
 */
export const apiTokens = snakeCase.table(
  'api_tokens',
  {
    id: uuid().primaryKey().defaultRandom(),
    /**
     * Creation order, as a number: the token lists (apiTokens, Entity.subsetTokens) are paged on it,
     * so a page reads only its rows from the index (created_at keeps microseconds a cursor's Date
     * would lose, and two tokens may share a millisecond).
     */
    seq: bigserial({ mode: 'number' }).notNull(),
    name: text().notNull(),
    secretHash: text().notNull().unique(),
    role: text().$type<Role>().notNull(),
    /** The only device the token may act as; null: any. */
    deviceId: text(),
    /** Dataset names the token may use; null: every dataset. */
    datasets: text().array(),
    /**
     * The token's subset of its datasets (core/subsets.ts). Null: the whole datasets, pulled from
     * their versions. Once set, the token pulls from its subset log (db/subsets.ts) for good, so an
     * empty list is "the whole datasets" for a token that had rules.
     */
    subset: jsonb().$type<Subset>(),
    /** When an admin last changed the subset: instances re-announce recent changes, as revocations. */
    subsetChangedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp({ withTimezone: true }),
  },
  (t) => [uniqueIndex('api_tokens_seq_idx').on(t.seq)],
);
