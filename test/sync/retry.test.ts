import { describe, expect, it } from 'vitest';
import { failureMessage, isTransient, TRANSIENT_ATTEMPTS, withTransientRetry } from '../../src/sync/retry.js';

/**
 * Which failures the write path tries again (src/sync/retry.ts), how often, and what it says of one
 * that stays. Plain values, no database: the medium layer reaches these only through faults it
 * injects, so here each rule is pinned where `npm run mutate:sync` breaks it.
 */

/** An error wrapped `depth` times in `cause`, as Drizzle wraps the driver's. */
const wrapped = (inner: unknown, depth: number): unknown => (depth === 0 ? inner : Object.assign(new Error(`wrap ${depth}`), { cause: wrapped(inner, depth - 1) }));

describe('isTransient', () => {
  it('a serialization failure or a deadlock, up to 7 causes deep; nothing else, nor deeper', () => {
    expect(isTransient({ code: '40001' })).toBe(true);
    expect(isTransient({ code: '40P01' })).toBe(true);
    expect(isTransient(wrapped({ code: '40001' }, 7))).toBe(true);
    expect(isTransient(wrapped({ code: '40001' }, 8))).toBe(false);
    expect(isTransient({ code: '23505' })).toBe(false);
    expect(isTransient(wrapped({ code: '23505' }, 3))).toBe(false);
    expect(isTransient({ code: 40001 })).toBe(false);
    expect(isTransient(new Error('plain'))).toBe(false);
    expect(isTransient(null)).toBe(false);
  });

  it('a database out of reach (a cut connection, a closed PGlite) whatever its code says', () => {
    expect(isTransient({ code: '08006' })).toBe(true);
    expect(isTransient(new Error('PGlite is closed'))).toBe(true);
    expect(isTransient(wrapped({ code: '08006' }, 2))).toBe(true);
  });
});

describe('withTransientRetry', () => {
  it('a transient failure is tried again after a doubling wait, up to the attempts given, then thrown as the last one was', async () => {
    let calls = 0;
    const always = () => Promise.reject(Object.assign(new Error(`try ${++calls}`), { code: '40001' }));
    const started = performance.now();
    await expect(withTransientRetry(always, 3)).rejects.toThrow('try 3');
    expect(calls).toBe(3);
    // It backs off between tries, doubling from 25 ms: 25 + 50 before the third (a lower bound only).
    expect(performance.now() - started).toBeGreaterThanOrEqual(74);
  });

  it('one that then succeeds answers its value; any other failure is thrown at once', async () => {
    let calls = 0;
    expect(await withTransientRetry(async () => (++calls < 3 ? Promise.reject({ code: '40P01' }) : 'done'))).toBe('done');
    expect(calls).toBe(3);
    calls = 0;
    await expect(withTransientRetry(() => Promise.reject(Object.assign(new Error(`unique ${++calls}`), { code: '23505' })))).rejects.toThrow('unique 1');
    expect(calls).toBe(1);
    expect(TRANSIENT_ATTEMPTS).toBe(6);
  });
});

describe('failureMessage', () => {
  it('the innermost message, at most 8 causes in, cut to 200 characters', () => {
    expect(failureMessage(wrapped(new Error('disk full'), 3))).toBe('disk full');
    expect(failureMessage(wrapped(new Error('too deep'), 9))).toBe('wrap 1');
    expect(failureMessage(wrapped(new Error('x'.repeat(300)), 1))).toBe('x'.repeat(200));
    expect(failureMessage(wrapped('a string cause', 2))).toBe('a string cause');
    expect(failureMessage(null)).toBe('null');
  });
});
