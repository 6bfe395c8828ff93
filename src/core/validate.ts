import { changeError } from './errors.js';
import { parseOperations } from './operations.js';
import { hasNul, isJsonValue, jsonBytes, MAX_DEPTH, nestsDeeperThan, sameJson } from './json.js';
import {
  CHANGE_ACTIONS,
  type ChangeError,
  type ChangeInput,
  type Limits,
  type Operation,
  type PropertyValues,
  type ValidChange,
} from './types.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Names are identifiers so they read well in GraphQL, SQL and CSV exports alike. */
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** `label` is the entity's own field; as a property it would be ambiguous in diffs and conflicts. */
export const RESERVED_PROPERTIES = new Set(['label', '__proto__', 'constructor', 'prototype']);

export function isUuid(s: unknown): boolean {
  return typeof s === 'string' && UUID_RE.test(s);
}

/** The canonical (lower-case) form of a UUID argument, or null when it is not one: it names nothing. */
export function normalizeUuid(s: unknown): string | null {
  return isUuid(s) ? String(s).toLowerCase() : null;
}

/**
 * The key a change is recorded and found under: a UUID in its canonical form, any other string as
 * sent (malformed ids are recorded too). Null for one that can never have been recorded (NUL).
 */
export function changeKey(id: string): string | null {
  return hasNul(id) ? null : (normalizeUuid(id) ?? id);
}

/** Client-made ids (device ids, local ids) reach indexes, whose entries are bounded: 1-200 characters. */
export const MAX_ID_LENGTH = 200;

/**
 * Version numbers are int4 in the database; this bound leaves room for every run position the
 * server derives from one (k + 1, trunk + run length).
 */
export const MAX_VERSION = 2_000_000_000;

export function isValidLocalId(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= MAX_ID_LENGTH && !hasNul(s);
}

/** A device id: at most 200 characters Postgres can store (it is a key of local ids). */
export function isValidDeviceId(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_ID_LENGTH && !hasNul(s);
}

/**
 * Where a change nests deeper than MAX_DEPTH (`"data.p"`, `"operation 2"`), or null. Iterative,
 * so it is safe on any input: it runs before anything that recurses.
 */
export function deepestValue(input: Pick<ChangeInput, 'data' | 'operations'>): string | null {
  if (input.data !== null && typeof input.data === 'object') {
    if (Array.isArray(input.data)) {
      if (nestsDeeperThan(input.data, MAX_DEPTH)) return 'data';
    } else {
      const deep = Object.entries(input.data).find(([, v]) => nestsDeeperThan(v, MAX_DEPTH));
      if (deep) return `"${truncate(deep[0])}"`;
    }
  }
  const ops = Array.isArray(input.operations) ? input.operations : [];
  const i = ops.findIndex((o) => o !== null && typeof o === 'object' && nestsDeeperThan((o as { value?: unknown }).value, MAX_DEPTH));
  return i >= 0 ? `operation ${i + 1} nests deeper than ${MAX_DEPTH} levels` : null;
}

export function validateName(name: string): ChangeError | null {
  return NAME_RE.test(name) ? null : changeError('INVALID_NAME', `"${truncate(name)}" must be 1-64 letters, digits or _ and not start with a digit`);
}

export function validatePropertyNames(names: readonly string[]): ChangeError | null {
  for (const n of names) {
    const e = validateName(n);
    if (e) return e;
    if (RESERVED_PROPERTIES.has(n)) return changeError('INVALID_NAME', `"${n}" is reserved`);
  }
  if (new Set(names).size !== names.length) return changeError('INVALID_NAME', 'property names repeat');
  return null;
}

/** A UUID in its canonical (lower-case) form; anything else as it is. */
const canonicalId = (v: unknown): unknown => normalizeUuid(v) ?? v;

/**
 * The payload recorded in the change log: the input with absent fields made explicit and its
 * UUIDs in canonical form, so a resend in other letter case is the same change (DUPLICATE).
 */
