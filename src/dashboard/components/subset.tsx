/** A token's subset in words: "district is d1 or d2, and status is open"; null: the whole datasets. */
export function subsetText(subset: readonly { property: string; values: readonly string[] }[] | null): string {
  if (!subset || subset.length === 0) return 'whole datasets';
  return subset.map((r) => `${r.property} is ${r.values.length === 1 ? r.values[0] : `${r.values.slice(0, -1).join(', ')} or ${r.values.at(-1)}`}`).join(', and ');
}
