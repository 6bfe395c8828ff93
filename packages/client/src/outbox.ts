import { parseOperations } from '../../../src/core/operations.js';
import type { OperationInput, PropertyValues } from '../../../src/core/types.js';
import type { ClientState, OutboxEntry, Run, WireChange } from './types.js';

/**
 * Local edits into the outbox, with the offline-run bookkeeping the server expects (DESIGN
 * "Processing a change"): a run of one entity begins at the first local edit after the last
 * pull of that entity, with a client-made branchId and trunkVersion = the last pulled server
 * version (null when the run begins with an offline create). Its first change has baseVersion
 * = trunkVersion, each later one +1; a run that begins with a create numbers its updates 1, 2, …
 * Pure: mutates the state it is given and returns the new change.
 */

export function emptyState(): ClientState {
  return { version: 1, datasets: [], cursors: {}, entities: {}, runs: {}, localIds: {}, outbox: [] };
}

const newId = (): string => globalThis.crypto.randomUUID();

/** The key of an entity reference: its entityId, or `local:<localId>` while the server has minted none. */
export function entityKey(state: ClientState, ref: string): string {
  if (Object.hasOwn(state.localIds, ref)) {
    const minted = state.localIds[ref];
    return minted ?? `local:${ref}`;
  }
  return ref;
}

/** Whether an outbox entry is about the entity with this key. */
export function entryIsAbout(state: ClientState, entry: OutboxEntry, key: string): boolean {
  const c = entry.change;
  if (c.entityId !== undefined) return c.entityId === key;
  return c.localId !== undefined && entityKey(state, c.localId) === key;
}

function checkOperations(ops: OperationInput[]): void {
  const parsed = parseOperations(ops);
  if (!parsed.ok) throw new Error(parsed.error.message);
}

function track(state: ClientState, dataset: string): void {
  if (!state.datasets.includes(dataset)) state.datasets.push(dataset);
}

export interface CreateInput {
  label: string;
  data?: PropertyValues;
  /** Name the entity by a local id (scoped to this device); the server mints its UUID. */
  localId?: string;
  /** Or choose its UUID; by default the client makes one. */
  entityId?: string;
}

/** Queues a create; returns the key the app names the entity by (the entityId, or the localId). */
export function queueCreate(state: ClientState, deviceId: string, dataset: string, input: CreateInput): { ref: string; change: WireChange } {
  if (!input.label || input.label.trim() === '') throw new Error('a create needs a non-empty label');
  const run: Run = { branchId: newId(), trunkVersion: null, next: 1 };
  const change: WireChange = { id: newId(), deviceId, dataset, action: 'CREATE', label: input.label, data: input.data ?? {}, branchId: run.branchId, trunkVersion: null };
  let ref: string;
  if (input.localId !== undefined) {
    if (Object.hasOwn(state.localIds, input.localId)) throw new Error(`local id "${input.localId}" is already used on this device`);
    state.localIds[input.localId] = null;
    change.localId = input.localId;
    ref = input.localId;
  } else {
    ref = input.entityId ?? newId();
    change.entityId = ref;
  }
  state.runs[entityKey(state, ref)] = run;
  state.outbox.push({ change, status: 'pending' });
  track(state, dataset);
  return { ref, change };
}

/** Queues an update or delete of an entity the client pulled or created. */
export function queueEdit(state: ClientState, deviceId: string, ref: string, edit: { action: 'UPDATE' | 'DELETE'; data?: PropertyValues; operations?: OperationInput[] }): WireChange {
  const key = entityKey(state, ref);
  // The admin's decision stands: a device edits what is in its share (what it sent before stays sent).
  if (state.outside?.[key]) throw new Error(`entity "${ref}" left this device's subset`);
  const known = key.startsWith('local:') ? undefined : state.entities[key];
  let run = state.runs[key];
  if (!run) {
    if (!known) throw new Error(`unknown entity "${ref}": create it here or pull it first`);
    run = { branchId: newId(), trunkVersion: known.version, next: known.version };
    state.runs[key] = run;
  }
  const dataset = known?.dataset ?? state.outbox.find((e) => entryIsAbout(state, e, key))?.change.dataset;
  if (!dataset) throw new Error(`unknown entity "${ref}"`);
  if (edit.operations) checkOperations(edit.operations);
  const change: WireChange = { id: newId(), deviceId, dataset, action: edit.action, branchId: run.branchId, trunkVersion: run.trunkVersion, baseVersion: run.next };
  if (key.startsWith('local:')) change.localId = ref;
  else change.entityId = key;
  if (edit.data) change.data = edit.data;
  if (edit.operations) change.operations = edit.operations;
  run.next += 1;
  state.outbox.push({ change, status: 'pending' });
  track(state, dataset);
  return change;
}

/** Records a local id the server minted a UUID for; the open run moves to the new key. */
export function mapLocalId(state: ClientState, localId: string, entityId: string): void {
  if (!Object.hasOwn(state.localIds, localId) || state.localIds[localId] === entityId) return;
  state.localIds[localId] = entityId;
  const run = state.runs[`local:${localId}`];
  if (run) {
    delete state.runs[`local:${localId}`];
    state.runs[entityId] ??= run;
  }
}
