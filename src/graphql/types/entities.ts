import type { PropertyDiff } from '../../core/diff.js';
import { GraphQLError } from 'graphql';
import { isUuid, normalizeUuid } from '../../core/validate.js';
import { maySeeRunOf } from '../../core/auth.js';
import { builder } from '../builder.js';
import { knownDataset } from '../known-dataset.js';
import { PropertyFilterInput, recordFilters } from '../record-filters.js';
import { ENTITY_DATASET, reach, reachedOrRefused } from '../reach.js';
import { inSubsetWhere } from '../subset-filter.js';
import { connectionPrice, IN_ROW } from '../pricing.js';
import { OperationRef } from './operations.js';
import { ChangeActionEnum, ConflictTypeEnum, VersionSourceEnum } from './enums.js';

/**
 * Entity cursors are the plugin's encoding of an id ("DC:S:<uuid>"). A tampered one would reach
 * Postgres as an invalid uuid and surface as a masked error; refuse it with a clear one.
 */
function checkCursor(cursor: string | null | undefined): void {
  if (cursor == null) return;
  const decoded = Buffer.from(cursor, 'base64').toString('utf8');
  if (!decoded.startsWith('DC:S:') || !isUuid(decoded.slice(5))) {
    throw new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });
  }
}

/** The conflicts list is paged like the inbox: one page, and what is selected under it, is bounded. */
const CONFLICTS_PAGE = 50;
const MAX_CONFLICTS_PAGE = 500;
/** plugin-drizzle's default page and builder.ts's maxConnectionSize. */
export const ENTITIES_PAGE = 20;
export const MAX_ENTITIES_PAGE = 500;


const PropertyDiffRef = builder.objectRef<PropertyDiff>('PropertyDiff').implement({
  description: 'One property (or `label`) with its value before and after.',
  fields: (t) => ({
    property: t.exposeString('property', { description: 'The property name, or `label`.' }),
    old: t.expose('old', { type: 'JSON', nullable: true, description: 'Its value before; null when it had none.' }),
    new: t.expose('new', { type: 'JSON', nullable: true, description: 'Its value after; null when it was removed.' }),
  }),
});

const VERSIONS_PAGE = 100;
const MAX_VERSIONS_PAGE = 1000;
const versionsPage = (limit: number | null | undefined) => Math.min(Math.max(limit ?? VERSIONS_PAGE, 1), MAX_VERSIONS_PAGE);

export const Entity = builder.drizzleObject('entities', {
  name: 'Entity',
  description: 'One record: its current label, properties, server version and conflict state.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Its UUID.' }),
    dataset: t.relation('dataset', { description: 'The dataset it belongs to.' }),
    label: t.exposeString('label', { description: 'Its current label, for people.' }),
    data: t.expose('data', { type: 'JSONObject', description: 'Property name to value.' }),
    version: t.exposeInt('version', { description: 'The current server version.' }),
    conflict: t.expose('conflict', { type: ConflictTypeEnum, nullable: true, description: 'The strongest unresolved conflict.' }),
    deleted: t.exposeBoolean('deleted', { description: 'A DELETE was applied (its history stays).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the server made its version 1.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When its current version (or its conflict state) was written.' }),
    versions: t.relation('versions', {
      description: `The history, oldest first: at most \`limit\` versions (1-${MAX_VERSIONS_PAGE}, default ${VERSIONS_PAGE}) after version \`after\`.`,
      args: {
        after: t.arg.int({ description: 'Only versions after this one (default 0: from the first).' }),
        limit: t.arg.int({ description: `At most this many (1-${MAX_VERSIONS_PAGE}, default ${VERSIONS_PAGE}).` }),
      },
      // A long history is paged, so a query's work is bounded by what it asks for.
      // A token with a subset sees only the states that were in its share.
      query: (args, ctx) => ({ where: { version: { gt: args.after ?? 0 }, ...inSubsetWhere(ctx) }, orderBy: { version: 'asc' }, limit: versionsPage(args.limit) }),
      complexity: (args) => ({ field: 1, multiplier: versionsPage(args.limit) }),
      ...reach('same-entity'),
    }),
  }),
});

