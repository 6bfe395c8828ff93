import type { BatchChange } from '../core/batch-facts.js';
import { batchKeys, earlyNeeds, historyNeeds, originNeeds } from '../core/batch-facts.js';
import { planBatch } from '../core/batch-plan.js';
import { changeError, DomainError } from '../core/errors.js';
import type { SyncEvent } from '../core/events.js';
import { scrubNul, storedJson } from '../core/json.js';
import { changeResult, type ChangeResult } from '../core/results.js';
import { DEFAULT_LIMITS, type ChangeInput, type Limits } from '../core/types.js';
import { changeKey, deepestValue, isValidDeviceId, isValidLocalId, normalizeUuid, normalizePayload, validateChange, validateName, type Validation } from '../core/validate.js';
import { changes } from '../db/changes.js';
import type { Db } from '../db/client.js';
import { LOCK, loadFacts, lockAll, persist, type FactKeys, type HistoryPlanner } from './batch-store.js';
import { localBranchId, resolveLocalIds } from './local-ids.js';
import { failureMessage, isTransient, withTransientRetry } from './retry.js';

export interface SubmitResult {
  results: ChangeResult[];
  events: SyncEvent[];
  /** The batch failed as a whole for an unexpected reason and was processed change by change (a poison change, or a bug). */
  oneByOne: boolean;
  /** Some event went into the webhook outbox (a webhook wants it): the delivery worker has work. */
  outboxed: boolean;
}

/** Ids longer than this cannot be keys (btree entries are bounded); such changes are rejected. */
const MAX_CHANGE_KEY = 200;

/**
 * Processes a batch in one transaction (DESIGN "Processing a change"): the locks of every change,
 * entity and run it touches, in one sorted order; what it needs, loaded in a few statements; every
 * change decided in input order by the pure plan (core planBatch); the plan written in a few
 * multi-row statements. Transient failures are retried; a batch that fails for any other reason is
 * processed again change by change, so one poison change is recorded alone and the rest land.
 * Returns the events for the caller to publish after the commit.
 */
export async function submitChanges(
  db: Db,
  inputs: readonly ChangeInput[],
  limits: Limits = DEFAULT_LIMITS,
  /** The API token that sends the batch: with a subset, it changes only what it could see (DESIGN "Subsets"). */
  submitter: string | null = null,
): Promise<SubmitResult> {
  if (inputs.length === 0) throw new DomainError('EMPTY_BATCH');
  if (inputs.length > limits.maxBatch) throw new DomainError('BATCH_TOO_LARGE', `the batch holds ${inputs.length} changes; the limit is ${limits.maxBatch}`);
  const named = await withTransientRetry(() => nameByLocalIds(db, inputs));
  const batch = named.map((input) => prepare(input, limits));
  try {
    return await withTransientRetry(() => runBatch(db, batch, submitter));
  } catch (cause) {
    if (isTransient(cause)) throw cause;
    const results: ChangeResult[] = [];
    const events: SyncEvent[] = [];
    let outboxed = false;
    for (const [i, change] of batch.entries()) {
      const one = await withTransientRetry(() => runBatch(db, [change], submitter)).catch((error: unknown) => {
        if (isTransient(error)) throw error;
        return recordFailure(db, inputs[i]!, change, error);
      });
      results.push(...one.results);
      events.push(...one.events);
      outboxed ||= one.outboxed;
    }
    return { results, events, oneByOne: true, outboxed };
  }
}

/** One transaction: lock, load, decide, write. */
async function runBatch(db: Db, batch: readonly BatchChange[], submitter: string | null): Promise<SubmitResult> {
  return db.transaction(async (tx) => {
    const keys = factKeys(batch, submitter);
    // The locks go out first and the loads right behind them, in one round trip: the
    // connection runs them in order, so every load reads under the locks (see loadFacts).
    const locked = lockAll(tx, [
      ...keys.changeKeys.map((key) => ({ space: LOCK.change, key })),
      ...keys.entityIds.map((key) => ({ space: LOCK.entity, key })),
      ...keys.branchIds.map((key) => ({ space: LOCK.run, key })),
    ]);
    const facts = await loadFacts(tx, keys, factNeeds(batch), locked);
    const plan = planBatch(batch, facts);
    const outboxed = await persist(tx, plan.writes, plan.events);
    return { results: plan.results, events: plan.events, oneByOne: false, outboxed: outboxed > 0 };
  });
}

