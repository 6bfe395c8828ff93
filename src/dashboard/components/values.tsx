/** A property value as a reviewer reads it: strings plain, other JSON compact, an absent value said in words. */
export function Value({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="absent">(not set)</span>;
  if (typeof value === 'string') return <span className="value">{value === '' ? '(empty text)' : value}</span>;
  if (typeof value === 'number' || typeof value === 'boolean') return <span className="value">{String(value)}</span>;
  return <code className="value">{JSON.stringify(value)}</code>;
}

/** One property and its value in a `<dl>`: the record's current values and a held change's payload read alike. */
export function PropertyRow({ name, value }: { name: string; value: unknown }) {
  return (
    <div>
      <dt>{name}</dt>
      <dd>
        <Value value={value} />
      </dd>
    </div>
  );
}

export interface Diff {
  property: string;
  old?: unknown;
  new?: unknown;
}

/** Old → new per property, as a table (a screen reader hears "height, old 12, new 14"). */
export function DiffTable({ diffs, caption, highlight = [] }: { diffs: readonly Diff[]; caption: string; highlight?: readonly string[] }) {
  if (diffs.length === 0) return <p className="muted">No property changed.</p>;
  return (
    <table className="diff">
      <caption className="visually-hidden">{caption}</caption>
      <colgroup>
        <col className="property" />
        <col />
        <col className="arrow" />
        <col />
      </colgroup>
      <thead>
        <tr>
          <th scope="col">Property</th>
          <th scope="col">Old</th>
          <th scope="col" aria-hidden="true" className="arrow" />
          <th scope="col">New</th>
        </tr>
      </thead>
      <tbody>
        {diffs.map((d) => {
          const hot = highlight.includes(d.property);
          return (
            <tr key={d.property} className={hot ? 'hot' : undefined}>
              <th scope="row">
                {d.property === 'label' ? 'label (name)' : d.property}
                {hot && <> <span className="tag hard">also changed meanwhile</span></>}
              </th>
              <td>
                <Value value={d.old} />
              </td>
              <td aria-hidden="true" className="arrow">
                →
              </td>
              <td>
                <Value value={d.new} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
