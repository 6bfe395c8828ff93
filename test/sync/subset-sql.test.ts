import fc from 'fast-check';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { inSubset, subsetKey, type Subset } from '../../src/core/subsets.js';
import type { JsonValue } from '../../src/core/types.js';
import { inStoredSubsetSql, inSubsetSql, subsetKeySql } from '../../src/sync/subset-sql.js';
import { useSyncContext } from '../helpers/sync-context.js';

/**
 * The subset rule exists twice: core subsetKey/inSubset (writes, events, the client) and its SQL
 * (src/sync/subset-sql.ts: a token's share read from a whole dataset at once). They must agree on
 * every value JSON can carry, on both back ends: values stored as jsonb the way the service stores
 * them (written by JSON.stringify), read back by the SQL.
 */

const ctx = useSyncContext();

function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? []);
}

const value: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('d1', 'true', '42', '-0', '1e3', ' 7', 'ü', '💡'),
  fc.boolean(),
  fc.integer(),
  fc.constantFrom(0, -0, 1e15, 1e15 - 1, -(1e15 - 1), 1e16, 2 ** 53, 1e21, -1e21, 1e-7, 0.1, 1.5, -2.5, Number.MAX_SAFE_INTEGER),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constant(null),
  fc.array(fc.constantFrom('d1', 1), { maxLength: 2 }),
  fc.dictionary(fc.constantFrom('a', 'b'), fc.constantFrom('d1', 1), { maxKeys: 1 }),
);

describe('subsetKey in SQL is subsetKey', () => {
  it('for every kind of value, stored as jsonb and read back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.option(value, { nil: undefined }), { minLength: 1, maxLength: 60 }), async (values) => {
        const docs = values.map((v) => (v === undefined ? {} : { p: v }));
        const rows = rowsOf<{ i: number; k: string | null }>(
          await ctx.db.execute(sql`select x.i::int as i, ${subsetKeySql(sql`x.d`, 'p')} as k from jsonb_array_elements(${JSON.stringify(docs)}::jsonb) with ordinality as x(d, i) order by x.i`),
        );
        expect(rows.map((r) => r.k)).toEqual(values.map((v) => subsetKey(v)));
      }),
      { numRuns: 60 },
    );
  });

  it('inSubset in SQL is inSubset, for one and two rules and none', async () => {
    const doc = fc.record({ district: fc.option(fc.oneof(fc.constantFrom('d1', 'd2', 'D1'), fc.integer({ min: 0, max: 2 }), fc.boolean()), { nil: undefined }), status: fc.option(fc.constantFrom('open', 'closed', true), { nil: undefined }) });
    const rules: fc.Arbitrary<Subset> = fc.oneof(
      fc.constant<Subset>([]),
      fc.uniqueArray(fc.constantFrom('d1', 'd2', '1', 'true'), { minLength: 1, maxLength: 3 }).map((values): Subset => [{ property: 'district', values }]),
      fc.tuple(fc.uniqueArray(fc.constantFrom('d1', '0'), { minLength: 1 }), fc.uniqueArray(fc.constantFrom('open', 'true'), { minLength: 1 })).map(([a, b]): Subset => [
        { property: 'district', values: a },
        { property: 'status', values: b },
      ]),
    );
    await fc.assert(
      fc.asyncProperty(rules, fc.array(doc, { minLength: 1, maxLength: 30 }), async (subset, docs) => {
        const clean = docs.map((d) => JSON.parse(JSON.stringify(d)) as Record<string, JsonValue>);
        const rows = rowsOf<{ i: number; m: boolean }>(
          await ctx.db.execute(sql`select x.i::int as i, (${inSubsetSql(sql`x.d`, subset)}) as m from jsonb_array_elements(${JSON.stringify(clean)}::jsonb) with ordinality as x(d, i) order by x.i`),
        );
        expect(rows.map((r) => r.m)).toEqual(clean.map((d) => inSubset(subset, d)));
        // The same rules stored as jsonb (a token's subset column), judged in one statement.
        const stored = rowsOf<{ i: number; m: boolean }>(
          await ctx.db.execute(
            sql`select x.i::int as i, (${inStoredSubsetSql(sql`x.d`, sql`${JSON.stringify(subset)}::jsonb`)}) as m from jsonb_array_elements(${JSON.stringify(clean)}::jsonb) with ordinality as x(d, i) order by x.i`,
          ),
        );
        expect(stored.map((r) => r.m)).toEqual(clean.map((d) => inSubset(subset, d)));
      }),
      { numRuns: 60 },
    );
  });
});
