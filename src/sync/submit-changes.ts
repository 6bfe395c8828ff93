import { and, eq } from 'drizzle-orm';
import { changeError, DomainError } from '../core/errors.js';
import { asStoredJson, scrubNul } from '../core/json.js';
import { DEFAULT_LIMITS, type ChangeError, type ChangeInput, type Limits } from '../core/types.js';
import { changeKey, deepestValue, isValidDeviceId, isValidLocalId, normalizeUuid, normalizePayload, samePayload, validateChange, validateName, type Validation } from '../core/validate.js';
import { changes, isOriginal, heldChanges } from '../db/changes.js';
import type { Db, Tx } from '../db/client.js';
import { entityVersions } from '../db/entities.js';
import { isTransient, withTransientRetry } from './retry.js';
import { yieldToEventLoop } from './yield.js';
import type { SyncEvent } from '../core/events.js';
import { resolveLocalId } from './local-ids.js';
import { lockChangeAndEntity } from './locks.js';
import { changeResult, placeNewChange, type ChangeResult, type DatasetCache, type Processed } from './process.js';


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
  // Datasets seen in this batch: one lookup per dataset, not per change (names never change,
  // properties only grow; a batch sees the declarations as they were when it met them).
  const datasetsSeen: DatasetCache = new Map();
  for (const input of inputs) {
    const r = await processChange(db, input, limits, datasetsSeen);
    if (input.localId != null) r.result.localId = input.localId;
    results.push(r.result);
    events.push(...r.events);
    await yieldToEventLoop();
  }
  return { results, events };
}

/**
 * One change, answered whatever happens to it: a transient database failure (a serialization
 * failure, a deadlock, a cut connection, a commit whose answer was lost) is retried, and a
 * retry of a change that did commit finds it and answers DUPLICATE, so no answer contradicts
 * what was committed; a database that stays unreachable fails the request (retryable as a
 * whole, never a rejection). Any other failure is a fault of this change alone: it is recorded
 * as INTERNAL_ERROR and the rest of the batch goes on.
 */
async function processChange(db: Db, input: ChangeInput, limits: Limits, datasetsSeen: DatasetCache): Promise<Processed> {
  return withTransientRetry(async () => {
    try {
      return await processOne(db, input, limits, datasetsSeen);
    } catch (cause) {
      if (isTransient(cause)) throw cause;
      return recordFailure(db, input, cause);
    }
  });
}

/** The change log row of a change, before its outcome is known. */
function recordOf(input: ChangeInput, validation: Validation | null) {
  // What is recorded: the whole payload as jsonb will return it (so a resend compares equal),
  // except for an oversized or absurdly nested one (its size is the point, and it cannot even
  // be serialised safely).
  const unstorable = validation === null || (!validation.ok && (validation.error.code === 'TOO_LARGE' || deepestValue(input) !== null));
  const payload = asStoredJson(scrubNul(unstorable ? { ...normalizePayload({ ...input, data: null, operations: null }), label: null, truncated: true } : normalizePayload(input)));
  // Scrubbed first: what is recorded can hold no NUL, so it always has a key.
  const key = changeKey(scrubNul(String(input.id)))!;
  const addressable = key.length > 0 && key.length <= MAX_CHANGE_KEY;
  const record = {
    changeId: addressable ? key : key.slice(0, MAX_CHANGE_KEY),
    deviceId: scrubNul(typeof input.deviceId === 'string' ? input.deviceId : null),
    datasetName: scrubNul(String(input.dataset)),
    entityId: validation?.ok ? validation.change.entityId : normalizeUuid(input.entityId),
    action: scrubNul(String(input.action)),
    payload,
  };
  return { key, addressable, record };
}

