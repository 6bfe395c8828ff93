import { GraphQLError } from 'graphql';
import { mayUseDataset } from '../../core/auth.js';
import { fromPgTimestamp, isPgTimestamp } from '../../core/pg-time.js';
import { changeKey, normalizeUuid, validateName } from '../../core/validate.js';
import { branchesById, branchesOfEntities, changesOfBranches, gapsOfBranches, type Branch, type BranchChange, type PositionRange } from '../../sync/branches.js';
import { flushBacklog, type FlushResult } from '../../sync/flush-backlog.js';
import { builder } from '../builder.js';
import { knownDataset } from '../known-dataset.js';
import { reach } from '../reach.js';
import { connectionPrice, IN_HAND } from '../pricing.js';
import { ChangeResultRef } from './changes.js';
import { Entity } from './entities.js';

const BranchChangeRef = builder.objectRef<BranchChange>('BranchChange').implement({
  description: 'One change of an offline run.',
  fields: (t) => ({
    position: t.exposeInt('position', { description: 'Its client baseVersion (0 for an offline create).' }),
    changeId: t.exposeString('changeId', { description: 'The change.' }),
    state: t.exposeString('state', { description: 'APPLIED or HELD.' }),
    version: t.exposeInt('version', { nullable: true, description: 'The version it made, once applied.' }),
    heldSince: t.expose('heldSince', { type: 'DateTime', nullable: true, description: 'Since when it waits, while it is held.' }),
  }),
});

const PositionRangeRef = builder.objectRef<PositionRange>('PositionRange').implement({
  description: 'Consecutive positions of a run, `from` to `to` inclusive.',
  fields: (t) => ({
    from: t.exposeInt('from', { description: 'The first position of the range.' }),
    to: t.exposeInt('to', { description: 'The last position of the range.' }),
  }),
});

/** Page sizes of run lists: each list is paged, and priced by its page size (Pothos complexity). */
const RUNS_PAGE = 10;
const MAX_RUNS_PAGE = 100;
const CHANGES_PAGE = 100;
const MAX_CHANGES_PAGE = 1000;
const page = (limit: number | null | undefined, fallback: number, max: number) => Math.min(Math.max(limit ?? fallback, 1), max);
/** A run is its id in its dataset. */
const runKey = (b: Branch) => `${b.dataset}/${b.id}`;

function isHeldCursor(cursor: string): boolean {
  const decoded = Buffer.from(cursor, 'base64').toString('utf8');
  let parts: unknown = null;
  try {
    parts = decoded.startsWith('DC:T:') ? JSON.parse(decoded.slice(5)) : null;
  } catch {
    return false;
  }
  if (!Array.isArray(parts) || parts.length !== 2) return false;
  const [at, id] = parts as unknown[];
  return typeof at === 'string' && at.startsWith('S:') && isPgTimestamp(at.slice(2)) && typeof id === 'string' && id.startsWith('S:') && id.length > 2 && id.length <= 202;
}
/** The backlog is paged: a reviewer's page of it, and what is selected under each, is bounded. */
export const HELD_PAGE = 50;
export const MAX_HELD_PAGE = 500;

/** Backlog cursors are the plugin's encoding of (heldSince as Postgres's text, to the microsecond, and changeId); a tampered one would reach SQL. */
function checkHeldCursor(cursor: string | null | undefined): void {
  if (cursor != null && !isHeldCursor(cursor)) {
    throw new GraphQLError(`Invalid cursor "${cursor.slice(0, 60)}"`, { extensions: { code: 'INVALID_CURSOR' } });
  }
}

const BranchRef = builder.objectRef<Branch>('Branch').implement({
  description: 'An offline run: the changes one client made to one entity while offline, as the server has them. Reviewers and admins only.',
  // Whichever path reaches a run (branch, Entity.branches under a pull or an event), one rule.
  authScopes: { reviewer: true },
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The run\'s branchId.' }),
    dataset: t.exposeString('dataset', { description: 'The dataset the run is in: its changes and its entity are of this dataset only.' }),
    entityId: t.exposeID('entityId', { description: 'The entity the run edited.' }),
    trunkVersion: t.exposeInt('trunkVersion', { nullable: true, description: 'The last server version the client had seen when the run began (null: it began with an offline create).' }),
    changes: t.loadableList({
      type: BranchChangeRef,
      description: `The run's changes in run order: at most \`limit\` (1-${MAX_CHANGES_PAGE}, default ${CHANGES_PAGE}) after position \`after\`.`,
      args: {
        after: t.arg.int({ description: 'Only positions after this one (default: from the first).' }),
        limit: t.arg.int({ description: `At most this many (1-${MAX_CHANGES_PAGE}, default ${CHANGES_PAGE}).` }),
      },
      complexity: (args) => ({ field: 1, multiplier: page(args.limit, CHANGES_PAGE, MAX_CHANGES_PAGE) }),
      // One loader per place in the query: every run of a page is loaded by one statement.
      byPath: true,
      load: (runs: Branch[], ctx, args) => changesOfBranches(ctx.db, runs, { after: args.after ?? -1, limit: page(args.limit, CHANGES_PAGE, MAX_CHANGES_PAGE) }),
      loaderOptions: { cacheKeyFn: runKey },
      resolve: (b) => b,
    }),
    missing: t.loadableList({
      type: PositionRangeRef,
      description: 'Positions the server has not received, as ranges, from the run start to its last change: the gaps the run waits for.',
      args: { limit: t.arg.int({ description: `At most this many ranges (1-${MAX_CHANGES_PAGE}, default ${CHANGES_PAGE}).` }) },
      complexity: (args) => ({ field: 1, multiplier: page(args.limit, CHANGES_PAGE, MAX_CHANGES_PAGE) }),
      byPath: true,
      load: async (runs: Branch[], ctx, args) => (await gapsOfBranches(ctx.db, runs)).map((gaps) => gaps.slice(0, page(args.limit, CHANGES_PAGE, MAX_CHANGES_PAGE))),
      loaderOptions: { cacheKeyFn: runKey },
      resolve: (b) => b,
    }),
  }),
});

