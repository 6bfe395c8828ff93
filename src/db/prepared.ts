/**
 * Which statement shapes of a kind are sent prepared: the first `max` seen, for as long as the
 * process runs. A prepared statement stays in each pool connection (and its plan in the
 * backend), so a statement whose text a client can vary (the columns a pull asks for) is
 * prepared only for its first few shapes; any other shape goes unnamed, as before.
 */
export function boundedSet(max: number): { admit(shape: string): boolean } {
  const shapes = new Set<string>();
  return {
    admit(shape) {
      if (shapes.has(shape)) return true;
      if (shapes.size >= max) return false;
      shapes.add(shape);
      return true;
    },
  };
}
