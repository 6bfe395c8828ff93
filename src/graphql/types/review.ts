import { GraphQLError } from 'graphql';
import { RESOLUTION_KINDS, MAX_NOTE_LENGTH } from '../../core/review.js';
import { DomainError } from '../../core/errors.js';
import type { ChangeError } from '../../core/types.js';
import { resolveConflict, resolveConflicts, restoreEntity, type ReviewOutcome } from '../../sync/resolve-conflict.js';
import { builder } from '../builder.js';
import { reach } from '../reach.js';
import { connectionPrice } from '../pricing.js';
import { itemsInOperation } from '../operation-items.js';
import { Entity, EntityVersion } from './entities.js';
import { ConflictTypeEnum } from './enums.js';
import { ErrorCodeEnum, ErrorInterface } from './errors.js';

/** A reviewer's verdicts (DESIGN "Settling a conflict"): the mutations, and the record every verdict leaves. */

const ResolutionKindEnum = builder.enumType('ResolutionKind', {
  description: "What a reviewer's verdict was.",
  values: {
    RESOLVE: { description: "The entity's open conflicts were marked resolved (resolveConflict, resolveConflicts), after the chosen values were written, if any." },
    RESTORE: { description: 'A deleted entity was restored (restoreEntity).' },
  } satisfies Record<(typeof RESOLUTION_KINDS)[number], unknown>,
});

export const Resolution = builder.drizzleObject('resolutions', {
  name: 'Resolution',
  description: "A reviewer's verdict on an entity, kept for good: who, when, at which version, why, and the version it wrote. Reviewers and admins only.",
  // Whichever path reaches a verdict (an entity, a version, an event), only reviewers see who and why.
  authScopes: { reviewer: true },
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Resolutions are numbered in the order they were made.' }),
    kind: t.expose('kind', { type: ResolutionKindEnum, description: 'Resolve or restore.' }),
    entityId: t.exposeID('entityId', { description: "The entity's id, without loading the entity." }),
    // Reached only through its entity (Entity.resolutions, EntityVersion.resolution): the rule was applied there.
    entity: t.relation('entity', { description: 'The entity as it is now.', ...reach('same-entity') }),
    atVersion: t.exposeInt('atVersion', { description: 'The entity version the reviewer looked at: the verdict was made there, and only there.' }),
    versionWritten: t.exposeInt('versionWritten', {
      nullable: true,
      description: 'The version it wrote from the reviewer (source REVIEW): the chosen values, or the restore. Null when it wrote none (a plain "mark resolved", or values equal to what was there).',
    }),
    writtenVersion: t.relation('writtenVersion', { nullable: true, description: 'That version, with what it set (`changed`) and its diffs.', ...reach('same-entity') }),
    conflict: t.expose('conflict', { type: ConflictTypeEnum, nullable: true, description: 'The conflict it cleared (the strongest open one); null for a restore.' }),
    conflictingProperties: t.exposeStringList('conflictingProperties', { description: 'The properties of the conflicts it cleared, sorted (empty for SOFT ones and restores).' }),
    conflictsResolved: t.exposeInt('conflictsResolved', { description: 'How many conflicting versions it marked resolved.' }),
    by: t.exposeString('byName', { description: 'Who: the name of the API token that made it ("anonymous" for configured anonymous access), as it was then.' }),
    tokenId: t.exposeID('tokenId', { nullable: true, description: 'The API token that made it; null for configured anonymous access.' }),
    note: t.exposeString('note', { nullable: true, description: "The reviewer's note (why), if any." }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When.' }),
  }),
});

const RESOLUTIONS_PAGE = 20;
const MAX_RESOLUTIONS_PAGE = 100;

/** Resolution cursors are the plugin's encoding of the id ("DC:N:<id>"); a tampered one would reach SQL. */
function checkResolutionCursor(cursor: string | null | undefined): void {
  if (cursor == null) return;
  if (!/^DC:N:\d{1,15}$/.test(Buffer.from(cursor, 'base64').toString('utf8'))) {
    throw new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });
  }
}