export const HeldChange = builder.drizzleObject('heldChanges', {
  name: 'HeldChange',
  description: 'A change waiting in the backlog for its predecessor in its run. Reviewers and admins only: it carries its device\'s whole payload, local ids included.',
  // Wherever a held change is reached from (the backlog, an event), only reviewers see it.
  authScopes: { reviewer: true },
  fields: (t) => ({
    changeId: t.exposeString('changeId', { description: 'The change.' }),
    entityId: t.exposeID('entityId', { description: 'The entity it changes.' }),
    dataset: t.exposeString('datasetName', { description: 'The dataset of the entity.' }),
    deviceId: t.exposeString('deviceId', { nullable: true, description: 'The device that sent it, if it said.' }),
    branchId: t.exposeID('branchId', { description: 'Its offline run.' }),
    trunkVersion: t.exposeInt('trunkVersion', { nullable: true, description: 'The last server version its run had seen when it began (null: an offline create began it).' }),
    baseVersion: t.exposeInt('baseVersion', { description: 'The version it was made on, in its author\'s view (its position in the run).' }),
    waitsFor: t.exposeInt('waitsFor', { description: 'The client baseVersion of the predecessor it waits for.' }),
    heldSince: t.field({ type: 'DateTime', description: 'Since when it waits.', select: { columns: { heldSince: true } }, resolve: (h) => fromPgTimestamp(h.heldSince) }),
    forceAfter: t.field({
      type: 'DateTime',
      description: 'When the periodic flush will apply it without its predecessor.',
      select: { columns: { heldSince: true } },
      resolve: (h, _args, ctx) => new Date(fromPgTimestamp(h.heldSince).getTime() + ctx.holdTimeoutSeconds * 1000),
    }),
    change: t.field({ type: 'JSONObject', description: 'The validated change as it will be applied.', select: { columns: { change: true } }, resolve: (h) => ({ ...h.change }) }),
  }),
});

builder.drizzleObjectField(Entity, 'branches', (t) =>
  t.loadableList({
    type: BranchRef,
    description: `Offline runs that touched this entity, in the order they began: at most \`limit\` (1-${MAX_RUNS_PAGE}, default ${RUNS_PAGE}). Reviewers and admins only.`,
    args: { limit: t.arg.int({ description: `At most this many (1-${MAX_RUNS_PAGE}, default ${RUNS_PAGE}).` }) },
    authScopes: { reviewer: true },
    // The runs of the entity's own dataset (src/sync/branches.ts).
    ...reach('same-entity'),
    complexity: (args) => ({ field: 1, multiplier: page(args.limit, RUNS_PAGE, MAX_RUNS_PAGE) }),
    byPath: true,
    load: (ids: string[], ctx, args) => branchesOfEntities(ctx.db, ids, page(args.limit, RUNS_PAGE, MAX_RUNS_PAGE)),
    resolve: (e) => e.id,
  }),
);

