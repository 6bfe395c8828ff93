import { entityKey, entryIsAbout, mapLocalId } from './outbox.js';
import type { ChangeResult, ClientState, PullPage, SyncEvents } from './types.js';

/**
 * What push results and pulls do to the client state. Pure but for `emit` and `retryAt`:
 * mutates the state it is given. An applied change stays in the outbox (status `applied`,
 * still part of the optimistic view) until a pull brings its version; a held one stays until
 * its version appears in a pull; a rejected one leaves at once, reported with its code. A
 * change the server failed on (`REJECTED INTERNAL_ERROR`: not a refusal, "resend it") stays
 * pending and is sent again from `retryAt(attempt)` on, reported as `retry`.
 */

export type Emit = <K extends keyof SyncEvents>(event: K, payload: SyncEvents[K]) => void;

/** When a change is sent again after its `attempt`-th "resend" answer (ms since the epoch). */
export type RetryAt = (attempt: number) => number;

/** The one per-change code that means "the server failed, send it again" (the change was not judged). */
export const RESEND_CODE = 'INTERNAL_ERROR';

/** Applies one batch's results (and the held changes they released). */
export function applyResults(state: ClientState, results: readonly ChangeResult[], emit: Emit, retryAt: RetryAt): void {
  for (const r of results) {
    applyResult(state, r, emit, retryAt);
    applyResults(state, r.released ?? [], emit, retryAt);
  }
}

function applyResult(state: ClientState, r: ChangeResult, emit: Emit, retryAt: RetryAt): void {
  const index = state.outbox.findIndex((e) => e.change.id === r.changeId);
  const entry = state.outbox[index];
  if (!entry) return;
  const localId = entry.change.localId;
  if (localId !== undefined && r.entityId) mapLocalId(state, localId, r.entityId);
  // A duplicate is the server's record of the first submission: authoritative.
  const duplicate = r.outcome === 'DUPLICATE';
  const outcome = duplicate ? (r.originalOutcome ?? 'APPLIED') : r.outcome;
  if (outcome === 'REJECTED' && r.error?.code === RESEND_CODE) {
    entry.status = 'pending';
    entry.attempts = (entry.attempts ?? 0) + 1;
    entry.retryAt = retryAt(entry.attempts);
    emit('retry', { changeId: r.changeId, entityId: r.entityId, code: r.error.code, message: r.error.message, attempt: entry.attempts, retryAt: entry.retryAt });
    return;
  }
  delete entry.attempts;
  delete entry.retryAt;
  if (outcome === 'REJECTED') {
    state.outbox.splice(index, 1);
    // A refused create leaves no run to continue: the next edit of that entity is refused locally.
    if (entry.change.action === 'CREATE') delete state.runs[entry.change.entityId ?? `local:${localId ?? ''}`];
    const error = r.error ?? { code: 'UNKNOWN', message: 'rejected' };
    emit('rejected', { changeId: r.changeId, entityId: r.entityId, code: error.code, message: error.message, change: entry.change });
    return;
  }
  // A duplicate whose first submission was held may have been released since: its version says so.
  if (outcome === 'HELD' && r.version === null) {
    entry.status = 'held';
    if (r.waitsFor !== null) entry.waitsFor = r.waitsFor;
    emit('held', { changeId: r.changeId, entityId: r.entityId, waitsFor: r.waitsFor });
    return;
  }
  entry.status = 'applied';
  if (r.version !== null) entry.version = r.version;
  delete entry.waitsFor;
  emit('applied', { changeId: r.changeId, entityId: r.entityId, version: r.version, duplicate });
  if (r.conflict) emit('conflict', { changeId: r.changeId, entityId: r.entityId, version: r.version, conflict: r.conflict, conflictingProperties: r.conflictingProperties });
}

/**
 * Applies a pulled page: the new server states (`versions`, then `entered`: each a full state, the
 * highest version of an entity kept), this device's local-id mappings, and the end of the open
 * run of every entity it brings (the next local edit begins a new run on the pulled version).
 * Changes whose versions arrive leave the outbox; held ones are reported applied then.
 *
 * A token with a subset (DESIGN "Subsets"): an entity in `left` is outside the device's share
 * from then on, never shown; a later version of a later page brings it back. Once the pull is
 * complete (`hasMore` false), every entity still outside is dropped, unless a change of the
 * device's own to it still waits for an answer (it is sent, and answered, as usual: no offline
 * edit is lost to a reassignment); such an entity is dropped by the first complete pull after
 * its changes are answered, if it is still outside then.
 */
export function applyPull(state: ClientState, dataset: string, page: PullPage, emit: Emit): void {
  for (const m of page.localIds) mapLocalId(state, m.localId, m.entityId);
  const touched = new Set<string>();
  for (const v of [...page.versions, ...(page.entered ?? [])]) {
    const id = v.entityId;
    touched.add(id);
    if (state.outside) delete state.outside[id];
    const known = state.entities[id];
    if (!known || known.version < v.version) {
      state.entities[id] = { dataset, label: v.label, data: v.data, version: v.version, deleted: v.deleted };
    }
    const index = state.outbox.findIndex((e) => e.change.id === v.changeId);
    const entry = state.outbox[index];
    if (!entry) continue;
    state.outbox.splice(index, 1);
    if (entry.status === 'held' || entry.status === 'pending') {
      emit('applied', { changeId: v.changeId, entityId: id, version: v.version, duplicate: false });
      if (v.conflict) emit('conflict', { changeId: v.changeId, entityId: id, version: v.version, conflict: v.conflict, conflictingProperties: v.conflictingProperties });
    }
  }
  // Acknowledged changes the pulled state already includes (a version the page did not repeat).
  state.outbox = state.outbox.filter((e) => {
    if (e.status !== 'applied' || e.version === undefined) return true;
    const key = e.change.entityId ?? (e.change.localId !== undefined ? entityKey(state, e.change.localId) : '');
    const known = state.entities[key];
    return !known || known.version < e.version;
  });
  for (const id of touched) delete state.runs[id];
  // The page's last word on an entity: it left after the versions above.
  for (const id of page.left ?? []) (state.outside ??= {})[id] = true;
  state.cursors[dataset] = page.cursor;
  if (!page.hasMore) dropOutside(state, dataset, emit);
}

/**
 * Drops the entities of a dataset that are outside the device's share and have no change of its
 * own waiting for an answer (status `pending`): their pulled state, their run, and their answered
 * changes (applied or held: the server keeps those; the device no longer sees their fate).
 */
export function dropOutside(state: ClientState, dataset: string, emit: Emit): void {
  for (const id of Object.keys(state.outside ?? {})) {
    const known = state.entities[id];
    const mine = state.outbox.filter((e) => entryIsAbout(state, e, id));
    const entryDataset = known?.dataset ?? mine[0]?.change.dataset;
    if (entryDataset !== undefined && entryDataset !== dataset) continue;
    if (mine.some((e) => e.status === 'pending')) continue;
    delete state.entities[id];
    delete state.runs[id];
    delete state.outside![id];
    state.outbox = state.outbox.filter((e) => !mine.includes(e));
    if (known || mine.length > 0) emit('left', { entityId: id, dataset, dropped: mine.map((e) => e.change.id) });
  }
}
