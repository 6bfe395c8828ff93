import { GraphQLError } from 'graphql';
import { isUuid } from '../../core/validate.js';
import { fromPgTimestamp, isPgTimestamp } from '../../core/pg-time.js';
import { conflictingPropertiesOf } from '../../sync/conflict-facts.js';
import { datasetStats, type DatasetStats } from '../../sync/dataset-stats.js';
import { builder } from '../builder.js';
import { knownDataset } from '../known-dataset.js';
import { ENTITY_DATASET, reach, reached } from '../reach.js';
import { HeldChange } from './branches.js';
import { Dataset } from './datasets.js';
import { Entity, ENTITIES_PAGE, MAX_ENTITIES_PAGE } from './entities.js';
import { connectionPrice } from '../pricing.js';
import { ConflictTypeEnum } from './enums.js';

/** Read fields the dashboard (src/dashboard) needs beyond the sync API: at-a-glance counts, the conflict inbox, a held change's entity. */

const DatasetStatsRef = builder.objectRef<DatasetStats>('DatasetStats').implement({
  description: 'A dataset at a glance.',
  fields: (t) => ({
    entities: t.exposeInt('entities', { description: 'Entities not deleted.' }),
    hardConflicts: t.exposeInt('hardConflicts', { description: 'Entities with an unresolved HARD conflict (deleted ones included).' }),
    softConflicts: t.exposeInt('softConflicts', { description: 'Entities with an unresolved SOFT conflict (deleted ones included).' }),
    heldChanges: t.exposeInt('heldChanges', { description: 'Changes waiting in the backlog for their predecessor.' }),
    oldestHeldSince: t.expose('oldestHeldSince', { type: 'DateTime', nullable: true, description: 'When the oldest of them was held; null when none is.' }),
  }),
});

builder.drizzleObjectField(Dataset, 'stats', (t) =>
  t.field({
    type: DatasetStatsRef,
    nullable: true,
    description: 'Counts for reviewers and admins (null with FORBIDDEN for collectors).',
    authScopes: { reviewer: true },
    select: { columns: { id: true, name: true } },
    resolve: (d, _args, ctx) => datasetStats(ctx.db, d),
  }),
);

builder.drizzleObjectFields(Entity, (t) => ({
  conflictingProperties: t.field({
    type: ['String'],
    description: 'The properties of its unresolved conflicts, sorted: the union of conflictingProperties of the versions not yet resolved (empty for SOFT ones).',
    select: { extras: { conflictingProperties: conflictingPropertiesOf } },
    resolve: (e) => e.conflictingProperties,
  }),
  lastConflictAt: t.field({
    type: 'DateTime',
    nullable: true,
    description: 'When the newest of its unresolved conflicting versions was made; null without an open conflict.',
    select: { columns: { lastConflictAt: true } },
    resolve: (e) => (e.lastConflictAt === null ? null : fromPgTimestamp(e.lastConflictAt)),
  }),
}));

builder.drizzleObjectField(HeldChange, 'entity', (t) =>
  t.field({
    type: Entity,
    nullable: true,
    description: "Its entity; null while the create it waits for has not arrived, and when the id is another dataset's entity (seen from this dataset it does not exist).",
    ...reach('from-parent'),
    // Planned into the backlog's own query (one statement for the page), with the entity's dataset for the rule.
    select: (_args, _ctx, nested) => ({ columns: { datasetName: true }, with: { entity: nested(ENTITY_DATASET) } }),
    resolve: (h, _args, ctx) => reached(ctx, h.datasetName, h.entity),
  }),
);

/**
 * The inbox cursor is plugin-drizzle's (lastConflictAt as Postgres's text, to the microsecond, and
 * id) tuple; a tampered one would reach SQL. Refuse it clearly.
 */
function checkInboxCursor(cursor: string | null | undefined): void {
  if (cursor == null) return;
  const decoded = Buffer.from(cursor, 'base64').toString('utf8');
  let parts: unknown = null;
  try {
    parts = decoded.startsWith('DC:T:') ? JSON.parse(decoded.slice(5)) : null;
  } catch {
    // not JSON: refused below
  }
  const [at, id] = Array.isArray(parts) && parts.length === 2 ? parts : [undefined, undefined];
  const atOk = typeof at === 'string' && at.startsWith('S:') && isPgTimestamp(at.slice(2));
  if (!atOk || typeof id !== 'string' || !id.startsWith('S:') || !isUuid(id.slice(2))) {
    throw new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });
  }
}

builder.queryFields((t) => ({
  conflictInbox: t.drizzleConnection({
    type: 'entities',
    description: 'Entities of a dataset with an unresolved conflict, the newest conflict first (by lastConflictAt), deleted ones included; paged with first/after. UNKNOWN_DATASET for a dataset that does not exist.',
    args: {
      dataset: t.arg.string({ required: true, description: 'The dataset.' }),
      conflict: t.arg({ type: ConflictTypeEnum, required: false, description: 'Only SOFT or only HARD conflicts.' }),
    },
    complexity: connectionPrice(ENTITIES_PAGE, MAX_ENTITIES_PAGE),
    authScopes: (_root, args) => ({ $all: { reviewer: true, dataset: args.dataset } }),
    ...reach('authorized-root'),
    resolve: async (query, _root, args, ctx) => {
      checkInboxCursor(args.after);
      checkInboxCursor(args.before);
      const dataset = await knownDataset(ctx, args.dataset);
      return ctx.db.query.entities.findMany(
        query({
          where: { datasetId: dataset.id, conflict: args.conflict ? { eq: args.conflict } : { isNotNull: true } },
          // The stored column and its index (dataset, lastConflictAt desc, id desc) give the order,
          // so only the page's rows (and what is selected under them) are read.
          orderBy: { lastConflictAt: 'desc', id: 'desc' },
        }),
      );
    },
  }),
}));
