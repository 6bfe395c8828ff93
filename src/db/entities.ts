import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  customType,
  boolean,
  index,
  integer,
  jsonb,
  snakeCase,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import type { PropertyDiff } from '../core/diff.js';
import type { ConflictType, Operation, PropertyValues, VersionSource } from '../core/types.js';
import { datasets } from './datasets.js';

/** Postgres xid8 (64-bit transaction id), read as text to keep its full range. */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/** Current state of one record. `version` is the newest row in entity_versions. */
export const entities = snakeCase.table(
  'entities',
  {
    id: uuid().primaryKey(),
    datasetId: uuid()
      .notNull()
      .references(() => datasets.id),
    label: text().notNull(),
    data: jsonb().$type<PropertyValues>().notNull(),
    version: integer().notNull(),
    /** Strongest unresolved conflict: HARD wins over SOFT until a reviewer resolves it. */
    conflict: text().$type<ConflictType>(),
    deleted: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    /**
     * While it is in conflict: when the newest of its unresolved conflicting versions was made
     * (that version's created_at, to the microsecond: read as text); null without a conflict.
     * Written with `conflict` (a conflicting version sets it, a resolution clears it), so the
     * conflict inbox is ordered by an index and a page reads only its rows.
     */
    lastConflictAt: timestamp({ withTimezone: true, mode: 'string' }),
  },
  (t) => [
    index('entities_dataset_idx').on(t.datasetId, t.id),
    index('entities_conflict_idx').on(t.datasetId).where(sql`${t.conflict} is not null`),
    index('entities_conflict_inbox_idx').on(t.datasetId, t.lastConflictAt.desc().nullsFirst(), t.id.desc().nullsFirst()).where(sql`${t.conflict} is not null`),
  ],
);

/** One row of an entity's history; version 1 is the create. Holds the full state after it. */
export const entityVersions = snakeCase.table(
  'entity_versions',
  {
    /** Commit-order sequence used by pulls. */
    seq: bigserial({ mode: 'number' }).primaryKey(),
    entityId: uuid()
      .notNull()
      .references(() => entities.id),
    /**
     * The entity's dataset, copied onto each version so that a pull reads one dataset's versions
     * from one index range instead of every dataset's versions since its cursor.
     */
    datasetId: uuid()
      .notNull()
      .references(() => datasets.id),
    version: integer().notNull(),
    /** The server version this change was applied against (null for the create). */
    appliedOn: integer(),
    /** The client's baseVersion: the version it made the change on, in its own view (branchBaseVersion when in a run). */
    baseVersion: integer(),
    action: text().$type<'CREATE' | 'UPDATE' | 'DELETE'>().notNull(),
    label: text().notNull(),
    data: jsonb().$type<PropertyValues>().notNull(),
    /** What the change itself set (property -> value); `label` appears when it set the label. */
    changed: jsonb().$type<PropertyValues>().notNull(),
    /** The operations the change applied (`data` not included). */
    operations: jsonb().$type<Operation[]>().notNull().default([]),
    deleted: boolean().notNull().default(false),
    conflict: text().$type<ConflictType>(),
    conflictingProperties: text().array().notNull().default([]),
    resolved: boolean().notNull().default(false),
    source: text().$type<VersionSource>().notNull(),
    branchId: uuid(),
    trunkVersion: integer(),
    /** Properties (and label) that differ from the version it was applied against. */
    serverDiff: jsonb().$type<PropertyDiff[]>().notNull().default([]),
    /** What the author changed relative to what the author saw; null when no single version equals that. */
    baseDiff: jsonb().$type<PropertyDiff[]>(),
    authorViewUnavailable: text(),
    changeId: text().notNull(),
    deviceId: text(),
    /** The reviewer's resolution that resolved this version's conflict, wrote it or restored the entity with it (resolutions.id). */
    resolutionId: bigint({ mode: 'number' }),
    /**
     * The writing transaction's id: pulls hand out only rows older than the oldest transaction
     * still running, so a slow transaction that commits late is never skipped.
     */
    txid: xid8().notNull().default(sql`pg_current_xact_id()`),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('entity_versions_dataset_pull_idx').on(t.datasetId, t.txid, t.seq),
    unique('entity_versions_entity_version_uq').on(t.entityId, t.version),
    index('entity_versions_branch_idx').on(t.branchId, t.baseVersion),
    // The daily series of the reviewer's dashboard (sync/activity.ts): conflicts opened, and
    // versions that left the backlog, by day. Partial, so the common version costs no entry.
    index('entity_versions_activity_idx')
      .on(t.createdAt)
      .where(sql`${t.conflict} is not null or ${t.source} in ('RELEASED', 'FORCED')`),
  ],
);
