import { isDeepStrictEqual } from 'node:util';
import { applyOperations } from '../../src/core/operations.js';
import type { ChangeAction, Operation, PropertyValues, VersionSource } from '../../src/core/types.js';

/**
 * A reference model of the sync rules (DESIGN "Processing a change"), written from the design
 * text, independent of src/sync and of the placement, hold and release code in src/core: it keeps
 * each entity's history as a list, each run's changes by position, and replays deliveries one by
 * one. Values are applied with the core's pure applyOperations (the value semantics are not
 * what this model checks); everything else here is its own.
 *
 * Conflicts are predicted exactly where the design states them plainly (a change applied in run
 * order or online); for forced changes and changes applied beneath a forced successor it only
 * says "flagged" (SOFT or HARD), which is what the design promises there.
 */

export const UNKNOWN_LABEL = '(label unknown)';

export interface Edit {
  label: string | null;
  data: PropertyValues;
  operations: Operation[];
}

/** A predicted conflict: exact, or FLAGGED (some conflict, SOFT or HARD). */
export type Predicted = null | 'SOFT' | 'HARD' | 'FLAGGED';

export interface MVersion {
  changeId: string;
  version: number;
  action: ChangeAction;
  label: string;
  data: PropertyValues;
  deleted: boolean;
  source: VersionSource;
  conflict: Predicted;
  /** Null when not predicted (FLAGGED). */
  conflictingProperties: string[] | null;
  runId: string | null;
  /** What the change set, with the values it left (label included when it set it). */
  changed: PropertyValues;
}

export type Status = 'unsent' | 'held' | 'applied' | 'rejected';

export interface MChange {
  id: string;
  entityId: string;
  runId: string | null;
  action: ChangeAction;
  edit: Edit;
  baseVersion: number | null;
  trunkVersion: number | null;
  /** Position in its run: 0 for an offline create, else its baseVersion. */
  position: number;
  status: Status;
  version: number | null;
  errorCode: string | null;
  waitsFor: number | null;
  heldSeq: number;
}

export interface MRun {
  id: string;
  entityId: string;
  trunk: number | null;
  changes: MChange[];
}

export interface MResult {
  changeId: string;
  outcome: 'APPLIED' | 'HELD' | 'DUPLICATE' | 'REJECTED';
  originalOutcome: 'APPLIED' | 'HELD' | 'REJECTED' | null;
  version: number | null;
  conflict: Predicted;
  conflictingProperties: string[] | null;
  waitsFor: number | null;
  errorCode: string | null;
  released: MResult[];
}

const OUTCOME = { applied: 'APPLIED', held: 'HELD', rejected: 'REJECTED' } as const;
const overwrites = (op: Operation) => op.op === 'SET' || op.op === 'UNSET' || op.op === 'SET_LABEL';
const propertyOf = (op: Operation) => (op.op === 'SET_LABEL' ? 'label' : op.property);

export class World {
  readonly histories = new Map<string, MVersion[]>();
  readonly runs: MRun[] = [];
  readonly changes = new Map<string, MChange>();
  /** Entities in the order the model met them. */
  readonly entityIds: string[] = [];
  /** (entity, version) in the order written: what pulls hand out. */
  readonly written: { entityId: string; version: number; changeId: string }[] = [];
  private holds = 0;

  history(entityId: string): MVersion[] {
    let h = this.histories.get(entityId);
    if (!h) {
      h = [];
      this.histories.set(entityId, h);
      this.entityIds.push(entityId);
    }
    return h;
  }

  current(entityId: string): MVersion | null {
    return this.history(entityId).at(-1) ?? null;
  }

  /** Entities that exist and are not deleted. */
  live(): string[] {
    return this.entityIds.filter((id) => this.current(id) && !this.current(id)!.deleted);
  }

  add(c: Omit<MChange, 'status' | 'version' | 'errorCode' | 'waitsFor' | 'heldSeq'>): MChange {
    const change: MChange = { ...c, status: 'unsent', version: null, errorCode: null, waitsFor: null, heldSeq: 0 };
    this.changes.set(change.id, change);
    this.history(change.entityId);
    return change;
  }

