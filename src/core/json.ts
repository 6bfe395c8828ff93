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
  return utf8Length(JSON.stringify(v) ?? '');
}

/**
 * Bytes of a string in UTF-8, as TextEncoder writes it (a lone surrogate as U+FFFD, 3 bytes),
 * counted without writing them: every change is measured, and the encoded copy was garbage.
 */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A pair: 2 units, 4 bytes.
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
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

/** How JSON.stringify writes U+0000 and a lone surrogate: as a \u escape (a pair it writes as it is). */
const UNSTORABLE_ESCAPE = /\\u(0000|d[89a-f])/i;

/**
 * `asStoredJson(scrubNul(v))`, in one JSON round trip when there is nothing to scrub, as in
 * nearly every change: scrubNul copies the whole value to find that out. Without such an escape
 * in the text there is nothing to scrub; with one (or a literal backslash-u text that looks like
 * it) the long way decides.
 */
export function storedJson<T>(v: T): T {
  const text = JSON.stringify(v);
  if (text === undefined) return null as T;
  return (UNSTORABLE_ESCAPE.test(text) ? asStoredJson(scrubNul(v)) : JSON.parse(text)) as T;
}
