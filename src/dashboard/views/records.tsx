import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { ConflictTag } from '../components/conflict.tsx';
import { DatasetNav } from '../components/dataset-nav.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { Pager, useCursorPages } from '../components/pager.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { Value } from '../components/values.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

export const PAGE_SIZE = 25;
/** More columns than this and the table no longer fits a tablet; the record view shows them all. */
const MAX_COLUMNS = 5;

const Properties = graphql(`
  query DatasetProperties($dataset: String!) {
    dataset(name: $dataset) { name properties }
  }
`);

const Records = graphql(`
  query Records($dataset: String!, $search: String, $property: PropertyFilterInput, $inConflict: Boolean, $conflict: ConflictType, $includeDeleted: Boolean, $first: Int, $after: String) {
    entities(dataset: $dataset, search: $search, property: $property, inConflict: $inConflict, conflict: $conflict, includeDeleted: $includeDeleted, first: $first, after: $after) {
      nodes { id label version deleted conflict data updatedAt }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

type ConflictState = 'ANY' | 'OPEN' | 'HARD' | 'SOFT' | 'NONE';
const STATES: [ConflictState, string][] = [
  ['ANY', 'Any'],
  ['OPEN', 'In conflict'],
  ['HARD', 'Hard conflict'],
  ['SOFT', 'Soft conflict'],
  ['NONE', 'No conflict'],
];

interface Filters {
  search: string;
  property: string;
  value: string;
  state: ConflictState;
  includeDeleted: boolean;
}
const NO_FILTERS: Filters = { search: '', property: '', value: '', state: 'ANY', includeDeleted: false };

/**
 * What a reviewer types, as the JSON value the API compares: numbers, true, false and quoted text as
 * JSON, anything else as the text typed; empty finds records where the property is not set.
 */
export function parseValue(text: string): unknown {
  const t = text.trim();
  if (t === '') return null;
  if (/^(-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null|".*")$/.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return t;
    }
  }
  return t;
}

function variables(dataset: string, f: Filters, after: string | null) {
  return {
    dataset,
    search: f.search.trim() || null,
    property: f.property ? { name: f.property, value: parseValue(f.value) } : null,
    inConflict: f.state === 'OPEN' ? true : f.state === 'NONE' ? false : null,
    conflict: f.state === 'HARD' || f.state === 'SOFT' ? f.state : null,
    includeDeleted: f.includeDeleted,
    first: PAGE_SIZE,
    after,
  };
}

/** Every record of a dataset, conflicted or not: searched by label, filtered by a property's value and by conflict state, a page at a time. */
export function RecordsView({ dataset }: { dataset: string }) {
  const { token } = useSession();
  const now = useNow(30_000);
  const [applied, setApplied] = useState<Filters>(NO_FILTERS);
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const pages = useCursorPages();
  const ids = { search: useId(), property: useId(), value: useId(), valueHint: useId(), states: useId() };
  const props = useQuery({ queryKey: ['dataset', dataset, 'properties'], queryFn: () => request(token, Properties, { dataset }) });
  const records = useQuery({
    queryKey: ['dataset', dataset, 'records', applied, pages.after],
    // The answer carries the filters and page it is for: while the next one loads, the caption describes the rows shown.
    queryFn: async () => ({ ...(await request(token, Records, variables(dataset, applied, pages.after))), filters: applied, page: pages.page }),
    // The rows of the page before stay on screen while the next one loads (no flash of "Loading").
    placeholderData: keepPreviousData,
  });
  const properties = props.data?.dataset?.properties ?? [];
  const columns = properties.slice(0, MAX_COLUMNS);
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setApplied(draft);
    pages.reset();
  };
  const clear = () => {
    setDraft(NO_FILTERS);
    setApplied(NO_FILTERS);
    pages.reset();
  };
  const rows = records.data?.entities.nodes ?? [];
  const shown = records.data ?? { filters: applied, page: pages.page };
  const filtered = JSON.stringify(shown.filters) !== JSON.stringify(NO_FILTERS);

  return (
    <Page title={`Records: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <DatasetNav dataset={dataset} />
      <p>Every record of the dataset, in conflict or not. Open one to see its history and resolve its conflicts.</p>
      <form role="search" aria-label={`Search the records of ${dataset}`} className="filters" onSubmit={apply}>
        <label htmlFor={ids.search}>Label contains</label>
        <input id={ids.search} type="search" value={draft.search} maxLength={200} onChange={(e) => setDraft({ ...draft, search: e.target.value })} />
        <label htmlFor={ids.property}>Property</label>
        <select id={ids.property} value={draft.property} onChange={(e) => setDraft({ ...draft, property: e.target.value })}>
          <option value="">(any)</option>
          {properties.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
        <label htmlFor={ids.value}>Value</label>
        <input id={ids.value} value={draft.value} disabled={!draft.property} aria-describedby={ids.valueHint} onChange={(e) => setDraft({ ...draft, value: e.target.value })} />
        <p id={ids.valueHint} className="hint">
          Numbers and true or false match as such; put text in quotes ("12") to match it as text. Empty: records where the property is not set.
        </p>
        <fieldset className="filter" aria-labelledby={ids.states}>
          <legend id={ids.states}>Conflict</legend>
          {STATES.map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="conflict-state" value={value} checked={draft.state === value} onChange={() => setDraft({ ...draft, state: value })} /> {label}
            </label>
          ))}
        </fieldset>
        <label className="check">
          <input type="checkbox" checked={draft.includeDeleted} onChange={(e) => setDraft({ ...draft, includeDeleted: e.target.checked })} /> Deleted records too
        </label>
        <div className="actions">
          <button type="submit">Show records</button>
          <button type="button" className="secondary" onClick={clear}>
            Clear filters
          </button>
        </div>
      </form>
      {!records.data ? (
        <QueryState pending={records.isPending} error={records.error} what="the records" />
      ) : rows.length === 0 ? (
        <p className="empty" role="status">
          {filtered ? 'No record matches these filters.' : 'This dataset has no records yet.'}
        </p>
      ) : (
        <>
          {records.error && <QueryState pending={false} error={records.error} what="the records" />}
          <div className="table-wrap">
            <table aria-busy={records.isFetching}>
              <caption className="visually-hidden">
                Records in {dataset}
                {filtered ? ', filtered' : ''}, page {shown.page}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Record</th>
                  <th scope="col">Conflict</th>
                  {columns.map((p) => (
                    <th scope="col" key={p}>
                      {p}
                    </th>
                  ))}
                  <th scope="col" className="num">
                    Version
                  </th>
                  <th scope="col">Last changed</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((e) => (
                  <tr key={e.id}>
                    <th scope="row">
                      <Link href={`/entities/${e.id}`}>{e.label}</Link>
                      {e.deleted && <span className="tag">deleted</span>}
                    </th>
                    <td>{e.conflict ? <ConflictTag type={e.conflict} /> : <span className="muted">none</span>}</td>
                    {columns.map((p) => (
                      <td key={p}>
                        <Value value={e.data[p]} />
                      </td>
                    ))}
                    <td className="num">{e.version}</td>
                    <td>
                      <Ago at={e.updatedAt} now={now} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <Pager
        what="records"
        page={pages.page}
        hasNext={records.data?.entities.pageInfo.hasNextPage ?? false}
        busy={records.isFetching}
        onNext={() => pages.next(records.data?.entities.pageInfo.endCursor)}
        onPrevious={pages.previous}
      />
    </Page>
  );
}
