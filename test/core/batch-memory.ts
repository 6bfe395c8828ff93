import { createHash } from 'node:crypto';
import { batchKeys, historyNeeds, originNeeds, type BatchChange, type BatchFacts, type DatasetRecord, type EntityRecord, type HeldRecord, type HistoryRow, type PriorRecord, type RunMember, type SubsetRow, type SubsetToken, type VersionRecord } from '../../src/core/batch-facts.js';
import { planBatch, planForce, type BatchPlan, type BatchWrites, type ChangeRow } from '../../src/core/batch-plan.js';
import { asStoredJson, scrubNul } from '../../src/core/json.js';
import type { EntityOrigin } from '../../src/core/placement.js';
import { DEFAULT_LIMITS, type ChangeInput, type Limits } from '../../src/core/types.js';
import { changeKey, deepestValue, isValidDeviceId, isValidLocalId, normalizePayload, normalizeUuid, validateChange, validateName, type Validation } from '../../src/core/validate.js';

/**
 * An in-memory stand-in for the tables the write path reads and writes (no database): facts are
 * loaded as src/sync/batch-store.ts loadFacts loads them, plans written as its persist() writes
 * them, and changes prepared as src/sync/submit-changes.ts prepares them. Everything crossing the
 * boundary is copied through JSON, as jsonb would, so the plan never shares objects with the store.
 */

export interface MemoryStore {
  datasets: Map<string, DatasetRecord>;
  entities: Map<string, EntityRecord>;
  /** Commit order. */
  versions: VersionRecord[];
  held: (HeldRecord & { heldSince: number })[];
  changes: ChangeRow[];
  localIds: Map<string, string>;
  /** api_tokens with a subset, and the subset log their versions wrote. */
  tokens: SubsetToken[];
  subsetLog: SubsetRow[];
  tick: number;
}

