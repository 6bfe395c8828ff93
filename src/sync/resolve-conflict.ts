import { mayUseAllDatasets, mayUseDataset, type Principal } from '../core/auth.js';
import { changeError, DomainError } from '../core/errors.js';
import type { SyncEvent } from '../core/events.js';
import { checkEdit, checkNote, planResolve, planRestore, type ResolutionKind, type ReviewEdit } from '../core/review.js';
import { versionMoves } from '../core/subsets.js';
import { DEFAULT_LIMITS, type ChangeError, type Limits } from '../core/types.js';
import { normalizeUuid } from '../core/validate.js';
import type { Db } from '../db/client.js';
import { LOCK, lockAll, subsetTokensOf } from './batch-store.js';
import { withTransientRetry } from './retry.js';
import { writeOutbox } from './webhook-outbox.js';
import { heldDatasets, loadReviewEntities, newResolutionIds, reviewerOf, writeReviews, type ReviewWrite } from './review-store.js';

/**
 * A reviewer's verdicts (DESIGN "Settling a conflict"), one transaction each request: the locks of
 * every entity named, in one sorted statement; their state loaded in one; each item decided in
 * order by the pure rules (core/review.ts) against the state the items before it left; the
 * resolutions, versions and entities written together; the events returned for after the commit.
 */

/** The changeId of a version a reviewer writes (pulls show it): no client's, since theirs are UUIDs, and it names its resolution. */
export const reviewChangeId = (resolutionId: number): string => `review-${resolutionId}`;

export interface ReviewItem {
  kind: ResolutionKind;
  entityId: string;
  /** The entity version the reviewer looked at. */
  version: number;
  edit: ReviewEdit | null;
  note: string | null;
}

/** One item's answer: the resolution it recorded, or why not. */
export interface ReviewOutcome {
  /** The entity's id in canonical form (as given when it is not a UUID). */
  entityId: string;
  version: number;
  resolutionId: number | null;
  error: ChangeError | null;
}

/**
 * Decides and writes a list of reviews. An item of a dataset the principal may not use is
 * FORBIDDEN, and so is an id that names nothing when the principal is restricted to datasets (as
 * for every read by id): it learns nothing else.
 */
async function review(db: Db, principal: Principal, items: readonly ReviewItem[]): Promise<{ outcomes: ReviewOutcome[]; events: SyncEvent[] }> {
  const ids = [...new Set(items.map((i) => normalizeUuid(i.entityId)).filter((id): id is string => id !== null))].sort();
  return withTransientRetry(() =>
    db.transaction(async (tx) => {
      const locked = lockAll(tx, ids.map((key) => ({ space: LOCK.entity, key })));
      // Sent right behind the locks on the same connection: they read once the locks are held.
      const [, entities, reviewer] = await Promise.all([locked, loadReviewEntities(tx, ids), reviewerOf(tx, principal)]);
      const held = mayUseAllDatasets(principal) ? new Map<string, string>() : await heldDatasets(tx, ids.filter((id) => !entities.has(id)));
      const resolutionIds = await newResolutionIds(tx, items.length);
      const writes: ReviewWrite[] = [];
      const events: SyncEvent[] = [];
      const outcomes = items.map((item, n): ReviewOutcome => {
        const id = normalizeUuid(item.entityId);
        const answer = (error: ChangeError | null, resolutionId: number | null = null): ReviewOutcome => ({ entityId: id ?? item.entityId, version: item.version, resolutionId, error });
        const entity = id ? (entities.get(id) ?? null) : null;
        const dataset = entity?.datasetName ?? (id ? (held.get(id) ?? null) : null);
        if (!mayUseAllDatasets(principal) && !mayUseDataset(principal, dataset)) return answer(changeError('FORBIDDEN'));
        if (!id) return answer(changeError('MALFORMED_ID', `entityId "${item.entityId.slice(0, 60)}" is not a UUID`));
        const resolutionId = resolutionIds[n]!;
        const planned = item.kind === 'RESTORE' ? planRestore(entity, item.version, reviewChangeId(resolutionId)) : planResolve(entity, item.version, item.edit, reviewChangeId(resolutionId));
        if (!planned.ok) return answer(planned.error.code === 'ENTITY_NOT_FOUND' ? changeError('ENTITY_NOT_FOUND', id) : planned.error);
        const plan = planned.value;
        writes.push({ id: resolutionId, kind: item.kind, entity: entity!, atVersion: item.version, plan, reviewer, note: item.note });
        // The next item on this entity sees what this one left.
        entities.set(id, { ...entity!, ...plan.entity, ...(plan.resolvesUpTo !== null ? { openProperties: [], openVersions: 0 } : {}) });
        if (plan.version) events.push({ type: 'entityChanged', datasetName: entity!.datasetName, entityId: id, version: plan.version.version });
        if (item.kind === 'RESOLVE') events.push({ type: 'conflictResolved', datasetName: entity!.datasetName, entityId: id, version: plan.entity.version, resolutionId });
        return answer(null, resolutionId);
      });
      // A reviewer's version is a version like any other for the devices with a subset (DESIGN
      // "Subsets"): judged under the datasets' subset locks by the rule a batch's versions are,
      // each against the state the item before it left.
      const versioned = writes.filter((w) => w.plan.version !== null);
      const tokens = versioned.length > 0 ? await subsetTokensOf(tx, [...new Set(versioned.map((w) => w.entity.datasetName))].sort()) : [];
      const subsetRows = versioned.flatMap((w) =>
        versionMoves(tokens, { id: w.entity.datasetId, name: w.entity.datasetName }, w.entity.id, w.entity, w.plan.version!, w.plan.version!.version),
      );
      await writeReviews(tx, writes, subsetRows);
      // Webhooks hear of the verdicts in this transaction: nothing is sent for one rolled back.
      await writeOutbox(tx, events);
      return { outcomes, events };
    }),
  );
}