export function normalizePayload(input: ChangeInput): Record<string, unknown> {
  return {
    id: canonicalId(input.id),
    deviceId: input.deviceId ?? null,
    dataset: input.dataset,
    entityId: canonicalId(input.entityId ?? null),
    action: input.action,
    label: input.label ?? null,
    data: input.data ?? null,
    baseVersion: input.baseVersion ?? null,
    trunkVersion: input.trunkVersion ?? null,
    branchId: canonicalId(input.branchId ?? null),
    // Only present when used, so payloads recorded before these fields existed compare equal.
    ...(input.localId != null ? { localId: input.localId } : {}),
    ...(input.operations != null ? { operations: input.operations } : {}),
  };
}

/**
 * Whether a recorded payload and a resent one are the same change. Payloads recorded before
 * UUIDs were stored canonically are compared in canonical form too.
 */
export function samePayload(recorded: Record<string, unknown>, resent: Record<string, unknown>): boolean {
  const canonical = (p: Record<string, unknown>) => ({ ...p, id: canonicalId(p.id), entityId: canonicalId(p.entityId), branchId: canonicalId(p.branchId) });
  return sameJson(canonical(recorded), canonical(resent));
}

export type Validation = { ok: true; change: ValidChange } | { ok: false; error: ChangeError };

/**
 * Checks that need no database: shapes, ids, sizes, version numbers. What needs the dataset
 * or the entity (declared properties, existence, version ahead) is checked in sync.
 */