  /** What submitting `c` answers, with what it does to the world. */
  deliver(c: MChange): MResult {
    if (c.status !== 'unsent') {
      const v = c.version ? this.history(c.entityId)[c.version - 1]! : null;
      return { ...blank(c.id, 'DUPLICATE'), originalOutcome: OUTCOME[c.status], version: c.version, conflict: v?.conflict ?? null, conflictingProperties: v ? v.conflictingProperties : [], waitsFor: c.waitsFor, errorCode: c.errorCode };
    }
    const cur = this.current(c.entityId);
    if (!c.runId) {
      if (c.action !== 'CREATE' && cur?.deleted) return this.reject(c, 'ENTITY_DELETED');
      return this.apply(c, 'ONLINE');
    }
    const run = this.runOf(c);
    if (c.action === 'CREATE') {
      if (!cur) return this.applyAndRelease(c, 'IN_ORDER');
      if (cur.deleted) return this.reject(c, 'ENTITY_DELETED');
      // Made by a forced change of its own run: the create goes beneath it.
      return this.applyAndRelease(c, 'IN_ORDER', true);
    }
    if (!cur) return this.hold(c);
    if (cur.deleted) return this.reject(c, 'ENTITY_DELETED');
    const runStart = run.trunk !== null && c.position === run.trunk;
    const predecessor = run.changes.find((x) => x.position === c.position - 1);
    return runStart || predecessor?.status === 'applied' ? this.applyAndRelease(c, 'IN_ORDER') : this.hold(c);
  }

  /** A backlog flush: held changes oldest first, each forced on top, then its successors released. */
  flush(): MResult[] {
    const due = [...this.changes.values()].filter((c) => c.status === 'held').sort((a, b) => a.heldSeq - b.heldSeq);
    const out: MResult[] = [];
    for (const c of due) if (c.status === 'held') out.push(this.applyHeld(c, 'FORCED', true));
    return out;
  }

  private runOf(c: MChange): MRun {
    return this.runs.find((r) => r.id === c.runId)!;
  }

  private reject(c: MChange, code: string): MResult {
    c.status = 'rejected';
    c.errorCode = code;
    c.waitsFor = null;
    return { ...blank(c.id, 'REJECTED'), errorCode: code };
  }

  private hold(c: MChange): MResult {
    c.status = 'held';
    c.waitsFor = c.position - 1;
    c.heldSeq = ++this.holds;
    return { ...blank(c.id, 'HELD'), waitsFor: c.waitsFor };
  }

  /** A held change taken out of the backlog: refused if its entity cannot take it, else applied (a forced one then releases its successors). */
  private applyHeld(c: MChange, source: 'RELEASED' | 'FORCED', release = false): MResult {
    const cur = this.current(c.entityId);
    if (cur?.deleted) return this.reject(c, 'ENTITY_DELETED');
    if (!cur && c.action === 'DELETE') return this.reject(c, 'ENTITY_NOT_FOUND');
    return release ? this.applyAndRelease(c, source) : this.apply(c, source);
  }

  /** Applies a change, then its run's held successors one after the other, until one is missing or refused: one flat chain. */
  private applyAndRelease(c: MChange, source: VersionSource, asUpdate = false): MResult {
    const result = this.apply(c, source, asUpdate);
    const run = this.runOf(c);
    for (let p = c.position + 1; ; p++) {
      const next = run.changes.find((x) => x.position === p && x.status === 'held');
      if (!next) break;
      const r = this.applyHeld(next, 'RELEASED');
      result.released.push(r);
      if (r.outcome !== 'APPLIED') break;
    }
    return result;
  }