export const uuid = (prefix: number, n: number): string => `${prefix.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

export function newStore(datasets: Record<string, string[]> = { trees: ['height', 'note', 'age'] }): MemoryStore {
  const store: MemoryStore = { datasets: new Map(), entities: new Map(), versions: [], held: [], changes: [], localIds: new Map(), tokens: [], subsetLog: [], tick: 0 };
  Object.entries(datasets).forEach(([name, properties], i) => store.datasets.set(name, { id: uuid(0xd5, i + 1), name, properties }));
  return store;
}

const copy = <T>(v: T): T => asStoredJson(v);

/** src/sync/local-ids.ts localBranchId (copied: that module needs the database). */
export function localBranchId(entityId: string): string {
  const h = createHash('sha1').update(`entity-sync/local-branch\u0001${entityId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

/** submit-changes.ts nameByLocalIds: a local id names its entity through a mapping minted at first sight. */
function nameByLocalId(store: MemoryStore, i: ChangeInput): ChangeInput {
  const mappable = !i.entityId && !!i.deviceId && isValidDeviceId(i.deviceId) && isValidLocalId(i.localId) && validateName(i.dataset) === null;
  if (!mappable) return i;
  const key = JSON.stringify([i.dataset, i.deviceId, i.localId]);
  if (!store.localIds.has(key)) store.localIds.set(key, uuid(0x10ca1, store.localIds.size + 1));
  return { ...i, entityId: store.localIds.get(key)! };
}

/** submit-changes.ts prepare() and recordOf(). */
export function prepare(input: ChangeInput, limits: Limits = DEFAULT_LIMITS): BatchChange {
  const validation: Validation = validateChange(input, limits);
  const unstorable = !validation.ok && (validation.error.code === 'TOO_LARGE' || deepestValue(input) !== null);
  const payload = asStoredJson(scrubNul(unstorable ? { ...normalizePayload({ ...input, data: null, operations: null }), label: null, truncated: true } : normalizePayload(input)));
  const key = changeKey(scrubNul(String(input.id)))!;
  const addressable = key.length > 0 && key.length <= 200;
  const record = {
    changeId: addressable ? key : key.slice(0, 200),
    deviceId: scrubNul(typeof input.deviceId === 'string' ? input.deviceId : null),
    datasetName: scrubNul(String(input.dataset)),
    entityId: validation.ok ? validation.change.entityId : normalizeUuid(input.entityId),
    action: scrubNul(String(input.action)),
    payload,
  };
  const change = validation.ok ? validation.change : null;
  const implicitBranch = change && change.localId && change.deviceId && !change.branchId ? localBranchId(change.entityId) : null;
  return { key, addressable, record, validation, implicitBranch, localId: input.localId ?? null };
}

interface Keys {
  changeKeys: readonly string[];
  datasetNames: readonly string[];
  entityIds: readonly string[];
  branchIds: readonly string[];
  heldOfEntities: readonly string[];
  submitter?: string | null;
}
type Needs = (held: readonly HeldRecord[], entities: ReadonlyMap<string, EntityRecord>) => { history: Map<string, number>; origins: readonly string[]; offlineRuns: readonly string[] };

/** batch-store.ts loadFacts, on the store. */
export function loadFacts(store: MemoryStore, keys: Keys, needs: Needs): BatchFacts {
  const priors = new Map<string, PriorRecord>();
  for (const c of store.changes) {
    if (!c.original || !keys.changeKeys.includes(c.changeId)) continue;
    const v = store.versions.find((x) => x.entityId === c.entityId && x.version === c.version);
    const h = store.held.find((x) => x.changeId === c.changeId);
    priors.set(c.changeId, {
      outcome: c.outcome,
      entityId: c.entityId,
      version: c.version,
      errorCode: c.errorCode,
      errorMessage: c.errorMessage,
      payload: copy(c.payload),
      conflict: v?.conflict ?? null,
      conflictingProperties: v ? [...v.conflictingProperties] : [],
      waitsFor: h ? h.waitsFor : null,
    });
  }
  const entities = new Map(keys.entityIds.flatMap((id) => (store.entities.has(id) ? [[id, copy(store.entities.get(id)!)] as const] : [])));
  const names = new Set(keys.datasetNames);
  const held = store.held
    .filter((h) => keys.branchIds.includes(h.branchId) || keys.heldOfEntities.includes(h.entityId))
    .sort((a, b) => a.heldSince - b.heldSince || (a.changeId < b.changeId ? -1 : 1))
    .map(({ heldSince: _h, ...h }) => copy(h));
  for (const h of held) names.add(h.datasetName);
  const datasets = new Map([...names].flatMap((n) => (store.datasets.has(n) ? [[n, copy(store.datasets.get(n)!)] as const] : [])));
  const need = needs(held, entities);
  const offlineRuns = new Map<string, string[]>();
  for (const id of need.offlineRuns) {
    const runs = [...new Set(store.versions.filter((v) => v.entityId === id && v.trunkVersion === null && v.branchId !== null).sort((a, b) => a.version - b.version).map((v) => v.branchId!))];
    if (runs.length > 0) offlineRuns.set(id, runs);
  }
  const origins = new Map<string, EntityOrigin>();
  for (const id of need.origins) {
    const v = store.versions.find((x) => x.entityId === id && x.version === 1);
    if (v) origins.set(id, copy({ version: 1, action: v.action, source: v.source, branchId: v.branchId, conflict: v.conflict, changed: v.changed, deviceId: v.deviceId }));
  }
  const history = new Map<string, HistoryRow[]>();
  for (const [id, first] of need.history) {
    const rows = store.versions
      .filter((v) => v.entityId === id && v.version >= first)
      .sort((a, b) => a.version - b.version)
      .map((v) => copy({ entityId: v.entityId, version: v.version, branchId: v.branchId, label: v.label, data: v.data, changed: v.changed }));
    if (rows.length > 0) history.set(id, rows);
  }
  const runIds = new Set([...keys.branchIds, ...held.map((h) => h.branchId), ...[...offlineRuns.values()].flat()]);
  const runs = new Map<string, RunMember[]>();
  for (const v of [...store.versions].sort((a, b) => a.version - b.version)) {
    if (!v.branchId || !runIds.has(v.branchId)) continue;
    const datasetId = store.entities.get(v.entityId)!.datasetId;
    const m: RunMember = copy({ branchId: v.branchId, datasetId, entityId: v.entityId, version: v.version, baseVersion: v.baseVersion ?? 0, trunkVersion: v.trunkVersion, conflict: v.conflict, source: v.source, changed: v.changed, deviceId: v.deviceId });
    runs.set(v.branchId, [...(runs.get(v.branchId) ?? []), m]);
  }
  const written = new Set([...keys.datasetNames, ...held.map((h) => h.datasetName)]);
  const subsetTokens = store.tokens.filter((t) => t.datasets.some((d) => written.has(d))).map(copy);
  const mine = subsetTokens.find((t) => t.tokenId === keys.submitter);
  const submitter = mine
    ? { tokenId: mine.tokenId, seen: new Set(store.subsetLog.filter((r) => r.tokenId === mine.tokenId && r.kind !== 'LEFT' && keys.entityIds.includes(r.entityId)).map((r) => r.entityId)) }
    : null;
  return deepFreeze({ subsetTokens, submitter, datasets, entities, priors, runs, held, history, historyFrom: need.history, origins, offlineRuns });
}

/** The facts submit-changes.ts runBatch loads for a batch. */
export function factsFor(store: MemoryStore, batch: readonly BatchChange[], submitter: string | null = null): BatchFacts {
  const keys = batchKeys(batch);
  const creates = batch.flatMap((c) => (c.validation.ok && c.validation.change.action === 'CREATE' && !c.validation.change.branchId ? [c.validation.change.entityId] : []));
  return loadFacts(store, { ...keys, heldOfEntities: creates, submitter }, (held, entities) => ({ history: historyNeeds(batch, held, entities), ...originNeeds(batch, held) }));
}

/** batch-store.ts persist(): the statements in its order. */
export function applyWrites(store: MemoryStore, w: BatchWrites): void {
  for (const c of w.changes) {
    if (c.original && store.changes.some((x) => x.original && x.changeId === c.changeId)) throw new Error(`duplicate original change row ${c.changeId}`);
    store.changes.push(copy(c));
  }
  for (const e of w.entities) store.entities.set(e.id, copy(e));
  for (const v of w.versions) {
    if (store.versions.some((x) => x.entityId === v.entityId && x.version === v.version)) throw new Error(`version ${v.entityId} ${v.version} exists`);
    store.versions.push(copy(v));
  }
  store.subsetLog.push(...w.subsetRows.map(copy));
  store.held = store.held.filter((h) => !w.heldDeleted.includes(h.changeId));
  for (const h of w.heldInserted) {
    if (store.held.some((x) => x.changeId === h.changeId)) throw new Error(`held ${h.changeId} exists`);
    store.held.push({ ...copy(h), heldSince: store.tick++ });
  }
  for (const o of w.outcomes) {
    const row = store.changes.find((c) => c.original && c.changeId === o.changeId);
    if (row) Object.assign(row, { outcome: o.outcome, version: o.version, errorCode: o.errorCode, errorMessage: o.errorMessage });
  }
}

/** submitChanges for one batch: local ids named, prepared, planned and written. */
export function submit(store: MemoryStore, inputs: readonly ChangeInput[], limits: Limits = DEFAULT_LIMITS, submitter: string | null = null): BatchPlan {
  const batch = inputs.map((i) => prepare(nameByLocalId(store, i), limits));
  const plan = planBatch(batch, factsFor(store, batch, submitter));
  applyWrites(store, plan.writes);
  return plan;
}

/** flush-backlog.ts forceTx: held changes forced, oldest first as given. */
export function force(store: MemoryStore, changeIds: readonly string[]): BatchPlan {
  const entityIds = [...new Set(changeIds.flatMap((id) => store.held.filter((h) => h.changeId === id).map((h) => h.entityId)))];
  const facts = loadFacts(store, { changeKeys: [], datasetNames: [], entityIds, branchIds: [], heldOfEntities: entityIds }, (held, entities) => ({
    history: historyNeeds([], held, entities),
    ...originNeeds([], held),
  }));
  const plan = planForce(changeIds, facts);
  applyWrites(store, plan.writes);
  return plan;
}

/** Held change ids, oldest first (the flush's order). */
export const heldIds = (store: MemoryStore): string[] => [...store.held].sort((a, b) => a.heldSince - b.heldSince).map((h) => h.changeId);

/** The store without what differs by when it was written. */
export function snapshot(store: MemoryStore) {
  return {
    entities: [...store.entities.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
    versions: store.versions,
    held: [...store.held].sort((a, b) => a.heldSince - b.heldSince).map(({ heldSince: _h, ...h }) => h),
    changes: store.changes,
  };
}

function deepFreeze<T>(v: T): T {
  if (v instanceof Map) {
    for (const [k, x] of v) {
      deepFreeze(k);
      deepFreeze(x);
    }
    return v;
  }
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