builder.drizzleObjectFields(Entity, (t) => ({
  resolutions: t.relatedConnection('resolutions', {
    description: `Every verdict on this entity (resolutions and restores), newest first; paged with first/after (at most ${MAX_RESOLUTIONS_PAGE}, default ${RESOLUTIONS_PAGE}). Reviewers and admins only.`,
    authScopes: { reviewer: true },
    defaultSize: RESOLUTIONS_PAGE,
    maxSize: MAX_RESOLUTIONS_PAGE,
    query: (args) => {
      checkResolutionCursor(args.after);
      checkResolutionCursor(args.before);
      return { orderBy: { id: 'desc' } };
    },
    complexity: connectionPrice(RESOLUTIONS_PAGE, MAX_RESOLUTIONS_PAGE),
  },
  { description: "A page of an entity's verdicts, newest first." },
  { description: 'One verdict, with its cursor.' }),
}));

builder.drizzleObjectFields(EntityVersion, (t) => ({
  resolution: t.relation('resolution', {
    nullable: true,
    description: "The reviewer's verdict on this version: the one that resolved its conflict, or the one that wrote it (source REVIEW). Null otherwise, and for collectors.",
    authScopes: { reviewer: true },
    unauthorizedResolver: () => null,
  }),
}));

/** Why one item of a bulk request was not done. Plain data (a returned Error would be taken for a thrown one). */
const ItemError = builder.objectRef<ChangeError>('ItemError').implement({
  description: 'Why one item of a bulk request was not done; the other items are answered on their own.',
  interfaces: [ErrorInterface],
  isTypeOf: (v) => !(v instanceof Error) && typeof v === 'object' && v !== null && 'code' in v,
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, description: 'STALE_VERSION, VERSION_AHEAD, NOT_IN_CONFLICT, ENTITY_NOT_FOUND, MALFORMED_ID or FORBIDDEN.', resolve: (e) => e.code }),
    message: t.exposeString('message', { description: 'The reason in a sentence (for STALE_VERSION, the version the entity is at).' }),
  }),
});

const ResolveItemInput = builder.inputType('ResolveItemInput', {
  description: 'One entity to mark resolved, at the version the reviewer looked at.',
  fields: (t) => ({
    entityId: t.id({ required: true, description: 'The entity.' }),
    version: t.int({ required: true, description: 'The entity version the reviewer looked at; STALE_VERSION if it has moved on.' }),
  }),
});

const ResolveItemResult = builder.objectRef<ReviewOutcome>('ResolveItemResult').implement({
  description: 'What became of one item of resolveConflicts.',
  fields: (t) => ({
    entityId: t.exposeID('entityId', { description: 'The item\'s entity id (in canonical form when it is a UUID).' }),
    version: t.exposeInt('version', { description: 'The version the item named.' }),
    resolved: t.boolean({ description: 'True when its conflicts were marked resolved.', resolve: (o) => o.error === null }),
    resolutionId: t.id({ nullable: true, description: 'The resolution recorded (see Entity.resolutions); null when not resolved.', resolve: (o) => o.resolutionId }),
    error: t.field({ type: ItemError, nullable: true, description: 'Why not: STALE_VERSION (the message names the current version), VERSION_AHEAD, NOT_IN_CONFLICT, ENTITY_NOT_FOUND, MALFORMED_ID, or FORBIDDEN (a dataset the token may not use, or an id that names nothing when the token is restricted to datasets: it learns nothing else).', resolve: (o) => o.error }),
  }),
});

const noteArg = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) =>
  t.arg.string({ required: false, description: `Why (at most ${MAX_NOTE_LENGTH} characters; line breaks allowed). Kept with the resolution and shown in the history.` });

