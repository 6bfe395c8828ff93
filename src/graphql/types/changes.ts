import type { ChangeInput as CoreChangeInput } from '../../core/types.js';
import { GraphQLError, type GraphQLResolveInfo } from 'graphql';
import { DomainError } from '../../core/errors.js';
import { changeKey } from '../../core/validate.js';
import type { ChangeResult } from '../../core/results.js';
import { submitChanges } from '../../sync/submit-changes.js';
import { builder } from '../builder.js';
import { IN_HAND } from '../pricing.js';
import { entityFrom, reach, versionFrom } from '../reach.js';
import type { Context } from '../context.js';
import { itemsInOperation } from '../operation-items.js';
import { ChangeActionEnum, ChangeOutcomeEnum, ConflictTypeEnum } from './enums.js';
import { ChangeRejection, ErrorCodeEnum } from './errors.js';
import { OperationInputRef } from './operations.js';

export const ChangeInput = builder.inputType('ChangeInput', {
  description: 'One client change about one entity. Ids are strings here so that malformed ones are recorded and rejected with a code, not refused unseen.',
  fields: (t) => ({
    id: t.string({ required: true, description: 'Client-made UUID: the idempotency key.' }),
    deviceId: t.string({ required: false, description: 'The device that made the change; a device-bound token must send its own. Needed with `localId` and to use offline runs.' }),
    dataset: t.string({ required: true, description: 'The dataset of the entity.' }),
    entityId: t.string({ required: false, description: 'The entity (UUID). A create may choose it, or give `localId` instead.' }),
    action: t.field({ type: ChangeActionEnum, required: true, description: 'CREATE, UPDATE or DELETE.' }),
    label: t.string({ required: false, description: 'The entity\'s label: required on CREATE, optional on UPDATE.' }),
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
    changeId: t.exposeString('changeId', { complexity: IN_HAND, description: 'The id the change was sent with.' }),
    outcome: t.expose('outcome', { complexity: IN_HAND, type: ChangeOutcomeEnum, description: 'APPLIED, HELD, DUPLICATE or REJECTED.' }),
    originalOutcome: t.expose('originalOutcome', { complexity: IN_HAND, type: ChangeOutcomeEnum, nullable: true, description: 'For a DUPLICATE: the outcome of the first submission.' }),
    entityId: t.exposeID('entityId', { complexity: IN_HAND, nullable: true, description: 'The entity it is about (minted by the server for a create by `localId`); null when the change named none that could be used.' }),
    localId: t.exposeString('localId', { complexity: IN_HAND, nullable: true, description: 'The local id the change named its entity by, beside the minted entityId.' }),
    version: t.exposeInt('version', { complexity: IN_HAND, nullable: true, description: 'The server version the change made.' }),
    conflict: t.expose('conflict', { complexity: IN_HAND, type: ConflictTypeEnum, nullable: true, description: 'Whether it was applied on top of versions its author had not seen: SOFT, HARD, or null (no conflict).' }),
    conflictingProperties: t.exposeStringList('conflictingProperties', { complexity: IN_HAND, description: 'For a HARD conflict: the properties both sides set.' }),
    waitsFor: t.exposeInt('waitsFor', { complexity: IN_HAND, nullable: true, description: 'For HELD: the client baseVersion of the predecessor it waits for.' }),
    // A run holds at most maxRunLength changes: what is selected under it is priced that many times.
    released: t.field({
      type: [ChangeResultRef],
      description: 'Held changes of the same run applied right after this one, in run order.',
      complexity: (_args, ctx) => ({ field: IN_HAND, multiplier: ctx.limits.maxRunLength }),
      resolve: (r) => r.released,
    }),
    error: t.expose('error', { complexity: IN_HAND, type: ChangeRejection, nullable: true, description: 'For REJECTED: why, as a code and a sentence.' }),
    // A change may name an entity of another dataset (ENTITY_EXISTS, ENTITY_NOT_FOUND, HELD as for a
    // missing one, CHANGE_ID_REUSED…): only an entity of the dataset the change named is shown.
    entity: t.drizzleField({
      type: 'entities',
      nullable: true,
      description: "Its entity as it is now; null when there is none in the change's dataset (or the token may not see it).",
      ...reach('from-parent'),
      resolve: (query, r, _args, ctx) => entityFrom(ctx, query, r.dataset, r.entityId),
    }),
    entityVersion: t.drizzleField({
      type: 'entityVersions',
      nullable: true,
      description: 'The version the change made, with its diffs; null unless it was applied.',
      ...reach('from-parent'),
      resolve: (query, r, _args, ctx) => versionFrom(ctx, query, r.dataset, r.entityId, r.version),
    }),
  }),
});

