import { tryApplyChange } from '../../../src/core/apply.js';
import { parseOperations } from '../../../src/core/operations.js';
import { inSubset } from '../../../src/core/subsets.js';
import type { EntityState, ValidChange } from '../../../src/core/types.js';
import { entityKey, entryIsAbout } from './outbox.js';
import type { ClientState, EntityView, WireChange } from './types.js';

/**
 * The optimistic view (DESIGN "Client library"): the last pulled server state with the
 * outbox's changes of that entity replayed on top, in order, by the same pure rules the server
 * applies them with (src/core). After each pull the pending changes are replayed on the new
 * server state: that is the rebase. A change the rules refuse (an INCREMENT on text after
 * someone else's edit) is left out of the view; the server will say what becomes of it.
 * Null for an entity outside the token's subset.
 */
export function viewOf(state: ClientState, ref: string): EntityView | null {
  const key = entityKey(state, ref);
  // DESIGN "Subsets": an entity that left the device's share is never shown, though its own
  // changes to it wait in the outbox for their answer.
  if (state.outside?.[key]) return null;
  const pulled = key.startsWith('local:') ? undefined : state.entities[key];
  const entries = state.outbox.filter((e) => entryIsAbout(state, e, key));
  if (!pulled && entries.length === 0) return null;
  let current: EntityState | null = pulled ? { label: pulled.label, data: pulled.data, version: pulled.version, deleted: pulled.deleted } : null;
  let dataset = pulled?.dataset;
  for (const entry of entries) {
    if (entry.status === 'applied' && pulled && entry.version !== undefined && entry.version <= pulled.version) continue;
    dataset ??= entry.change.dataset;
    const valid = toValidChange(entry.change, key);
    if (!valid) continue;
    if (current?.deleted) break;
    const r = tryApplyChange(current, valid);
    if (!r.ok) continue;
    current = { label: r.applied.label, data: r.applied.data, deleted: r.applied.deleted, version: current?.version ?? 0 };
  }
  if (!current || dataset === undefined) return null;
  // By the token's rules as of the last pull: a local edit that takes the entity out of the share
  // hides it at once, as the server's answer and the next pull will.
  if (!inSubset(state.subset ?? null, current.data)) return null;
  const localId = Object.entries(state.localIds).find(([l, id]) => l === ref || (id !== null && id === key))?.[0] ?? null;
  return {
    id: key.startsWith('local:') ? null : key,
    localId,
    dataset,
    label: current.label,
    data: current.data,
    deleted: current.deleted,
    serverVersion: pulled?.version ?? null,
    pending: entries.length,
  };
}

function toValidChange(c: WireChange, entityId: string): ValidChange | null {
  const ops = c.operations ? parseOperations(c.operations) : null;
  if (ops && !ops.ok) return null;
  return {
    id: c.id,
    deviceId: c.deviceId,
    dataset: c.dataset,
    entityId,
    action: c.action,
    label: c.label ?? null,
    data: c.data ?? {},
    baseVersion: c.baseVersion ?? null,
    trunkVersion: c.trunkVersion,
    branchId: c.branchId,
    ...(ops ? { operations: ops.operations } : {}),
  };
}