export const EntityVersion = builder.drizzleObject('entityVersions', {
  name: 'EntityVersion',
  description: 'One row of an entity history: the full state after a change and what the change set.',
  fields: (t) => ({
    version: t.exposeInt('version', { description: 'Its number: 1 for the create, then one more per applied change.' }),
    appliedOn: t.exposeInt('appliedOn', { nullable: true, description: 'The server version this change was applied against (null for the create).' }),
    action: t.expose('action', { type: ChangeActionEnum, description: 'What the change did.' }),
    label: t.exposeString('label', { description: 'The label after this version.' }),
    data: t.expose('data', { type: 'JSONObject', description: 'Full state after this version.' }),
    changed: t.expose('changed', { type: 'JSONObject', description: 'What the change itself set, with resulting values; `label` when it set the label.' }),
    operations: t.field({ type: [OperationRef], description: 'The operations it applied, after `changed` values from plain data.', complexity: IN_ROW, select: { columns: { operations: true } }, resolve: (v) => v.operations }),
    deleted: t.exposeBoolean('deleted', { description: 'The entity was deleted at this version.' }),
    conflict: t.expose('conflict', { type: ConflictTypeEnum, nullable: true, description: 'Whether this change was applied on top of versions its author had not seen, and how: SOFT, HARD or null.' }),
    conflictingProperties: t.exposeStringList('conflictingProperties', { description: 'For HARD: the properties both sides set.' }),
    resolved: t.exposeBoolean('resolved', { description: 'A reviewer resolved the conflict of this version.' }),
    source: t.expose('source', { type: VersionSourceEnum, description: 'How the change came to be applied: online, in run order, released, forced, or written by a reviewer.' }),
    branchId: t.id({
      nullable: true,
      description: "The offline run it came from: for reviewers, admins and the run's own device (null for another device's collector, so no device learns another's run ids).",
      select: { columns: { branchId: true, deviceId: true } },
      resolve: (v, _args, ctx) => (v.branchId && maySeeRunOf(ctx.principal, v.deviceId) ? v.branchId : null),
    }),
    trunkVersion: t.exposeInt('trunkVersion', { nullable: true, description: 'The last server version its run had seen when it began (null: the run began with an offline create).' }),
    baseVersion: t.exposeInt('baseVersion', { nullable: true, description: "The version the author made the change on, counted in the author's view." }),
    branchBaseVersion: t.int({
      nullable: true,
      description: 'baseVersion when the change belongs to an offline run: how the next change of the run finds this one.',
      select: { columns: { branchId: true, baseVersion: true } },
      resolve: (v) => (v.branchId ? v.baseVersion : null),
    }),
    serverDiff: t.field({ type: [PropertyDiffRef], description: 'What differs from the version it was applied against.', complexity: IN_ROW, select: { columns: { serverDiff: true } }, resolve: (v) => v.serverDiff }),
    baseDiff: t.field({
      type: [PropertyDiffRef],
      nullable: true,
      description: "What the author changed relative to what the author saw; null when no single server version equals that (see authorViewUnavailable).",
      complexity: IN_ROW,
      select: { columns: { baseDiff: true } },
      resolve: (v) => v.baseDiff,
    }),
    authorViewUnavailable: t.exposeString('authorViewUnavailable', { nullable: true, description: 'Why baseDiff is null.' }),
    changeId: t.exposeString('changeId', { description: 'The id of the change that made it.' }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: 'The device that made the change, if it said.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the server applied it.' }),
    entityId: t.exposeID('entityId', { description: "The entity's id, without loading the entity (what a pull needs)." }),
    entity: t.field({
      type: Entity,
      nullable: true,
      description: 'Its entity as it is now; null for a token whose subset it has left since. Reached with the version (the rule was applied to reach the version), and checked again.',
      ...reach('same-entity'),
      select: (_args, _ctx, nested) => ({ with: { entity: nested(ENTITY_DATASET) } }),
      resolve: (v, _args, ctx) => reachedOrRefused(ctx, v.entity),
    }),
  }),
});

