import { and, eq, gt } from 'drizzle-orm';
import { applyChange, touchedProperties } from '../core/apply.js';
import { classifyConflict, strongestConflict } from '../core/conflict.js';
import { changeError, DomainError } from '../core/errors.js';
import { sameJson, scrubNul } from '../core/json.js';
import {
  DEFAULT_LIMITS,
  type ChangeError,
  type ChangeInput,
  type ChangeOutcome,
  type ConflictType,
  type Limits,
  type ValidChange,
} from '../core/types.js';
import { isUuid, normalizePayload, undeclaredProperties, validateChange } from '../core/validate.js';
import { changes } from '../db/changes.js';
import type { Db, Tx } from '../db/client.js';
import { datasets } from '../db/datasets.js';
import { entities, entityVersions } from '../db/entities.js';
import type { SyncEvent } from './events.js';
import { lockChangeAndEntity } from './locks.js';

export interface ChangeResult {
  changeId: string;
  outcome: ChangeOutcome;
  /** For a DUPLICATE: what the first submission of this change came to. */
  originalOutcome: ChangeOutcome | null;
  entityId: string | null;
  version: number | null;
  conflict: ConflictType | null;
  conflictingProperties: string[];
  error: ChangeError | null;
}

export interface SubmitResult {
  results: ChangeResult[];
  events: SyncEvent[];
}

/** Ids longer than this cannot be keys (btree entries are bounded); such changes are rejected. */
const MAX_CHANGE_KEY = 200;

/**
 * Processes a batch in input order, one transaction per change, so a create and its update
 * in one batch work and one bad change never undoes its neighbours. Returns the events for
 * the caller to publish after the commits.
 */
export async function submitChanges(db: Db, inputs: readonly ChangeInput[], limits: Limits = DEFAULT_LIMITS): Promise<SubmitResult> {
  if (inputs.length === 0) throw new DomainError('EMPTY_BATCH');
  if (inputs.length > limits.maxBatch) throw new DomainError('BATCH_TOO_LARGE', `the batch holds ${inputs.length} changes; the limit is ${limits.maxBatch}`);
  const results: ChangeResult[] = [];
  const events: SyncEvent[] = [];
  for (const input of inputs) {
    const r = await processChange(db, input, limits);
    results.push(r.result);
    events.push(...r.events);
  }
  return { results, events };
}

interface Processed {
  result: ChangeResult;
  events: SyncEvent[];
}

function result(changeId: string, outcome: ChangeOutcome, fields: Partial<ChangeResult> = {}): ChangeResult {
  return { changeId, outcome, originalOutcome: null, entityId: null, version: null, conflict: null, conflictingProperties: [], error: null, ...fields };
}

async function processChange(db: Db, input: ChangeInput, limits: Limits): Promise<Processed> {
  const validation = validateChange(input, limits);
  const tooLarge = !validation.ok && validation.error.code === 'TOO_LARGE';
  // What is recorded: the whole payload, except for an oversized one (its size is the point).
  const payload = scrubNul(tooLarge ? { ...normalizePayload(input), label: null, data: null, truncated: true } : normalizePayload(input));
  const rawKey = scrubNul(String(input.id));
  const key = isUuid(rawKey) ? rawKey.toLowerCase() : rawKey;
  const addressable = key.length > 0 && key.length <= MAX_CHANGE_KEY;
  const record = {
    changeId: addressable ? key : key.slice(0, MAX_CHANGE_KEY),
    deviceId: scrubNul(input.deviceId ?? null),
    datasetName: scrubNul(input.dataset),
    entityId: validation.ok ? validation.change.entityId : isUuid(input.entityId) ? input.entityId : null,
    action: scrubNul(String(input.action)),
    payload,
  };

  return db.transaction(async (tx) => {
    await lockChangeAndEntity(tx, key, validation.ok ? validation.change.entityId : null);

    if (addressable) {
      const [prior] = await tx.select().from(changes).where(and(eq(changes.changeId, key), eq(changes.original, true))).limit(1);
      if (prior) {
        if (!sameJson(prior.payload, payload)) {
          const error = changeError('CHANGE_ID_REUSED', key);
          // Recorded beside the original (not as it), so the reused id's payload is not lost either.
          await tx.insert(changes).values({ ...record, original: false, outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() });
          return { result: result(key, 'REJECTED', { entityId: record.entityId, error }), events: [] };
        }
        const version = prior.entityId && prior.version ? await versionConflict(tx, prior.entityId, prior.version) : null;
        return {
          result: result(key, 'DUPLICATE', {
            originalOutcome: prior.outcome,
            entityId: prior.entityId,
            version: prior.version,
            conflict: version?.conflict ?? null,
            conflictingProperties: version?.conflictingProperties ?? [],
            error: prior.errorCode ? { code: prior.errorCode, message: prior.errorMessage ?? '' } : null,
          }),
          events: [],
        };
      }
    }

    const reject = async (error: ChangeError): Promise<Processed> => {
      await tx.insert(changes).values({ ...record, original: addressable, outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() });
      return { result: result(key, 'REJECTED', { entityId: record.entityId, error }), events: [] };
    };

    if (!addressable) return reject(changeError('MALFORMED_ID', `id of ${key.length} characters`));
    if (!validation.ok) return reject(validation.error);
    const change = validation.change;

    const [dataset] = await tx.select().from(datasets).where(eq(datasets.name, change.dataset)).limit(1);
    if (!dataset) return reject(changeError('UNKNOWN_DATASET', `"${change.dataset}"`));
    const undeclared = undeclaredProperties(change.data, dataset.properties);
    if (undeclared.length > 0) return reject(changeError('UNKNOWN_PROPERTY', undeclared.join(', ')));

    const [entity] = await tx.select().from(entities).where(eq(entities.id, change.entityId)).limit(1);
    if (change.action === 'CREATE') {
      if (entity) return reject(changeError('ENTITY_EXISTS', change.entityId));
    } else {
      if (!entity) return reject(changeError('ENTITY_NOT_FOUND', change.entityId));
      if (entity.datasetId !== dataset.id) return reject(changeError('ENTITY_IN_OTHER_DATASET', change.entityId));
      if (entity.deleted) return reject(changeError('ENTITY_DELETED', change.entityId));
      const base = change.baseVersion ?? 0;
      if (base > entity.version) return reject(changeError('BASE_VERSION_AHEAD', `baseVersion ${base}, server version ${entity.version}`));
      if (change.trunkVersion !== null && change.trunkVersion > entity.version) {
        return reject(changeError('TRUNK_VERSION_AHEAD', `trunkVersion ${change.trunkVersion}, server version ${entity.version}`));
      }
    }

    return applyNow(tx, record, dataset.id, entity ?? null, change);
  });
}

