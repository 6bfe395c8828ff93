import { setTimeout as sleep } from 'node:timers/promises';

/**
 * SQLSTATEs and driver codes of failures that say nothing about the change itself: the same work
 * may succeed when tried again. 40001 serialization failure, 40P01 deadlock, 57P01-57P03 the server
 * terminating or starting, 53300 too many connections, class 08 connection exceptions; postgres.js's
 * own codes for a connection that went away; Node's socket errors.
 */
const TRANSIENT_CODES = new Set([
  '40001',
  '40P01',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

/** True when an error (or one it wraps: Drizzle wraps the driver's in `cause`) is transient. */
export function isTransient(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('08'))) return true;
  }
  return false;
}

/** Attempts of a unit of work that fails transiently; the backoff doubles from 25 ms (about 0.8 s in all). */
export const TRANSIENT_ATTEMPTS = 6;

/**
 * Runs `work` again while it fails transiently, with a short doubling backoff; the last transient
 * failure is thrown (the caller answers "unavailable, resend"), any other at once.
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
