import type { PropertyDiff } from '../../core/diff.js';
import { GraphQLError } from 'graphql';
import { isUuid, normalizeUuid, validateName } from '../../core/validate.js';
import { resolveConflict } from '../../sync/resolve-conflict.js';
import { builder } from '../builder.js';
import { inSubsetWhere } from '../subset-filter.js';
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

const PropertyDiffRef = builder.objectRef<PropertyDiff>('PropertyDiff').implement({
  description: 'One property (or `label`) with its value before and after.',
  fields: (t) => ({
    property: t.exposeString('property'),
    old: t.expose('old', { type: 'JSON', nullable: true }),
    new: t.expose('new', { type: 'JSON', nullable: true }),
  }),
});

const VERSIONS_PAGE = 100;
const MAX_VERSIONS_PAGE = 1000;
const versionsPage = (limit: number | null | undefined) => Math.min(Math.max(limit ?? VERSIONS_PAGE, 1), MAX_VERSIONS_PAGE);

export const Entity = builder.drizzleObject('entities', {
  name: 'Entity',
  description: 'One record: its current label, properties, server version and conflict state.',
  fields: (t) => ({
    id: t.exposeID('id'),
    dataset: t.relation('dataset'),
    label: t.exposeString('label'),
    data: t.expose('data', { type: 'JSONObject', description: 'Property name to value.' }),
    version: t.exposeInt('version', { description: 'The current server version.' }),
    conflict: t.expose('conflict', { type: ConflictTypeEnum, nullable: true, description: 'The strongest unresolved conflict.' }),
    deleted: t.exposeBoolean('deleted'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
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
    }),
  }),
});

export const EntityVersion = builder.drizzleObject('entityVersions', {
  name: 'EntityVersion',
  description: 'One row of an entity history: the full state after a change and what the change set.',
  fields: (t) => ({
    version: t.exposeInt('version'),
    appliedOn: t.exposeInt('appliedOn', { nullable: true, description: 'The server version this change was applied against (null for the create).' }),
    action: t.expose('action', { type: ChangeActionEnum }),
    label: t.exposeString('label'),
    data: t.expose('data', { type: 'JSONObject', description: 'Full state after this version.' }),
    changed: t.expose('changed', { type: 'JSONObject', description: 'What the change itself set, with resulting values; `label` when it set the label.' }),
    operations: t.field({ type: [OperationRef], description: 'The operations it applied, after `changed` values from plain data.', select: { columns: { operations: true } }, resolve: (v) => v.operations }),
    deleted: t.exposeBoolean('deleted'),
    conflict: t.expose('conflict', { type: ConflictTypeEnum, nullable: true }),
    conflictingProperties: t.exposeStringList('conflictingProperties'),
    resolved: t.exposeBoolean('resolved', { description: 'A reviewer resolved the conflict of this version.' }),
    source: t.expose('source', { type: VersionSourceEnum }),
    branchId: t.exposeID('branchId', { nullable: true }),
    trunkVersion: t.exposeInt('trunkVersion', { nullable: true }),
    baseVersion: t.exposeInt('baseVersion', { nullable: true, description: "The version the author made the change on, counted in the author's view." }),
    branchBaseVersion: t.int({
      nullable: true,
      description: 'baseVersion when the change belongs to an offline run: how the next change of the run finds this one.',
      select: { columns: { branchId: true, baseVersion: true } },
      resolve: (v) => (v.branchId ? v.baseVersion : null),
    }),
    serverDiff: t.field({ type: [PropertyDiffRef], description: 'What differs from the version it was applied against.', select: { columns: { serverDiff: true } }, resolve: (v) => v.serverDiff }),
    baseDiff: t.field({
      type: [PropertyDiffRef],
      nullable: true,
      description: "What the author changed relative to what the author saw; null when no single server version equals that (see authorViewUnavailable).",
      select: { columns: { baseDiff: true } },
      resolve: (v) => v.baseDiff,
    }),
    authorViewUnavailable: t.exposeString('authorViewUnavailable', { nullable: true, description: 'Why baseDiff is null.' }),
    changeId: t.exposeString('changeId'),
    deviceId: t.exposeString('deviceId', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    entityId: t.exposeID('entityId', { description: "The entity's id, without loading the entity (what a pull needs)." }),
    entity: t.relation('entity', {
      nullable: true,
      description: 'The entity as it is now; null for a token whose subset it has left since.',
      query: (_args, ctx) => ({ where: inSubsetWhere(ctx) }),
    }),
  }),
});

builder.queryFields((t) => ({
  entity: t.drizzleField({
    type: 'entities',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    authScopes: (_root, args) => ({ $all: { reviewer: true, entity: String(args.id) } }),
    resolve: (query, _root, args, ctx) =>
      normalizeUuid(args.id) ? ctx.db.query.entities.findFirst(query({ where: { id: normalizeUuid(args.id)! } })) : null,
  }),
  entities: t.drizzleConnection({
    type: 'entities',
    description: 'Entities of a dataset, by id, with cursor pagination.',
    args: {
      dataset: t.arg.string({ required: true }),
      conflict: t.arg({ type: ConflictTypeEnum, required: false, description: 'Only entities with this unresolved conflict.' }),
      includeDeleted: t.arg.boolean({ required: false, defaultValue: false }),
    },
    // edges and nodes are lists (×10 each by default): the page size over 10 makes the estimate the page.
    complexity: (args) => ({ field: 1, multiplier: Math.ceil(Math.min(args.first ?? args.last ?? 20, 500) / 10) }),
    authScopes: (_root, args) => ({ $all: { reviewer: true, dataset: args.dataset } }),
    resolve: (query, _root, args, ctx) => {
      checkCursor(args.after);
      checkCursor(args.before);
      if (validateName(args.dataset)) return [];
      return ctx.db.query.entities.findMany(
        query({
          where: {
            dataset: { name: args.dataset },
            ...(args.conflict ? { conflict: args.conflict } : {}),
            ...(args.includeDeleted ? {} : { deleted: false }),
          },
          orderBy: { id: 'asc' },
        }),
      );
    },
  }),
  conflicts: t.drizzleField({
    type: ['entities'],
    description: 'Entities of a dataset with an unresolved conflict.',
    args: { dataset: t.arg.string({ required: true }) },
    authScopes: (_root, args) => ({ $all: { reviewer: true, dataset: args.dataset } }),
    resolve: (query, _root, args, ctx) =>
      validateName(args.dataset)
        ? []
        : ctx.db.query.entities.findMany(query({ where: { dataset: { name: args.dataset }, conflict: { isNotNull: true } }, orderBy: { updatedAt: 'asc' } })),
  }),
}));

builder.mutationFields((t) => ({
  resolveConflict: t.drizzleField({
    type: 'entities',
    errors: {},
    description: "Clears the entity's conflict and marks its conflicting versions resolved.",
    args: { entityId: t.arg.id({ required: true }) },
    authScopes: (_root, args) => ({ $all: { reviewer: true, entity: String(args.entityId) } }),
    resolve: async (query, _root, args, ctx) => {
      const { entityId, events } = await resolveConflict(ctx.db, String(args.entityId));
      ctx.publish(events);
      const entity = await ctx.db.query.entities.findFirst(query({ where: { id: entityId } }));
      return entity!;
    },
  }),
}));