export const Change = builder.drizzleObject('changes', {
  name: 'Change',
  description: 'A change as recorded in the change log, whatever its outcome.',
  fields: (t) => ({
    id: t.exposeString('changeId', { description: 'The id the client sent it with (recorded as sent, even when malformed).' }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: 'The device that sent it, if it said.' }),
    dataset: t.exposeString('datasetName', { nullable: true, description: 'The dataset it named, if any.' }),
    entityId: t.exposeID('entityId', { nullable: true, description: 'The entity it is about, when it named a usable one.' }),
    payload: t.expose('payload', { type: 'JSONObject', description: 'What the client sent.' }),
    outcome: t.expose('outcome', { type: ChangeOutcomeEnum, description: 'What it came to: APPLIED, REJECTED, or HELD while it waits in the backlog (once released or forced, what it came to then).' }),
    errorCode: t.expose('errorCode', { type: ErrorCodeEnum, nullable: true, description: 'For REJECTED: the code of the refusal.' }),
    errorMessage: t.exposeString('errorMessage', { nullable: true, description: 'For REJECTED: the refusal in words.' }),
    version: t.exposeInt('version', { nullable: true, description: 'The server version it made, once applied.' }),
    receivedAt: t.expose('receivedAt', { type: 'DateTime', description: 'When the server received it.' }),
    processedAt: t.expose('processedAt', { type: 'DateTime', nullable: true, description: 'When its outcome was last decided: on receipt, or when a held change was released or forced.' }),
  }),
});

function toCore(input: typeof ChangeInput.$inferInput): CoreChangeInput {
  return { ...input, data: input.data as unknown, ...(input.operations ? { operations: input.operations.map((o) => ({ ...o, value: o.value as unknown })) } : {}) };
}

/** The changes every submitChanges and submitChange field of this operation submits (see itemsInOperation). */
function changesInOperation(info: GraphQLResolveInfo): number {
  return itemsInOperation(info, { submitChange: () => 1, submitChanges: (args) => (Array.isArray(args.changes) ? args.changes.length : 0) });
}

async function submit(ctx: Context, info: GraphQLResolveInfo, inputs: (typeof ChangeInput.$inferInput)[]) {
  const total = changesInOperation(info);
  if (total > ctx.limits.maxBatch) {
    throw new DomainError('BATCH_TOO_LARGE', `this request submits ${total} changes over its fields; the limit for one request is ${ctx.limits.maxBatch}`);
  }
  const { results, events, outboxed } = await submitChanges(ctx.db, inputs.map(toCore), ctx.limits, ctx.principal.tokenId);
  ctx.publish(events, outboxed);
  ctx.observer.submitted(results);
  return results;
}

builder.mutationFields((t) => ({
  submitChanges: t.field({
    type: [ChangeResultRef],
    errors: { dataField: { description: 'One result per change, in input order.' } },
    description: 'Submits a batch; one result per change, in input order. Safe to resend: change ids make it idempotent.',
    args: { changes: t.arg({ type: [ChangeInput], required: true, description: 'The changes, in the order they were made (at most 500 per request).' }) },
    authScopes: (_root, args) => ({ batch: args.changes }),
    // The results are a list (×10 by default) under the success type: the batch size over 10.
    complexity: (args) => ({ field: 1, multiplier: Math.ceil(args.changes.length / 10) }),
    resolve: (_root, args, ctx, info) => submit(ctx, info, args.changes),
  }),
  submitChange: t.field({
    type: ChangeResultRef,
    description: 'Submits one change.',
    args: { change: t.arg({ type: ChangeInput, required: true, description: 'The change.' }) },
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
    args: { id: t.arg.string({ required: true, description: 'The change id the client sent.' }) },
    authScopes: (_root, args) => ({ change: args.id }),
    resolve: (query, _root, args, ctx) => {
      const key = changeKey(args.id);
      return key === null ? null : ctx.db.query.changes.findFirst(query({ where: { changeId: key, original: true } }));
    },
  }),
}));
