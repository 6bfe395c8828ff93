/**
 * What a field costs before anything runs (Pothos complexity, checked against
 * Limits.maxQueryComplexity): each field 1, and a list multiplies what is selected under it by the
 * most items it can hold. That bound is real: a page's size from its arguments (default, capped at
 * its maximum), or the hard cap the service enforces (a run's length, a dataset's properties), so
 * nested lists multiply to what the query can actually load. Lists drawn from a row already loaded
 * (a version's diffs and operations) are that row: they cost their fields once. Fields of results
 * already in hand (what a mutation or an event returns) cost nothing; what they load does.
 */

/** A page size from its argument: the default when absent, within 1..max. */
export const pageSize = (asked: number | null | undefined, fallback: number, max: number): number => Math.min(Math.max(asked ?? fallback, 1), max);

/**
 * A Relay connection's price: the page size (first or last). Its `edges` and `nodes` cost 1 each
 * (builder.ts), so what is selected on a node is counted once per item of the page.
 */
export const connectionPrice =
  (fallback: number, max: number) =>
  (args: { first?: number | null; last?: number | null }): { field: number; multiplier: number } => ({
    field: 1,
    multiplier: pageSize(args.first ?? args.last, fallback, max),
  });

/** A list read from a row already loaded: no more rows than the row. */
export const IN_ROW = { field: 1, multiplier: 1 } as const;

/** A field of a result already in hand (a mutation's or an event's): nothing to load. */
export const IN_HAND = 0;
