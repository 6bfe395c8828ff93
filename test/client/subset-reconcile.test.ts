import { describe, expect, it } from 'vitest';
import { emptyState, queueEdit } from '../../packages/client/src/outbox.js';
import { applyPull, applyResults } from '../../packages/client/src/reconcile.js';
import type { ChangeResult, ClientState, PulledVersion, PullPage, SyncEvents } from '../../packages/client/src/types.js';
import { viewOf } from '../../packages/client/src/view.js';

/**
 * The client's pure half of subsets (issue 20, item 5), without a server: what a pulled page with
 * `entered` and `left` does to the state, when an entity that left is dropped, and what the view
 * shows.
 */

const DS = 'trees';
const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

const version = (entityId: string, v: number, data: Record<string, string | number>, changeId = `c-${entityId.slice(-1)}-${v}`): PulledVersion => ({
  entityId,
  version: v,
  label: `L${v}`,
  data,
  deleted: false,
  changeId,
  conflict: null,
  conflictingProperties: [],
});
const page = (p: Partial<PullPage>): PullPage => ({ cursor: 'c', hasMore: false, localIds: [], versions: [], entered: [], left: [], ...p });

function recorder() {
  const events: { name: string; payload: unknown }[] = [];
  const emit = <K extends keyof SyncEvents>(name: K, payload: SyncEvents[K]) => void events.push({ name, payload });
  return { events, emit, left: () => events.filter((e) => e.name === 'left').map((e) => e.payload) };
}

/** A device holding A (district d1) at version 2, with the subset district in [d1]. */
function holdingA(): ClientState {
  const state = emptyState();
  state.subset = [{ property: 'district', values: ['d1'] }];
  applyPull(state, DS, page({ entered: [version(A, 2, { district: 'd1' })] }), () => {});
  return state;
}

const applied = (changeId: string, v: number): ChangeResult => ({ changeId, outcome: 'APPLIED', originalOutcome: null, entityId: A, localId: null, version: v, conflict: null, conflictingProperties: [], waitsFor: null, error: null });

describe('a pulled page of a subset token', () => {
  it('entered entities are added with their state; an older entered version never replaces a newer one', () => {
    const state = holdingA();
    expect(viewOf(state, A)).toMatchObject({ id: A, label: 'L2', data: { district: 'd1' }, serverVersion: 2, pending: 0 });
    applyPull(state, DS, page({ versions: [version(A, 3, { district: 'd1', n: 1 })], entered: [version(A, 2, { district: 'd1' }), version(B, 4, { district: 'd1' })] }), () => {});
    expect(viewOf(state, A)).toMatchObject({ serverVersion: 3, data: { district: 'd1', n: 1 } });
    expect(viewOf(state, B)).toMatchObject({ serverVersion: 4, data: { district: 'd1' } });
  });

  it('an entity that left with nothing of the device pending is dropped, with a left event', () => {
    const state = holdingA();
    const r = recorder();
    applyPull(state, DS, page({ left: [A] }), r.emit);
    expect(viewOf(state, A)).toBeNull();
    expect(state.entities[A]).toBeUndefined();
    expect(state.outside ?? {}).toEqual({});
    expect(r.left()).toEqual([{ entityId: A, dataset: DS, dropped: [] }]);
    expect(() => queueEdit(state, 'dev', A, { action: 'UPDATE', data: { n: 1 } })).toThrow(`unknown entity "${A}"`);
  });

  it('a pending change keeps it (never shown, not editable) until answered; the next complete pull drops it with that change', () => {
    const state = holdingA();
    const r = recorder();
    const change = queueEdit(state, 'dev', A, { action: 'UPDATE', data: { n: 5 } });
    applyPull(state, DS, page({ left: [A] }), r.emit);
    expect(viewOf(state, A)).toBeNull();
    expect(state.outbox.map((e) => [e.change.id, e.status])).toEqual([[change.id, 'pending']]);
    expect(state.entities[A]).toMatchObject({ version: 2 });
    expect(r.left()).toEqual([]);
    expect(() => queueEdit(state, 'dev', A, { action: 'UPDATE', data: { n: 6 } })).toThrow(`entity "${A}" left this device's subset`);
    // Answered: applied as version 3 (the server accepts it: the device could see A).
    applyResults(state, [applied(change.id, 3)], r.emit, () => 0);
    expect(viewOf(state, A)).toBeNull();
    // A page with more to come decides nothing yet; the complete pull drops it.
    applyPull(state, DS, page({ hasMore: true }), r.emit);
    expect(r.left()).toEqual([]);
    applyPull(state, DS, page({}), r.emit);
    expect(r.left()).toEqual([{ entityId: A, dataset: DS, dropped: [change.id] }]);
    expect(state.outbox).toEqual([]);
    expect(state.entities[A]).toBeUndefined();
    expect(state.runs[A]).toBeUndefined();
  });

  it('a held change is an answer too: the entity is dropped with it', () => {
    const state = holdingA();
    const r = recorder();
    const change = queueEdit(state, 'dev', A, { action: 'UPDATE', data: { n: 5 } });
    applyResults(state, [{ ...applied(change.id, 3), outcome: 'HELD', version: null, waitsFor: 2 }], r.emit, () => 0);
    applyPull(state, DS, page({ left: [A] }), r.emit);
    expect(r.left()).toEqual([{ entityId: A, dataset: DS, dropped: [change.id] }]);
    expect(state.outbox).toEqual([]);
  });

  it('left on one page and back on a later page of the same pull: kept, no left event', () => {
    const state = holdingA();
    const r = recorder();
    applyPull(state, DS, page({ left: [A], hasMore: true }), r.emit);
    expect(viewOf(state, A)).toBeNull();
    applyPull(state, DS, page({ entered: [version(A, 2, { district: 'd1' })] }), r.emit);
    expect(viewOf(state, A)).toMatchObject({ serverVersion: 2 });
    expect(r.left()).toEqual([]);
  });

  it("the view hides a local edit that takes an entity out of the token's rules, and shows it again when undone", () => {
    const state = holdingA();
    queueEdit(state, 'dev', A, { action: 'UPDATE', data: { district: 'd2' } });
    expect(viewOf(state, A)).toBeNull();
    queueEdit(state, 'dev', A, { action: 'UPDATE', data: { district: 'd1' } });
    expect(viewOf(state, A)).toMatchObject({ data: { district: 'd1' }, pending: 2 });
    // Without a subset (null: the whole datasets) nothing is hidden.
    state.subset = null;
    queueEdit(state, 'dev', A, { action: 'UPDATE', data: { district: 'd9' } });
    expect(viewOf(state, A)).toMatchObject({ data: { district: 'd9' } });
  });

  it('a state stored before subsets (no outside, no subset) reads as the whole datasets', () => {
    const state = emptyState();
    delete state.outside;
    delete state.subset;
    applyPull(state, DS, { cursor: 'c', hasMore: false, localIds: [], versions: [version(A, 1, { district: 'x' })] } as unknown as PullPage, () => {});
    expect(viewOf(state, A)).toMatchObject({ serverVersion: 1 });
  });
});