export function validateChange(input: ChangeInput, limits: Limits): Validation {
  const fail = (error: ChangeError): Validation => ({ ok: false, error });
  // Before anything walks it recursively (sizes, NUL checks, JSON.stringify): refuse absurd
  // nesting first, in data and in operation values alike, or the walk itself overflows the stack.
  const deep = deepestValue(input);
  if (deep !== null) return fail(changeError('INVALID_PROPERTY_VALUE', deep));
  const bytes = jsonBytes(normalizePayload(input));
  if (bytes > limits.maxChangeBytes) return fail(changeError('TOO_LARGE', `${bytes} bytes, limit ${limits.maxChangeBytes}`));
  if (hasNul(input.dataset) || hasNul(input.deviceId)) return fail(changeError('MALFORMED_CHANGE', 'dataset or deviceId holds a NUL character or a lone surrogate'));
  if (input.deviceId != null && !isValidDeviceId(input.deviceId)) return fail(changeError('INVALID_DEVICE_ID', `deviceId of ${String(input.deviceId).length} characters; at most ${MAX_ID_LENGTH} are accepted`));
  if (!isUuid(input.id)) return fail(changeError('MALFORMED_ID', `id "${truncate(input.id)}"`));
  if (!CHANGE_ACTIONS.includes(input.action)) return fail(changeError('MALFORMED_CHANGE', `unknown action "${truncate(String(input.action))}"`));
  if (input.localId != null) {
    if (!isValidLocalId(input.localId)) return fail(changeError('MALFORMED_ID', 'localId must be 1-200 characters'));
    if (!input.deviceId) return fail(changeError('MISSING_DEVICE_ID'));
  }
  if (input.entityId == null || input.entityId === '') return fail(changeError('MISSING_ENTITY_ID', input.localId != null ? `localId "${truncate(input.localId)}" is not known` : undefined));
  if (!isUuid(input.entityId)) return fail(changeError('MALFORMED_ID', `entityId "${truncate(input.entityId)}"`));
  if (input.branchId != null && !isUuid(input.branchId)) return fail(changeError('MALFORMED_ID', `branchId "${truncate(input.branchId)}"`));
  if (input.trunkVersion != null && input.branchId == null) return fail(changeError('TRUNK_VERSION_WITHOUT_BRANCH'));
  for (const [name, v] of [['baseVersion', input.baseVersion], ['trunkVersion', input.trunkVersion]] as const) {
    if (v != null && (!Number.isSafeInteger(v) || v < 1 || v > MAX_VERSION)) return fail(changeError('BASE_VERSION_INVALID', `${name} ${v}`));
  }

  const data = input.data ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return fail(changeError('MALFORMED_CHANGE', 'data must be an object of property values'));
  const entries = Object.entries(data);
  if (entries.length > limits.maxProperties) return fail(changeError('TOO_LARGE', `${entries.length} properties, limit ${limits.maxProperties}`));
  for (const [k, v] of entries) {
    if (RESERVED_PROPERTIES.has(k)) return fail(changeError('UNKNOWN_PROPERTY', `"${truncate(k)}" is reserved`));
    if (hasNul(k)) return fail(changeError('UNKNOWN_PROPERTY', `"${truncate(k)}" holds a NUL character`));
    if (!isJsonValue(v) || hasNul(v)) return fail(changeError('INVALID_PROPERTY_VALUE', `"${truncate(k)}"`));
  }

  let label: string | null = input.label ?? null;
  if (label !== null) {
    label = label.trim();
    if (label === '') return fail(changeError(input.action === 'CREATE' ? 'MISSING_LABEL' : 'INVALID_LABEL', 'label is empty'));
    if (label.length > limits.maxLabelLength) return fail(changeError('INVALID_LABEL', `longer than ${limits.maxLabelLength} characters`));
    // NUL cannot be stored in Postgres text; control characters in a label are never intended.
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(label)) return fail(changeError('INVALID_LABEL', 'control characters'));
    if (hasNul(label)) return fail(changeError('INVALID_LABEL', 'a lone surrogate (not valid Unicode)'));
  }

  if (input.action === 'CREATE') {
    if (label === null) return fail(changeError('MISSING_LABEL'));
  } else if (input.baseVersion == null) {
    return fail(changeError('BASE_VERSION_MISSING'));
  }
  if (input.trunkVersion != null && input.baseVersion != null && input.baseVersion < input.trunkVersion) {
    return fail(changeError('BASE_BELOW_TRUNK', `baseVersion ${input.baseVersion} < trunkVersion ${input.trunkVersion}`));
  }
  // Every position of a run is bounded where it is accepted, so gaps, chains and the positions
  // the server asks for next (k + 1) stay small and inside int4.
  if (input.branchId != null && input.action !== 'CREATE') {
    const length = (input.baseVersion ?? 0) - (input.trunkVersion ?? 0);
    if (length > limits.maxRunLength) return fail(changeError('RUN_TOO_LONG', `change ${length} of the run, limit ${limits.maxRunLength}`));
  }

  let operations: Operation[] | undefined;
  if (input.operations != null) {
    if (input.action === 'DELETE' && input.operations.length > 0) return fail(changeError('INVALID_OPERATION', 'a delete carries no operations'));
    const parsed = parseOperations(input.operations);
    if (!parsed.ok) return fail(parsed.error);
    const reserved = parsed.operations.find((o) => o.op !== 'SET_LABEL' && (RESERVED_PROPERTIES.has(o.property) || hasNul(o.property)));
    if (reserved && reserved.op !== 'SET_LABEL') return fail(changeError('UNKNOWN_PROPERTY', `"${truncate(reserved.property)}" cannot be a property name`));
    operations = parsed.operations;
  }

  return {
    ok: true,
    change: {
      id: input.id.toLowerCase(),
      deviceId: input.deviceId ?? null,
      dataset: input.dataset,
      entityId: input.entityId.toLowerCase(),
      action: input.action,
      label,
      data: data as PropertyValues,
      baseVersion: input.baseVersion ?? null,
      trunkVersion: input.trunkVersion ?? null,
      branchId: input.branchId?.toLowerCase() ?? null,
      ...(input.localId != null ? { localId: input.localId } : {}),
      ...(operations ? { operations } : {}),
    },
  };
}

export function undeclaredProperties(data: PropertyValues, declared: readonly string[], operations: readonly Operation[] = []): string[] {
  const known = new Set(declared);
  const used = new Set([...Object.keys(data), ...operations.flatMap((o) => (o.op === 'SET_LABEL' ? [] : [o.property]))]);
  return [...used].filter((k) => !known.has(k));
}

function truncate(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
