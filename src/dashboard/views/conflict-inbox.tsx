import { useInfiniteQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { ConflictTag } from '../components/conflict.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const Inbox = graphql(`
  query ConflictInbox($dataset: String!, $conflict: ConflictType, $after: String) {
    conflictInbox(dataset: $dataset, conflict: $conflict, first: 20, after: $after) {
      edges { node { id label conflict conflictingProperties lastConflictAt deleted version } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

type Filter = 'ALL' | 'HARD' | 'SOFT';
const FILTERS: [Filter, string][] = [
  ['ALL', 'All'],
  ['HARD', 'Hard only'],
  ['SOFT', 'Soft only'],
];

/** The conflicted entities of one dataset, newest conflict first, 20 at a time, updated live. */
export function ConflictInboxView({ dataset }: { dataset: string }) {
  const { token } = useSession();
  const now = useNow(5000);
  const [filter, setFilter] = useState<Filter>('ALL');
  const legendId = useId();
  const inbox = useInfiniteQuery({
    queryKey: ['dataset', dataset, 'inbox', filter],
    queryFn: ({ pageParam }) => request(token, Inbox, { dataset, conflict: filter === 'ALL' ? null : filter, after: pageParam }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => (last.conflictInbox.pageInfo.hasNextPage ? last.conflictInbox.pageInfo.endCursor : null),
  });
  const rows = inbox.data?.pages.flatMap((p) => p.conflictInbox.edges.map((e) => e.node)) ?? [];

  return (
    <Page title={`Conflict inbox: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <p>Records where edits crossed each other. Open one to see both sides and resolve it. New conflicts appear here as they happen.</p>
      <fieldset className="filter" aria-labelledby={legendId}>
        <legend id={legendId}>Show</legend>
        {FILTERS.map(([value, label]) => (
          <label key={value}>
            <input type="radio" name="conflict-filter" value={value} checked={filter === value} onChange={() => setFilter(value)} /> {label}
          </label>
        ))}
      </fieldset>
      {!inbox.data ? (
        <QueryState pending={inbox.isPending} error={inbox.error} what="the conflicts" />
      ) : rows.length === 0 ? (
        <p className="empty" role="status">
          {filter === 'ALL' ? 'No open conflicts.' : `No open ${filter === 'HARD' ? 'hard' : 'soft'} conflicts.`}
        </p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Open conflicts in {dataset}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Record</th>
                <th scope="col">Conflict</th>
                <th scope="col">Properties in conflict</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.id}>
                  <th scope="row">
                    <Link href={`/entities/${e.id}`}>{e.label}</Link>
                    {e.deleted && <span className="tag">deleted</span>}
                  </th>
                  <td>{e.conflict && <ConflictTag type={e.conflict} />}</td>
                  <td>{e.conflictingProperties.length > 0 ? e.conflictingProperties.join(', ') : <span className="muted">none overwritten</span>}</td>
                  <td>{e.lastConflictAt && <Ago at={e.lastConflictAt} now={now} />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {inbox.hasNextPage && (
        <button type="button" onClick={() => void inbox.fetchNextPage()} disabled={inbox.isFetchingNextPage}>
          {inbox.isFetchingNextPage ? 'Loading…' : 'Show more'}
        </button>
      )}
    </Page>
  );
}