  private apply(c: MChange, source: VersionSource, asUpdate = false): MResult {
    const history = this.history(c.entityId);
    const cur = history.at(-1) ?? null;
    const run = c.runId ? this.runOf(c) : null;
    // Run order is the author's intent: what later changes of the run (forced already) set stays.
    const later = run ? history.filter((v) => v.runId === run.id && this.changes.get(v.changeId)!.position > c.position) : [];
    const kept = new Set(later.flatMap((v) => Object.keys(v.changed)));
    const edit: Edit = {
      label: kept.has('label') ? null : c.edit.label,
      data: Object.fromEntries(Object.entries(c.edit.data).filter(([k]) => !kept.has(k))),
      operations: c.edit.operations.filter((op) => !(overwrites(op) && kept.has(propertyOf(op)))),
    };
    let next: { label: string; data: PropertyValues; deleted: boolean; changed: PropertyValues };
    if (c.action === 'DELETE') {
      next = { label: cur!.label, data: cur!.data, deleted: true, changed: {} };
    } else {
      const base = cur ?? { label: edit.label ?? UNKNOWN_LABEL, data: {} };
      const replayed = applyOperations({ label: edit.label ?? base.label, data: { ...base.data, ...edit.data } }, edit.operations);
      if (!replayed.ok) throw new Error(`the model generated an operation that does not fit: ${replayed.error.message}`);
      const changed: PropertyValues = { ...edit.data };
      for (const op of edit.operations) if (op.op !== 'SET_LABEL') changed[op.property] = replayed.state.data[op.property] ?? null;
      if (edit.label !== null || edit.operations.some((o) => o.op === 'SET_LABEL')) changed.label = replayed.state.label;
      next = { label: replayed.state.label, data: replayed.state.data, deleted: false, changed };
    }
    const verdict = source === 'FORCED' || later.length > 0 ? { conflict: 'FLAGGED' as const, conflictingProperties: null } : this.judge(c, history, next.changed);
    const version = history.length + 1;
    history.push({
      changeId: c.id,
      version,
      action: asUpdate ? 'UPDATE' : c.action,
      ...next,
      source,
      ...verdict,
      runId: c.runId,
    });
    this.written.push({ entityId: c.entityId, version, changeId: c.id });
    c.status = 'applied';
    c.version = version;
    c.waitsFor = null;
    return { ...blank(c.id, 'APPLIED'), version, ...verdict };
  }

  /**
   * DESIGN step 4 for a change applied where its author expected: the versions after what the
   * author saw (the trunk, or the baseVersion without a run) that are not of its own run; the
   * properties it overwrites that those versions set to something else are conflicting.
   */
  private judge(c: MChange, history: readonly MVersion[], written: PropertyValues): { conflict: Predicted; conflictingProperties: string[] } {
    const touched = c.action === 'DELETE' ? null : new Set([...Object.keys(c.edit.data), ...(c.edit.label !== null ? ['label'] : []), ...c.edit.operations.filter(overwrites).map(propertyOf)]);
    const seen = c.runId ? (c.trunkVersion ?? 0) : (c.baseVersion ?? 0);
    const unseen = history.filter((v) => v.version > seen && (c.runId === null || v.runId !== c.runId));
    if ((touched && touched.size === 0) || unseen.length === 0) return { conflict: null, conflictingProperties: [] };
    const latest = new Map<string, unknown>();
    for (const v of unseen) for (const [p, value] of Object.entries(v.changed)) latest.set(p, value);
    // Both sides left the same value: no one's write was lost.
    const lost = (p: string) => !(touched && Object.hasOwn(written, p) && isDeepStrictEqual(written[p], latest.get(p)));
    const byOthers = new Set(unseen.flatMap((v) => Object.keys(v.changed).filter(lost)));
    const shared = [...byOthers].filter((p) => !touched || touched.has(p)).sort();
    return { conflict: shared.length > 0 ? 'HARD' : 'SOFT', conflictingProperties: shared };
  }
}

function blank(changeId: string, outcome: MResult['outcome']): MResult {
  return { changeId, outcome, originalOutcome: null, version: null, conflict: null, conflictingProperties: [], waitsFor: null, errorCode: null, released: [] };
}

/** The strongest conflict an entity keeps, as predicted: exact unless a flagged version could be HARD. */
export function entityConflict(history: readonly MVersion[]): { exact: Predicted } {
  const kinds = new Set(history.map((v) => v.conflict));
  if (kinds.has('HARD')) return { exact: 'HARD' };
  if (kinds.has('FLAGGED')) return { exact: 'FLAGGED' };
  return { exact: kinds.has('SOFT') ? 'SOFT' : null };
}