builder.queryFields((t) => ({
  branch: t.field({
    type: BranchRef,
    nullable: true,
    description:
      'An offline run by its id, seen from its dataset; null when the server has no change of it. A run is its id in one dataset: should two datasets the token may use hold runs of one id, the first by name is shown (`dataset` says which). Reviewers and admins.',
    args: { id: t.arg.id({ required: true, description: 'The run\'s branchId.' }) },
    authScopes: (_root, args) => ({ $all: { reviewer: true, branch: String(args.id) } }),
    ...reach('authorized-root'),
    resolve: async (_root, args, ctx) => {
      const branchId = normalizeUuid(args.id);
      return branchId ? (await branchesById(ctx.db, [branchId], (name) => mayUseDataset(ctx.principal, name)))[0]! : null;
    },
  }),
  heldChanges: t.drizzleConnection({
    type: 'heldChanges',
    description: `The backlog, oldest first (by heldSince, then changeId), filtered by any of dataset, entity and branch; paged with first/after or last/before (at most ${MAX_HELD_PAGE}, default ${HELD_PAGE}). UNKNOWN_DATASET for a dataset that does not exist. Its size is Dataset.stats.heldChanges.`,
    args: {
      dataset: t.arg.string({ description: "Only this dataset's held changes (without it: every dataset's, for tokens that may use all)." }),
      entityId: t.arg.id({ description: "Only this entity's." }),
      branchId: t.arg.id({ description: "Only this run's." }),
    },
    defaultSize: HELD_PAGE,
    maxSize: MAX_HELD_PAGE,
    complexity: connectionPrice(HELD_PAGE, MAX_HELD_PAGE),
    // Without a dataset filter the backlog spans every dataset.
    authScopes: (_root, args) => ({ $all: args.dataset != null ? { reviewer: true, dataset: args.dataset } : { reviewer: true, allDatasets: true } }),
    ...reach('authorized-root'),
    resolve: async (query, _root, args, ctx) => {
      checkHeldCursor(args.after);
      checkHeldCursor(args.before);
      const entityId = normalizeUuid(args.entityId);
      const branchId = normalizeUuid(args.branchId);
      if (args.dataset != null) await knownDataset(ctx, args.dataset);
      // A filter that can name nothing (a malformed id) matches nothing.
      if ((args.entityId && !entityId) || (args.branchId && !branchId)) return [];
      return ctx.db.query.heldChanges.findMany(
        query({
          where: { ...(args.dataset ? { datasetName: args.dataset } : {}), ...(entityId ? { entityId } : {}), ...(branchId ? { branchId } : {}) },
          // The held_since index gives the order, so only the page's rows (and what is selected
          // under them) are read: ordered by an expression, every held change's would be.
          orderBy: { heldSince: 'asc', changeId: 'asc' },
        }),
      );
    },
  },
  { description: 'A page of the backlog, oldest first.' },
  { description: 'One held change, with its cursor.' }),
}));

/** A flush answers with what it forced: counted in full, listed up to this many. */
export const FLUSH_LISTED = 500;

/** The part of a flush run's result its answer shows. */
type FlushAnswer = Pick<FlushResult, 'forced' | 'released' | 'listed'>;

const BacklogFlushRef = builder.objectRef<FlushAnswer>('BacklogFlush').implement({
  description: `What a forced flush did: how many held changes it forced and released, and the first ${FLUSH_LISTED} forced changes (every change is in the backlogFlushed events).`,
  fields: (t) => ({
    forced: t.exposeInt('forced', { complexity: IN_HAND, description: 'Held changes it forced (applied, or refused when they could not be).' }),
    released: t.exposeInt('released', { complexity: IN_HAND, description: 'Held successors released right after the changes it forced (applied, or refused when they could not be).' }),
    changes: t.field({
      type: [ChangeResultRef],
      description: `The first ${FLUSH_LISTED} forced changes, oldest first, each with the successors it released.`,
      complexity: { field: IN_HAND, multiplier: FLUSH_LISTED },
      resolve: (a) => a.listed,
    }),
    truncated: t.boolean({ complexity: IN_HAND, description: `More than ${FLUSH_LISTED} were forced: \`changes\` lists the first ${FLUSH_LISTED}.`, resolve: (a) => a.forced > a.listed.length }),
  }),
});

builder.mutationFields((t) => ({
  flushBacklog: t.field({
    type: BacklogFlushRef,
    description: `Forces held changes older than \`olderThanSeconds\` (default: the hold timeout; 0: all) now, oldest first, 500 per transaction, each transaction's events published as it commits. Answers how many it forced and released, and lists the first ${FLUSH_LISTED} forced changes with the successors each released. A server shutting down ends it after the transaction under way; what is left stays held.`,
    args: {
      olderThanSeconds: t.arg.int({ required: false, description: 'Only changes held at least this long (default: the hold timeout; 0: all).' }),
      dataset: t.arg.string({ required: false, description: "Only this dataset's held changes." }),
      changeId: t.arg.string({ required: false, description: 'Only this held change (and the successors it releases).' }),
    },
    authScopes: { admin: true },
    resolve: async (_root, args, ctx) => {
      const changeId = args.changeId == null ? undefined : changeKey(args.changeId);
      // A filter that can name nothing (a malformed name or id) forces nothing.
      if ((args.dataset != null && validateName(args.dataset)) || changeId === null) return { forced: 0, released: 0, listed: [] };
      const olderThanSeconds = Math.max(0, args.olderThanSeconds ?? ctx.holdTimeoutSeconds);
      // Each batch is published as it commits; a shutdown ends the flush after the batch it is in.
      const result = await flushBacklog(ctx.db, { olderThanSeconds, dataset: args.dataset ?? undefined, changeId, onBatch: ctx.publish, signal: ctx.closing, listed: FLUSH_LISTED });
      ctx.observer.flushed(result);
      return result;
    },
  }),
}));