/** A note checked, or the typed error. */
function note(text: string | null | undefined): string | null {
  const checked = checkNote(text);
  if (!checked.ok) throw new DomainError(checked.error.code, checked.error.message);
  return checked.value;
}

/** A single verdict: its failure is the request's typed error. */
async function one(db: Db, principal: Principal, item: ReviewItem): Promise<{ entityId: string; resolutionId: number; events: SyncEvent[] }> {
  const { outcomes, events } = await review(db, principal, [item]);
  const [outcome] = outcomes;
  if (outcome!.error) throw new DomainError(outcome!.error.code, outcome!.error.message);
  return { entityId: outcome!.entityId, resolutionId: outcome!.resolutionId!, events };
}

export interface ResolveInput {
  entityId: string;
  version: number;
  values?: Record<string, unknown> | null;
  label?: string | null;
  note?: string | null;
}

/**
 * resolveConflict: the entity's open conflicts are marked resolved at `version`, after the chosen
 * values (if any) are written as a new version from the reviewer; STALE_VERSION when the entity
 * has moved past it, and then nothing changes.
 */
export async function resolveConflict(db: Db, principal: Principal, input: ResolveInput, limits: Limits = DEFAULT_LIMITS) {
  if (!normalizeUuid(input.entityId)) throw new DomainError('MALFORMED_ID', `entityId "${input.entityId.slice(0, 60)}" is not a UUID`);
  const checked = checkEdit(input.values, input.label, limits);
  if (!checked.ok) throw new DomainError(checked.error.code, checked.error.message);
  return one(db, principal, { kind: 'RESOLVE', entityId: input.entityId, version: input.version, edit: checked.value, note: note(input.note) });
}

/** restoreEntity: a deleted entity comes back as a new version from the reviewer, at the version the reviewer looked at. */
export async function restoreEntity(db: Db, principal: Principal, input: { entityId: string; version: number; note?: string | null }) {
  if (!normalizeUuid(input.entityId)) throw new DomainError('MALFORMED_ID', `entityId "${input.entityId.slice(0, 60)}" is not a UUID`);
  return one(db, principal, { kind: 'RESTORE', entityId: input.entityId, version: input.version, edit: null, note: note(input.note) });
}

/**
 * resolveConflicts: many entities marked resolved in one request, each item answered on its own;
 * bounded like a batch of changes. One note for all.
 */
export async function resolveConflicts(db: Db, principal: Principal, items: readonly { entityId: string; version: number }[], text: string | null | undefined, limits: Limits = DEFAULT_LIMITS) {
  if (items.length === 0) throw new DomainError('EMPTY_BATCH', 'no items to resolve');
  if (items.length > limits.maxBatch) throw new DomainError('BATCH_TOO_LARGE', `${items.length} items; the limit is ${limits.maxBatch}`);
  const shared = note(text);
  return review(db, principal, items.map((i) => ({ kind: 'RESOLVE' as const, entityId: i.entityId, version: i.version, edit: null, note: shared })));
}
