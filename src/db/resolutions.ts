import { bigserial, index, integer, primaryKey, snakeCase, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { ResolutionKind } from '../core/review.js';
import type { ConflictType } from '../core/types.js';
import { datasets } from './datasets.js';
import { entities } from './entities.js';

/**
 * Every reviewer's verdict (DESIGN "Settling a conflict"): who, when, at which version, why, and
 * the version it wrote. Kept for good: it is the history's "resolved by". Ids are a sequence, so
 * an entity's resolutions page newest first by id.
 */
export const resolutions = snakeCase.table(
  'resolutions',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    entityId: uuid()
      .notNull()
      .references(() => entities.id),
    datasetId: uuid()
      .notNull()
      .references(() => datasets.id),
    kind: text().$type<ResolutionKind>().notNull(),
    /** The entity version the reviewer looked at (the stale guard held there). */
    atVersion: integer().notNull(),
    /** The version it wrote from the reviewer; null when it wrote none. */
    versionWritten: integer(),
    /** The conflict it cleared (the entity's strongest), null for a restore. */
    conflict: text().$type<ConflictType>(),
    /** The properties of the conflicts it cleared, sorted. */
    conflictingProperties: text().array().notNull().default([]),
    /** How many conflicting versions it marked resolved (the daily "conflicts resolved"). */
    conflictsResolved: integer().notNull().default(0),
    /**
     * The API token that made it; null for configured anonymous access. No foreign key: tokens are
     * revoked, never deleted, and the name below is what the history shows whatever becomes of it.
     */
    tokenId: uuid(),
    /** The token's name when it resolved ("anonymous" for configured anonymous access). */
    byName: text().notNull(),
    note: text(),
    createdAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('resolutions_entity_idx').on(t.entityId, t.id), index('resolutions_dataset_created_idx').on(t.datasetId, t.createdAt)],
);

/**
 * When each device last pulled a dataset (changesSince with its deviceId), for the devices view.
 * Written at most about once a minute per device (see sync/devices.ts).
 */
export const devicePulls = snakeCase.table(
  'device_pulls',
  {
    datasetName: text().notNull(),
    deviceId: text().notNull(),
    pulledAt: timestamp({ withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datasetName, t.deviceId] })],
);
