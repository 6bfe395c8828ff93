import { Link, useRoute } from 'wouter';

const PAGES: [string, string][] = [
  ['records', 'Records'],
  ['conflicts', 'Conflict inbox'],
  ['backlog', 'Held backlog'],
  ['rejected', 'Refused changes'],
  ['devices', 'Devices and activity'],
];

/** The views of one dataset, the current one marked with aria-current (so a screen reader says where it is). */
export function DatasetNav({ dataset }: { dataset: string }) {
  const [, params] = useRoute<{ name: string; view: string }>('/datasets/:name/:view/*?');
  const base = `/datasets/${encodeURIComponent(dataset)}`;
  return (
    <nav aria-label={`Views of ${dataset}`} className="dataset-nav">
      {PAGES.map(([view, label]) => (
        <Link key={view} href={`${base}/${view}`} aria-current={params?.view === view ? 'page' : undefined}>
          {label}
        </Link>
      ))}
    </nav>
  );
}

/** A route's dataset name as typed in the address bar: a malformed escape (`%`) is kept as text, not thrown. */
export function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
