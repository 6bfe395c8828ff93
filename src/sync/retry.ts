import { setTimeout as sleep } from 'node:timers/promises';
import { isDatabaseUnreachable } from '../db/client.js';

/** Serialization failure and deadlock: the same work succeeds when tried again. */
const CONTENTION = new Set(['40001', '40P01']);

/**
 * True for a failure that says nothing about the work itself: the database could not be reached
 * (db isDatabaseUnreachable: a cut connection, a terminated backend, a commit whose answer was
 * lost) or the work lost a race (serialization failure, deadlock). Drizzle wraps the driver's
 * error in `cause`.
 */
export function isTransient(error: unknown): boolean {
  if (isDatabaseUnreachable(error)) return true;
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONTENTION.has(code)) return true;
  }
  return false;
}

/** Attempts of a unit of work that fails transiently; the backoff doubles from 25 ms (about 0.8 s in all). */
export const TRANSIENT_ATTEMPTS = 6;

/**
 * Runs `work` again while it fails transiently, with a short doubling backoff; the last transient
 * failure is thrown (the request answers 503 SERVICE_UNAVAILABLE: resend), any other at once.
 */
export async function withTransientRetry<T>(work: () => Promise<T>, attempts = TRANSIENT_ATTEMPTS): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      await sleep(25 * 2 ** (attempt - 1));
    }
  }
}

/** What went wrong, in a line: the innermost cause's message (Drizzle wraps the driver's error, whose message says why). */
export function failureMessage(error: unknown): string {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && (e as { cause?: unknown } | null)?.cause; depth++) e = (e as { cause: unknown }).cause;
  return String((e as Error | null)?.message ?? e).slice(0, 200);
}