type EntityRow = typeof entities.$inferSelect;
type ChangeRecord = Omit<typeof changes.$inferInsert, 'outcome'>;

async function versionConflict(tx: Tx, entityId: string, version: number) {
  const [row] = await tx
    .select({ conflict: entityVersions.conflict, conflictingProperties: entityVersions.conflictingProperties })
    .from(entityVersions)
    .where(and(eq(entityVersions.entityId, entityId), eq(entityVersions.version, version)))
    .limit(1);
  return row ?? null;
}

/** Applies a placed change as the next version and records it (DESIGN steps 3 and 4). */
async function applyNow(tx: Tx, record: ChangeRecord, datasetId: string, entity: EntityRow | null, change: ValidChange): Promise<Processed> {
  const unseen = entity && change.baseVersion !== null && change.baseVersion < entity.version
    ? await tx
        .select({ changed: entityVersions.changed })
        .from(entityVersions)
        .where(and(eq(entityVersions.entityId, change.entityId), gt(entityVersions.version, change.baseVersion)))
    : [];
  const verdict = classifyConflict(touchedProperties(change), unseen.map((v) => Object.keys(v.changed)));
  const next = applyChange(entity, change);
  const version = (entity?.version ?? 0) + 1;
  const now = new Date();

  // The entity row first: versions reference it.
  if (entity) {
    await tx
      .update(entities)
      .set({ label: next.label, data: next.data, version, deleted: next.deleted, conflict: strongestConflict(entity.conflict, verdict.conflict), updatedAt: now })
      .where(eq(entities.id, change.entityId));
  } else {
    await tx.insert(entities).values({ id: change.entityId, datasetId, label: next.label, data: next.data, version, conflict: verdict.conflict });
  }
  await tx.insert(entityVersions).values({
    entityId: change.entityId,
    version,
    appliedOn: entity ? entity.version : null,
    baseVersion: change.baseVersion,
    action: change.action,
    label: next.label,
    data: next.data,
    changed: next.changed,
    deleted: next.deleted,
    conflict: verdict.conflict,
    conflictingProperties: verdict.conflictingProperties,
    source: change.branchId ? 'IN_ORDER' : 'ONLINE',
    branchId: change.branchId,
    trunkVersion: change.trunkVersion,
    changeId: change.id,
    deviceId: change.deviceId,
  });
  await tx.insert(changes).values({ ...record, outcome: 'APPLIED', version, processedAt: now });
  const datasetName = change.dataset;

  const events: SyncEvent[] = [{ type: 'entityChanged', datasetName, entityId: change.entityId, version }];
  if (verdict.conflict) {
    events.push({ type: 'conflictDetected', datasetName, entityId: change.entityId, version, conflict: verdict.conflict, conflictingProperties: verdict.conflictingProperties });
  }
  return {
    result: result(change.id, 'APPLIED', { entityId: change.entityId, version, conflict: verdict.conflict, conflictingProperties: verdict.conflictingProperties }),
    events,
  };
}
