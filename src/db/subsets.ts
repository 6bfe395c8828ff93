import { bigint, boolean, customType, index, primaryKey, snakeCase, text, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';

/** Postgres xid8 (64-bit transaction id), read as text to keep its full range. */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/** What a row of a token's subset log tells its device. */
export type SubsetLogKind = 'VERSION' | 'ENTERED' | 'LEFT';

/**
 * Each subset token's share of its datasets as a log (DESIGN "Subsets"), written in the
 * transaction that causes it: a VERSION row for every version of an entity in the share (its seq
 * is the version's), a LEFT row when a version takes one out, and, when a token is made or its
 * rules change, ENTERED and LEFT rows for the entities that move (seq from the versions'
 * sequence, so positions of both tables share one order). A pull reads the rows of one token and
 * dataset after its cursor, below the pull horizon: it costs what the device's share costs.
 */
export const subsetLog = snakeCase.table(
  'subset_log',
  {
    tokenId: uuid().notNull(),
    datasetId: uuid().notNull(),
    /** Commit-order position with txid, like entity_versions (seq, txid). */
    seq: bigint({ mode: 'number' }).notNull(),
    txid: xid8().notNull().default(sql`pg_current_xact_id()`),
    entityId: uuid().notNull(),
    kind: text().$type<SubsetLogKind>().notNull(),
    /**
     * The version whose state the device gets (VERSION: the row's own; ENTERED: the entity's
     * then); for a LEFT by a reassignment the version the device held, null for a LEFT by an edit.
     */
    versionSeq: bigint({ mode: 'number' }),
    /**
     * A move written when the token went from its whole datasets to a subset: an ENTERED row's
     * version the device has already if it had pulled the dataset past it (it pulled every version
     * up to its cursor), and is handed it only if not. Other ENTERED rows are entities the device
     * never had. A LEFT row of that move names an entity the token could see until then: its
     * device may still change it (batch-store.ts loadSeen).
     */
    fromWhole: boolean().notNull().default(false),
  },
  (t) => [
    primaryKey({ name: 'subset_log_pk', columns: [t.tokenId, t.datasetId, t.txid, t.seq] }),
    // Whether a token could ever see an entity (a write from it is then accepted: no offline edit is lost to a reassignment).
    index('subset_log_entity_idx').on(t.tokenId, t.entityId),
  ],
);
