import type { ChangeInput as CoreChangeInput } from '../../core/types.js';
import {
  getArgumentValues,
  getDirectiveValues,
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type GraphQLResolveInfo,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { DomainError } from '../../core/errors.js';
import { changeKey } from '../../core/validate.js';
import type { ChangeResult } from '../../core/results.js';
import { submitChanges } from '../../sync/submit-changes.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { inSubsetWhere } from '../subset-filter.js';
import { ChangeActionEnum, ChangeOutcomeEnum, ConflictTypeEnum } from './enums.js';
import { ChangeRejection, ErrorCodeEnum } from './errors.js';
import { OperationInputRef } from './operations.js';

export const ChangeInput = builder.inputType('ChangeInput', {
  description: 'One client change about one entity. Ids are strings here so that malformed ones are recorded and rejected with a code, not refused unseen.',
  fields: (t) => ({
    id: t.string({ required: true, description: 'Client-made UUID: the idempotency key.' }),
    deviceId: t.string({ required: false }),
    dataset: t.string({ required: true }),
    entityId: t.string({ required: false }),
    action: t.field({ type: ChangeActionEnum, required: true }),
    label: t.string({ required: false }),
    data: t.field({ type: 'JSON', required: false, description: 'Property name to value.' }),
    baseVersion: t.int({ required: false, description: 'The version the change was made on, in the client view. Required for UPDATE and DELETE.' }),
    trunkVersion: t.int({ required: false, description: 'The last server version the client had seen when its offline run began.' }),
    branchId: t.string({ required: false, description: 'Client-made UUID of the offline run.' }),
    localId: t.string({ required: false, description: 'Instead of entityId: a client-local id, scoped to deviceId. The server mints the UUID and returns it.' }),
    operations: t.field({ type: [OperationInputRef], required: false, description: 'Applied after `data` (which is sugar for one SET per property).' }),
  }),
});

export const ChangeResultRef = builder.objectRef<ChangeResult>('ChangeResult');
ChangeResultRef.implement({
  description: 'What became of one submitted change.',
  fields: (t) => ({
    changeId: t.exposeString('changeId'),
    outcome: t.expose('outcome', { type: ChangeOutcomeEnum }),
    originalOutcome: t.expose('originalOutcome', { type: ChangeOutcomeEnum, nullable: true, description: 'For a DUPLICATE: the outcome of the first submission.' }),
    entityId: t.exposeID('entityId', { nullable: true }),
    localId: t.exposeString('localId', { nullable: true, description: 'The local id the change named its entity by, beside the minted entityId.' }),
    version: t.exposeInt('version', { nullable: true, description: 'The server version the change made.' }),
    conflict: t.expose('conflict', { type: ConflictTypeEnum, nullable: true }),
    conflictingProperties: t.exposeStringList('conflictingProperties'),
    waitsFor: t.exposeInt('waitsFor', { nullable: true, description: 'For HELD: the client baseVersion of the predecessor it waits for.' }),
    released: t.field({
      type: [ChangeResultRef],
      description: 'Held changes of the same run applied right after this one, in run order.',
      resolve: (r) => r.released,
    }),
    error: t.expose('error', { type: ChangeRejection, nullable: true }),
    entity: t.drizzleField({
      type: 'entities',
      nullable: true,
      // A rejection may name an entity of another dataset (ENTITY_EXISTS, ENTITY_NOT_FOUND, CHANGE_ID_REUSED…): never show it.
      authScopes: (r) => (r.entityId ? { entity: r.entityId } : true), unauthorizedResolver: () => null,
      resolve: (query, r, _args, ctx) => (r.entityId ? ctx.db.query.entities.findFirst(query({ where: { id: r.entityId, ...inSubsetWhere(ctx) } })) : null),
    }),
    entityVersion: t.drizzleField({
      type: 'entityVersions',
      nullable: true,
      resolve: (query, r, _args, ctx) =>
        r.entityId && r.version ? ctx.db.query.entityVersions.findFirst(query({ where: { entityId: r.entityId, version: r.version, ...inSubsetWhere(ctx) } })) : null,
    }),
  }),
});

export const Change = builder.drizzleObject('changes', {
  name: 'Change',
  description: 'A change as recorded in the change log, whatever its outcome.',
  fields: (t) => ({
    id: t.exposeString('changeId'),
    deviceId: t.exposeString('deviceId', { nullable: true }),
    dataset: t.exposeString('datasetName', { nullable: true }),
    entityId: t.exposeID('entityId', { nullable: true }),
    payload: t.expose('payload', { type: 'JSONObject', description: 'What the client sent.' }),
    outcome: t.expose('outcome', { type: ChangeOutcomeEnum }),
    errorCode: t.expose('errorCode', { type: ErrorCodeEnum, nullable: true }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    version: t.exposeInt('version', { nullable: true }),
    receivedAt: t.expose('receivedAt', { type: 'DateTime' }),
    processedAt: t.expose('processedAt', { type: 'DateTime', nullable: true }),
  }),
});

function toCore(input: typeof ChangeInput.$inferInput): CoreChangeInput {
  return { ...input, data: input.data as unknown, ...(input.operations ? { operations: input.operations.map((o) => ({ ...o, value: o.value as unknown })) } : {}) };
}

/**
 * The changes every submitChanges and submitChange field of this operation submits, aliases and
 * fragments included (skipped fields not): one operation is one request, and aliases must not
 * multiply the batch limit. Read from the document, so it is known before any field has run.
 */
function changesInOperation(info: GraphQLResolveInfo): number {
  const fields = info.schema.getMutationType()?.getFields() ?? {};
  const included = (node: SelectionNode) =>
    getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if !== true && getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;
  let total = 0;
  const visit = (set: SelectionSetNode) => {
    for (const node of set.selections) {
      if (!included(node)) continue;
      if (node.kind === Kind.INLINE_FRAGMENT) visit(node.selectionSet);
      else if (node.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = info.fragments[node.name.value];
        if (fragment) visit(fragment.selectionSet);
      } else if (node.name.value === 'submitChange') total += 1;
      else if (node.name.value === 'submitChanges' && fields.submitChanges) {
        const changes = getArgumentValues(fields.submitChanges, node, info.variableValues).changes;
        total += Array.isArray(changes) ? changes.length : 0;
      }
    }
  };
  visit(info.operation.selectionSet);
  return total;
}

async function submit(ctx: Context, info: GraphQLResolveInfo, inputs: (typeof ChangeInput.$inferInput)[]) {
  const total = changesInOperation(info);
  if (total > ctx.limits.maxBatch) {
    throw new DomainError('BATCH_TOO_LARGE', `this request submits ${total} changes over its fields; the limit for one request is ${ctx.limits.maxBatch}`);
  }
  const { results, events } = await submitChanges(ctx.db, inputs.map(toCore), ctx.limits, ctx.principal.tokenId);
  ctx.publish(events);
  ctx.observer.submitted(results);
  return results;
}

builder.mutationFields((t) => ({
  submitChanges: t.field({
    type: [ChangeResultRef],
    errors: {},
    description: 'Submits a batch; one result per change, in input order. Safe to resend: change ids make it idempotent.',
    args: { changes: t.arg({ type: [ChangeInput], required: true }) },
    authScopes: (_root, args) => ({ batch: args.changes }),
    // The results are a list (×10 by default) under the success type: the batch size over 10.
    complexity: (args) => ({ field: 1, multiplier: Math.ceil(args.changes.length / 10) }),
    resolve: (_root, args, ctx, info) => submit(ctx, info, args.changes),
  }),
  submitChange: t.field({
    type: ChangeResultRef,
    description: 'Submits one change.',
    args: { change: t.arg({ type: ChangeInput, required: true }) },
    authScopes: (_root, args) => ({ batch: [args.change] }),
    // No typed error union here (it answers a ChangeResult): an expected failure, such as the
    // request's batch limit, is a top-level error with its code, never a masked one.
    resolve: async (_root, args, ctx, info) => {
      try {
        return (await submit(ctx, info, [args.change]))[0]!;
      } catch (error) {
        if (error instanceof DomainError) throw new GraphQLError(error.message, { extensions: { code: error.code } });
        throw error;
      }
    },
  }),
}));

builder.queryFields((t) => ({
  change: t.drizzleField({
    type: 'changes',
    nullable: true,
    description: 'The recorded change with this id (its first submission).',
    args: { id: t.arg.string({ required: true }) },
    authScopes: (_root, args) => ({ change: args.id }),
    resolve: (query, _root, args, ctx) => {
      const key = changeKey(args.id);
      return key === null ? null : ctx.db.query.changes.findFirst(query({ where: { changeId: key, original: true } }));
    },
  }),
}));