/** What a batch loads its facts by (loadFacts): its keys, whose held changes count, and what its own changes need. */
export function factKeys(batch: readonly BatchChange[], submitter: string | null): FactKeys {
  // Held changes of every entity a branchless create names: it may be the create of their run.
  const creates = batch.flatMap((c) => (c.validation.ok && c.validation.change.action === 'CREATE' && !c.validation.change.branchId ? [c.validation.change.entityId] : []));
  return { ...batchKeys(batch), heldOfEntities: creates, submitter, early: earlyNeeds(batch) };
}

/** Which versions and origins a batch's rules will read, once its held changes and entities are known. */
export const factNeeds =
  (batch: readonly BatchChange[]): HistoryPlanner =>
  (held, entities) => ({ history: historyNeeds(batch, held, entities), ...originNeeds(batch, held) });

/**
 * A local id names its entity through the device's mapping in its dataset, minted at first sight
 * for the whole batch at once (one insert, one read). Only ids that can be keys are looked up;
 * the others are rejected by validation.
 */
async function nameByLocalIds(db: Db, inputs: readonly ChangeInput[]): Promise<ChangeInput[]> {
  const mappable = (i: ChangeInput) => !i.entityId && !!i.deviceId && isValidDeviceId(i.deviceId) && isValidLocalId(i.localId) && validateName(i.dataset) === null;
  const wanted = inputs.filter(mappable).map((i) => ({ datasetName: i.dataset, deviceId: i.deviceId!, localId: i.localId! }));
  if (wanted.length === 0) return [...inputs];
  const minted = await resolveLocalIds(db, wanted);
  return inputs.map((i) => (mappable(i) ? { ...i, entityId: minted.get(localKey(i.dataset, i.deviceId!, i.localId!))! } : i));
}

const localKey = (datasetName: string, deviceId: string, localId: string) => JSON.stringify([datasetName, deviceId, localId]);

/** A change as the plan takes it: validated, keyed, and its change log row before the outcome. */
export function prepare(input: ChangeInput, limits: Limits = DEFAULT_LIMITS): BatchChange {
  const validation = validateChange(input, limits);
  const { key, addressable, record } = recordOf(input, validation);
  const change = validation.ok ? validation.change : null;
  // A local-id change without a run may join the device's implicit run of that local id.
  const implicitBranch = change && change.localId && change.deviceId && !change.branchId ? localBranchId(change.entityId) : null;
  return { key, addressable, record, validation, implicitBranch, localId: input.localId ?? null };
}

/** The change log row of a change, before its outcome is known. */
function recordOf(input: ChangeInput, validation: Validation | null) {
  // What is recorded: the whole payload as jsonb will return it (so a resend compares equal),
  // except for an oversized or absurdly nested one (its size is the point, and it cannot even
  // be serialised safely).
  const unstorable = validation === null || (!validation.ok && (validation.error.code === 'TOO_LARGE' || deepestValue(input) !== null));
  const payload = storedJson(unstorable ? { ...normalizePayload({ ...input, data: null, operations: null }), label: null, truncated: true } : normalizePayload(input));
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

/**
 * An unexpected failure of one change alone (a bug, a value the database refuses): the change is
 * not lost silently. It is recorded as a non-original row, so a resend of the same id is
 * processed afresh, and answered REJECTED INTERNAL_ERROR.
 */
async function recordFailure(db: Db, input: ChangeInput, change: BatchChange, cause: unknown): Promise<SubmitResult> {
  const { record } = recordOf(input, null);
  const error = changeError('INTERNAL_ERROR', 'resend the change');
  const detail = failureMessage(cause);
  await db
    .insert(changes)
    .values({ ...record, original: false, outcome: 'REJECTED', errorCode: error.code, errorMessage: `${error.message} (${detail})`, processedAt: new Date() })
    .catch(() => {
      throw cause;
    });
  const result = changeResult(change.key, 'REJECTED', { entityId: record.entityId, dataset: record.datasetName, error });
  if (change.localId !== null) result.localId = change.localId;
  return { results: [result], events: [], oneByOne: false, outboxed: false };
}
