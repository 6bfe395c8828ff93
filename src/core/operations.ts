import { changeError } from './errors.js';
import { hasNul, isJsonValue, MAX_DEPTH, nestsDeeperThan, sameJson } from './json.js';
import { OPERATION_KINDS, type ChangeError, type JsonValue, type Operation, type OperationInput, type OperationKind, type PropertyValues } from './types.js';

/**
 * Changes as replayable operations (DESIGN "Operations"): replayed on the current server
 * state, so two clients adding to one list both keep their element.
 */
/** Overwriting operations conflict HARD with concurrent changes of the same property; merging ones never do. */
export function isOverwrite(op: Operation): boolean {
  return op.op === 'SET' || op.op === 'UNSET' || op.op === 'SET_LABEL';
}

export function operationProperty(op: Operation): string {
  return op.op === 'SET_LABEL' ? 'label' : op.property;
}

export function parseOperations(raw: readonly OperationInput[]): { ok: true; operations: Operation[] } | { ok: false; error: ChangeError } {
  const out: Operation[] = [];
  const fail = (i: number, why: string) => ({ ok: false as const, error: changeError('INVALID_OPERATION', `operation ${i + 1}: ${why}`) });
  for (const [i, o] of raw.entries()) {
    if (!(OPERATION_KINDS as readonly string[]).includes(o.op)) return fail(i, `unknown kind "${String(o.op).slice(0, 40)}"`);
    const kind = o.op as OperationKind;
    if (kind === 'SET_LABEL') {
      if (typeof o.value !== 'string' || o.value.trim() === '' || hasNul(o.value)) return fail(i, 'SET_LABEL needs a non-empty string value');
      out.push({ op: 'SET_LABEL', value: o.value.trim() });
      continue;
    }
    if (typeof o.property !== 'string' || o.property === '') return fail(i, `${kind} needs a property`);
    const property = o.property;
    const needsValue = kind === 'SET' || kind === 'LIST_ADD' || kind === 'LIST_REMOVE';
    if (needsValue && (o.value === undefined || !isJsonValue(o.value) || hasNul(o.value) || nestsDeeperThan(o.value, MAX_DEPTH))) {
      return fail(i, `${kind} needs a JSON value`);
    }
    switch (kind) {
      case 'SET':
        out.push({ op: 'SET', property, value: o.value as JsonValue });
        break;
      case 'UNSET':
        out.push({ op: 'UNSET', property });
        break;
      case 'LIST_ADD':
        if (o.index != null && (!Number.isSafeInteger(o.index) || o.index < 0)) return fail(i, 'index must be a whole number, 0 or more');
        out.push({ op: 'LIST_ADD', property, value: o.value as JsonValue, index: o.index ?? null });
        break;
      case 'LIST_REMOVE':
        out.push({ op: 'LIST_REMOVE', property, value: o.value as JsonValue });
        break;
      case 'INCREMENT':
        if (typeof o.by !== 'number' || !Number.isFinite(o.by)) return fail(i, 'INCREMENT needs a finite number `by`');
        out.push({ op: 'INCREMENT', property, by: o.by });
        break;
    }
  }
  return { ok: true, operations: out };
}

export interface OpsResult {
  label: string;
  data: PropertyValues;
}

/** Replays operations on a state. A type mismatch (INCREMENT on text, LIST_ADD on a non-list) is an error value. */
export function applyOperations(state: OpsResult, ops: readonly Operation[]): { ok: true; state: OpsResult } | { ok: false; error: ChangeError } {
  let label = state.label;
  const data: PropertyValues = { ...state.data };
  for (const op of ops) {
    switch (op.op) {
      case 'SET_LABEL':
        label = op.value;
        break;
      case 'SET':
        data[op.property] = op.value;
        break;
      case 'UNSET':
        delete data[op.property];
        break;
      case 'INCREMENT': {
        const cur = Object.hasOwn(data, op.property) ? data[op.property] : null;
        if (cur !== null && typeof cur !== 'number') return { ok: false, error: changeError('OPERATION_TYPE_MISMATCH', `INCREMENT on "${op.property}", which is not a number`) };
        const sum = (cur ?? 0) + op.by;
        // Past the largest double the sum is Infinity, which jsonb would store as null (and the
        // next INCREMENT would restart from 0): refuse it instead of losing the count.
        if (!Number.isFinite(sum)) return { ok: false, error: changeError('VALUE_OUT_OF_RANGE', `INCREMENT of "${op.property}" by ${op.by} leaves the range of numbers`) };
        data[op.property] = sum;
        break;
      }
      case 'LIST_ADD': {
        const cur = Object.hasOwn(data, op.property) ? data[op.property] : null;
        if (cur !== null && !Array.isArray(cur)) return { ok: false, error: changeError('OPERATION_TYPE_MISMATCH', `LIST_ADD on "${op.property}", which is not a list`) };
        const list = [...(cur ?? [])];
        list.splice(op.index === null ? list.length : Math.min(op.index, list.length), 0, op.value);
        data[op.property] = list;
        break;
      }
      case 'LIST_REMOVE': {
        const cur = Object.hasOwn(data, op.property) ? data[op.property] : null;
        if (cur === null) break;
        if (!Array.isArray(cur)) return { ok: false, error: changeError('OPERATION_TYPE_MISMATCH', `LIST_REMOVE on "${op.property}", which is not a list`) };
        data[op.property] = cur.filter((x) => !sameJson(x, op.value));
        break;
      }
    }
  }
  return { ok: true, state: { label, data } };
}