builder.mutationFields((t) => ({
  resolveConflict: t.drizzleField({
    type: 'entities',
    errors: { dataField: { description: 'The entity after the verdict: its conflict cleared, its new version when values were written.' } },
    description:
      "Settles an entity's open conflicts at the version the reviewer looked at. With `values` and/or `label`, first writes them as a new version from the reviewer (source REVIEW, no device) on top of the current one, setting exactly those properties; then marks every open conflict resolved. One transaction under the entity's lock; the verdict is recorded (Entity.resolutions). STALE_VERSION (nothing changes) when the entity has moved past `version`. Returns the entity after it.",
    args: {
      entityId: t.arg.id({ required: true, description: 'The entity.' }),
      version: t.arg.int({ required: true, description: 'The entity version the reviewer looked at.' }),
      values: t.arg({ type: 'JSONObject', required: false, description: 'Chosen values, property name to value (declared properties only: UNKNOWN_PROPERTY otherwise; checked for shape and size as a change is). Values equal to what is there write no version.' }),
      label: t.arg.string({ required: false, description: 'A chosen label.' }),
      note: noteArg(t),
    },
    authScopes: (_root, args) => ({ $all: { reviewer: true, entity: String(args.entityId) } }),
    ...reach('authorized-root'),
    resolve: async (query, _root, args, ctx) => {
      const { entityId, events } = await resolveConflict(ctx.db, ctx.principal, { entityId: String(args.entityId), version: args.version, values: args.values, label: args.label, note: args.note }, ctx.limits);
      ctx.publish(events);
      return (await ctx.db.query.entities.findFirst(query({ where: { id: entityId } })))!;
    },
  }),
  restoreEntity: t.drizzleField({
    type: 'entities',
    errors: { dataField: { description: 'The entity, restored.' } },
    description:
      'Undoes a delete: a new version from the reviewer (source REVIEW) with the label and values the entity had when it was deleted. At the version the reviewer looked at (STALE_VERSION otherwise); ENTITY_NOT_DELETED for an entity that is not deleted. Pulled and published (entityChanged) like any change; recorded as a resolution of kind RESTORE.',
    args: {
      entityId: t.arg.id({ required: true, description: 'The deleted entity.' }),
      version: t.arg.int({ required: true, description: 'The entity version the reviewer looked at (its delete, or later).' }),
      note: noteArg(t),
    },
    authScopes: (_root, args) => ({ $all: { reviewer: true, entity: String(args.entityId) } }),
    ...reach('authorized-root'),
    resolve: async (query, _root, args, ctx) => {
      const { entityId, events } = await restoreEntity(ctx.db, ctx.principal, { entityId: String(args.entityId), version: args.version, note: args.note });
      ctx.publish(events);
      return (await ctx.db.query.entities.findFirst(query({ where: { id: entityId } })))!;
    },
  }),
  resolveConflicts: t.field({
    type: [ResolveItemResult],
    errors: { dataField: { description: 'One answer per item, in input order.' } },
    description:
      'Marks many entities resolved in one request (no values), each item answered on its own, in input order. Bounded like a batch of changes: EMPTY_BATCH, or BATCH_TOO_LARGE over the batch limit (counted over every resolveConflicts field of the request). One note for every item.',
    args: {
      items: t.arg({ type: [ResolveItemInput], required: true, description: 'The entities, each with the version the reviewer looked at.' }),
      note: noteArg(t),
    },
    authScopes: { reviewer: true },
    complexity: (args) => ({ field: 1, multiplier: Math.max(1, Math.ceil(args.items.length / 10)) }),
    resolve: async (_root, args, ctx, info) => {
      const total = itemsInOperation(info, { resolveConflicts: (a) => (Array.isArray(a.items) ? a.items.length : 0) });
      if (total > ctx.limits.maxBatch) throw new DomainError('BATCH_TOO_LARGE', `this request resolves ${total} items over its fields; the limit for one request is ${ctx.limits.maxBatch}`);
      const { outcomes, events } = await resolveConflicts(ctx.db, ctx.principal, args.items.map((i) => ({ entityId: String(i.entityId), version: i.version })), args.note, ctx.limits);
      ctx.publish(events);
      return outcomes;
    },
  }),
}));
