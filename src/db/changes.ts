import { sql } from 'drizzle-orm';
import { bigserial, boolean, index, integer, jsonb, primaryKey, snakeCase, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { ChangeOutcome, ErrorCode, ValidChange } from '../core/types.js';

/**
 * Every change a client sent, with its outcome: written before anything else so nothing a
 * client sent is silently dropped. `changeId` is the client's idempotency key, kept as text so
 * malformed ids are recorded too. A reused id with another payload is recorded as a
 * non-original row (the unique index only covers originals).
 */
export const changes = snakeCase.table(
  'changes',
  {
    receiptId: bigserial({ mode: 'number' }).primaryKey(),
    changeId: text().notNull(),
    original: boolean().notNull().default(true),
    deviceId: text(),
    datasetName: text(),
    entityId: uuid(),
    action: text(),
    payload: jsonb().$type<Record<string, unknown>>().notNull(),
    outcome: text().$type<ChangeOutcome>().notNull(),
    errorCode: text().$type<ErrorCode>(),
    errorMessage: text(),
    /** Server version this change made, once applied. */
    version: integer(),
    receivedAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
    processedAt: timestamp({ withTimezone: true }),
  },
  (t) => [
    uniqueIndex('changes_change_id_uq').on(t.changeId).where(sql`${t.original}`),
    index('changes_entity_idx').on(t.entityId),
    // The devices of a dataset and each one's last change received (sync/devices.ts).
    index('changes_dataset_device_idx').on(t.datasetName, t.deviceId, t.receivedAt),
    // What the change log refused, newest first, per dataset and per device (rejectedChanges). Partial: only refusals.
    index('changes_rejected_idx').on(t.datasetName, t.receiptId).where(sql`${t.outcome} = 'REJECTED'`),
    index('changes_rejected_device_idx').on(t.datasetName, t.deviceId, t.receiptId).where(sql`${t.outcome} = 'REJECTED'`),
  ],
);

/** Changes whose predecessor in their branch has not been applied yet. */
export const heldChanges = snakeCase.table(
  'held_changes',
  {
    changeId: text().primaryKey(),
    entityId: uuid().notNull(),
    datasetName: text().notNull(),
    deviceId: text(),
    branchId: uuid().notNull(),
    trunkVersion: integer(),
    baseVersion: integer().notNull(),
    /** The client baseVersion of the predecessor this change waits for. */
    waitsFor: integer().notNull(),
    /** The validated change, replayed when it is released or forced. */
    change: jsonb().$type<ValidChange>().notNull(),
    // Read as Postgres's text, microseconds kept: a backlog page's cursor carries it exactly (a Date
    // would keep milliseconds, and a batch's held changes are a microsecond apart, in input order).
    heldSince: timestamp({ withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  (t) => [
    // One held change per position of a run, a run being seen from its dataset (a change naming an
    // entity of another dataset keeps a run of its own there); branch_id first for lookups by run.
    uniqueIndex('held_changes_run_position_uq').on(t.branchId, t.baseVersion, t.datasetName),
    // The flush pages through the backlog by (held_since, change_id): a range of this index, not a sort of all that is held.
    index('held_changes_due_idx').on(t.heldSince, t.changeId),
    index('held_changes_entity_idx').on(t.entityId),
    // Held changes per dataset and device (the devices view, the daily backlog).
    index('held_changes_dataset_device_idx').on(t.datasetName, t.deviceId),
  ],
);

/**
 * The condition `original`, written as the bare column rather than `original = $1` so the
 * planner can match the partial unique index changes_change_id_uq even with generic plans.
 */
export const isOriginal = sql`${changes.original}`;

/**
 * Client-local ids: (dataset, deviceId, localId) -> the entity UUID the server minted for it.
 * Scoped by dataset, so no token of one dataset can learn or take the ids of another.
 */
export const localIds = snakeCase.table(
  'local_ids',
  {
    deviceId: text().notNull(),
    localId: text().notNull(),
    entityId: uuid().notNull().unique(),
    datasetName: text().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datasetName, t.deviceId, t.localId] })],
);