builder.queryFields((t) => ({
  entity: t.drizzleField({
    type: 'entities',
    nullable: true,
    description: 'The entity with this id; null when there is none. Reviewers and admins.',
    args: { id: t.arg.id({ required: true, description: 'Its UUID.' }) },
    authScopes: (_root, args) => ({ $all: { reviewer: true, entity: String(args.id) } }),
    ...reach('authorized-root'),
    resolve: (query, _root, args, ctx) =>
      normalizeUuid(args.id) ? ctx.db.query.entities.findFirst(query({ where: { id: normalizeUuid(args.id)! } })) : null,
  }),
  entities: t.drizzleConnection({
    type: 'entities',
    description: 'The records of a dataset, by id, with cursor pagination: searched by label, filtered by a property\'s value and by conflict state. UNKNOWN_DATASET for a dataset that does not exist.',
    args: {
      dataset: t.arg.string({ required: true, description: 'The dataset.' }),
      conflict: t.arg({ type: ConflictTypeEnum, required: false, description: 'Only entities with this unresolved conflict.' }),
      inConflict: t.arg.boolean({ required: false, description: 'true: only entities with an unresolved conflict (SOFT or HARD); false: only those without.' }),
      includeDeleted: t.arg.boolean({ required: false, defaultValue: false, description: 'Deleted entities too.' }),
      search: t.arg.string({ required: false, description: 'Only entities whose label contains this text, in any letter case.' }),
      property: t.arg({ type: PropertyFilterInput, required: false, description: "Only entities whose property has this value." }),
    },
    complexity: connectionPrice(ENTITIES_PAGE, MAX_ENTITIES_PAGE),
    authScopes: (_root, args) => ({ $all: { reviewer: true, dataset: args.dataset } }),
    ...reach('authorized-root'),
    resolve: async (query, _root, args, ctx) => {
      checkCursor(args.after);
      checkCursor(args.before);
      const where = recordFilters(await knownDataset(ctx, args.dataset), args, ctx.limits.maxLabelLength);
      return where ? ctx.db.query.entities.findMany(query({ where, orderBy: { id: 'asc' } })) : [];
    },
  }),
  conflicts: t.drizzleConnection({
    type: 'entities',
    description: `Entities of a dataset with an unresolved conflict, by id; paged with first/after or last/before (at most ${MAX_CONFLICTS_PAGE}, default ${CONFLICTS_PAGE}). UNKNOWN_DATASET for a dataset that does not exist.`,
    args: { dataset: t.arg.string({ required: true, description: 'The dataset.' }) },
    defaultSize: CONFLICTS_PAGE,
    maxSize: MAX_CONFLICTS_PAGE,
    complexity: connectionPrice(CONFLICTS_PAGE, MAX_CONFLICTS_PAGE),
    authScopes: (_root, args) => ({ $all: { reviewer: true, dataset: args.dataset } }),
    ...reach('authorized-root'),
    resolve: async (query, _root, args, ctx) => {
      checkCursor(args.after);
      checkCursor(args.before);
      await knownDataset(ctx, args.dataset);
      // By id, as `entities`: the dataset's index gives the order, so only the page's rows (and what is
      // selected under them) are read. The inbox (conflictInbox) orders by when the conflict came.
      return ctx.db.query.entities.findMany(query({ where: { dataset: { name: args.dataset }, conflict: { isNotNull: true } }, orderBy: { id: 'asc' } }));
    },
  },
  { description: 'A page of entities in conflict, by id.' },
  { description: 'One entity in conflict, with its cursor.' }),
}));
