import { describe, expect, it } from 'vitest';
import { boundedSet } from '../../src/db/prepared.js';

describe('boundedSet: which statement shapes are prepared', () => {
  it('admits the first shapes up to its bound, keeps admitting those, and refuses any other', () => {
    const set = boundedSet(2);
    expect(set.admit('a')).toBe(true);
    expect(set.admit('b')).toBe(true);
    expect(set.admit('c')).toBe(false);
    expect(set.admit('a')).toBe(true);
    expect(set.admit('b')).toBe(true);
    expect(set.admit('c')).toBe(false);
    expect(set.admit('d')).toBe(false);
  });

  it('with a bound of 0 admits nothing', () => {
    expect(boundedSet(0).admit('a')).toBe(false);
  });
});
