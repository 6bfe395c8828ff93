import type { JsonValue } from './types.js';

/** Structural equality of JSON values; key order does not matter (as with jsonb). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b as object, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** True for values that survive a JSON round trip unchanged (no undefined, NaN, functions…). */
export function isJsonValue(v: unknown, depth = 0): v is JsonValue {
  if (depth > 32) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isJsonValue(x, depth + 1));
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(v as object).every((x) => isJsonValue(x, depth + 1));
  }
  return false;
}

/** Size in bytes of the UTF-8 JSON text of a value. */
export function jsonBytes(v: unknown): number {
  return new TextEncoder().encode(JSON.stringify(v) ?? '').length;
}

/** U+0000, or a UTF-16 surrogate without its pair: text that Postgres text and jsonb refuse. */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSTORABLE_ALL = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Postgres text and jsonb cannot hold U+0000 or lone surrogates. A rejected change must still
 * be recorded, so what is stored replaces them with U+FFFD; validation rejects such values
 * before they are applied. (Named for NUL, the common case.)
 */
export function scrubNul<T>(v: T): T {
  if (typeof v === 'string') return (UNSTORABLE.test(v) ? v.replace(UNSTORABLE_ALL, '\uFFFD') : v) as T;
  if (Array.isArray(v)) return v.map(scrubNul) as T;
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [scrubNul(k), scrubNul(x)])) as T;
  }
  return v;
}

/** True when a string (or any key or string inside) holds text Postgres cannot store (see scrubNul). */
export function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return UNSTORABLE.test(v);
  if (Array.isArray(v)) return v.some(hasNul);
  if (v !== null && typeof v === 'object') return Object.entries(v).some(([k, x]) => UNSTORABLE.test(k) || hasNul(x));
  return false;
}

/** Deepest nesting a value may have: no form field nests this deep, and deep values are a stack attack. */
export const MAX_DEPTH = 32;

/**
 * True when arrays/objects nest deeper than `limit`. Iterative, so a hostile 100,000-level
 * value cannot overflow the stack before it is refused.
 */
export function nestsDeeperThan(v: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, depth] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(x)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The value as Postgres jsonb will hand it back (Infinity becomes null, undefined keys go). */
export function asStoredJson<T>(v: T): T {
  const text = JSON.stringify(v);
  return (text === undefined ? null : JSON.parse(text)) as T;
}
