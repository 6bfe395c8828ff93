/** SOFT / HARD in plain words, used wherever a conflict is shown. */
export function ConflictTag({ type }: { type: 'SOFT' | 'HARD' }) {
  return <span className={`tag ${type === 'HARD' ? 'hard' : 'soft'}`}>{type === 'HARD' ? 'Hard conflict' : 'Soft conflict'}</span>;
}

export const list = (names: readonly string[]) => (names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`);

/** What the conflict means for the record, for someone who does not know the word. */
export function explainConflict(type: 'SOFT' | 'HARD', properties: readonly string[]): string {
  if (type === 'HARD') {
    const what = properties.length > 0 ? list(properties) : 'a property';
    return `Two edits changed ${what} without seeing each other. The later one is the value kept now; the others are below, with the device and time of each. Keep it or pick another value, then resolve.`;
  }
  return 'An edit was made without seeing newer versions, but they changed other properties, so nothing was overwritten. Look it over, then mark it resolved.';
}