async function processOne(db: Db, input: ChangeInput, limits: Limits, datasetsSeen: DatasetCache): Promise<Processed> {
  // A local id names its entity through the device's mapping in its dataset (minted at first
  // sight). Only ids that can be keys are looked up; the others are rejected by validation.
  const mappable = !input.entityId && !!input.deviceId && isValidDeviceId(input.deviceId) && isValidLocalId(input.localId) && validateName(input.dataset) === null;
  const named = mappable ? { ...input, entityId: await resolveLocalId(db, input.deviceId!, input.localId!, input.dataset) } : input;
  const validation = validateChange(named, limits);
  const { key, addressable, record } = recordOf(input, validation);
  return processInTransaction(db, validation, key, addressable, record, datasetsSeen);
}

/**
 * An unexpected failure of one change (a bug, a value the database refuses): the change is not
 * lost silently. It is recorded as a non-original row, so a resend of the same id is processed
 * afresh, and answered REJECTED INTERNAL_ERROR.
 */
async function recordFailure(db: Db, input: ChangeInput, cause: unknown): Promise<Processed> {
  const { key, record } = recordOf(input, null);
  const error = changeError('INTERNAL_ERROR', 'resend the change');
  const detail = String((cause as Error)?.message ?? cause).slice(0, 200);
  await db
    .insert(changes)
    .values({ ...record, original: false, outcome: 'REJECTED', errorCode: error.code, errorMessage: `${error.message} (${detail})`, processedAt: new Date() })
    .catch(() => {
      throw cause;
    });
  return { result: changeResult(key, 'REJECTED', { entityId: record.entityId, error }), events: [] };
}

type ChangeRecord = Parameters<typeof placeNewChange>[1];

async function processInTransaction(db: Db, validation: Validation, key: string, addressable: boolean, record: ChangeRecord, datasetsSeen: DatasetCache): Promise<Processed> {
  return db.transaction(async (tx) => {
    await lockChangeAndEntity(tx, key, validation.ok ? validation.change.entityId : null, validation.ok ? validation.change.branchId : null);

    if (addressable) {
      const [prior] = await tx.select().from(changes).where(and(eq(changes.changeId, key), isOriginal)).limit(1);
      if (prior) {
        if (!samePayload(prior.payload, record.payload)) {
          const error = changeError('CHANGE_ID_REUSED', key);
          // Recorded beside the original (not as it), so the reused id's payload is not lost either.
          await tx.insert(changes).values({ ...record, original: false, outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() });
          return { result: changeResult(key, 'REJECTED', { entityId: record.entityId, error }), events: [] };
        }
        const version = prior.entityId && prior.version ? await versionConflict(tx, prior.entityId, prior.version) : null;
        const [held] = prior.outcome === 'HELD' ? await tx.select({ waitsFor: heldChanges.waitsFor }).from(heldChanges).where(eq(heldChanges.changeId, key)).limit(1) : [];
        return {
          result: changeResult(key, 'DUPLICATE', {
            originalOutcome: prior.outcome,
            entityId: prior.entityId,
            version: prior.version,
            conflict: version?.conflict ?? null,
            conflictingProperties: version?.conflictingProperties ?? [],
            waitsFor: held?.waitsFor ?? null,
            error: prior.errorCode ? { code: prior.errorCode, message: prior.errorMessage ?? '' } : null,
          }),
          events: [],
        };
      }
    }

    const reject = async (error: ChangeError): Promise<Processed> => {
      await tx.insert(changes).values({ ...record, original: addressable, outcome: 'REJECTED', errorCode: error.code, errorMessage: error.message, processedAt: new Date() });
      return { result: changeResult(key, 'REJECTED', { entityId: record.entityId, error }), events: [] };
    };

    if (!addressable) return reject(changeError('MALFORMED_ID', `id of ${key.length} characters`));
    if (!validation.ok) return reject(validation.error);
    return placeNewChange(tx, record, validation.change, datasetsSeen);
  });
}

async function versionConflict(tx: Tx, entityId: string, version: number) {
  const [row] = await tx
    .select({ conflict: entityVersions.conflict, conflictingProperties: entityVersions.conflictingProperties })
    .from(entityVersions)
    .where(and(eq(entityVersions.entityId, entityId), eq(entityVersions.version, version)))
    .limit(1);
  return row ?? null;
}

