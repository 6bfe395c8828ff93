import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ResultOf } from 'gql.tada';
import { useId, useState } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { ConflictTag } from '../components/conflict.tsx';
import { ConfirmStep } from '../components/confirm-step.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { Value } from '../components/values.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';
import '../components/review.css';

const Inbox = graphql(`
  query ConflictInbox($dataset: String!, $conflict: ConflictType, $after: String) {
    conflictInbox(dataset: $dataset, conflict: $conflict, first: 20, after: $after) {
      edges {
        node {
          id label conflict conflictingProperties lastConflictAt deleted version
          conflictDetails {
            property
            now { value version deviceId }
            writes { value version deviceId conflicting }
          }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const Counts = graphql(`
  query InboxCounts($dataset: String!) {
    dataset(name: $dataset) { name stats { hardConflicts softConflicts } }
  }
`);

const ResolveMany = graphql(`
  mutation ResolveMany($items: [ResolveItemInput!]!, $note: String) {
    resolveConflicts(items: $items, note: $note) {
      __typename
      ... on MutationResolveConflictsSuccess { data { entityId resolved error { code message } } }
      ... on Error { code message }
    }
  }
`);

type Row = ResultOf<typeof Inbox>['conflictInbox']['edges'][number]['node'];

type Filter = 'ALL' | 'HARD' | 'SOFT';
const FILTERS: [Filter, string][] = [
  ['ALL', 'All'],
  ['HARD', 'Hard only'],
  ['SOFT', 'Soft only'],
];

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** Every device that wrote a competing value of the row's conflicting properties, in first-seen order. */
const devicesOf = (e: Row) => [...new Set(e.conflictDetails.flatMap((d) => [...d.writes.map((w) => w.deviceId), d.now.deviceId]).filter((d): d is string => d !== null))];

/**
 * The conflicted records of one dataset, newest conflict first, 20 at a time, updated live; per record
 * the competing values and the devices that wrote them, and a checkbox to mark many resolved at once
 * (issue 19, item 8).
 */
export function ConflictInboxView({ dataset }: { dataset: string }) {
  const { token } = useSession();
  const queryClient = useQueryClient();
  const now = useNow(5000);
  const [filter, setFilter] = useState<Filter>('ALL');
  // Selected records with the version the reviewer saw when ticking them: the verdict is made there.
  const [selected, setSelected] = useState<Map<string, { version: number; label: string }>>(new Map());
  const [refused, setRefused] = useState<Map<string, string>>(new Map());
  const [confirming, setConfirming] = useState(false);
  const [note, setNote] = useState('');
  const [summary, setSummary] = useState<string | null>(null);
  const legendId = useId();
  const noteId = useId();
  const inbox = useInfiniteQuery({
    queryKey: ['dataset', dataset, 'inbox', filter],
    queryFn: ({ pageParam }) => request(token, Inbox, { dataset, conflict: filter === 'ALL' ? null : filter, after: pageParam }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => (last.conflictInbox.pageInfo.hasNextPage ? last.conflictInbox.pageInfo.endCursor : null),
  });
  const counts = useQuery({ queryKey: ['dataset', dataset, 'inbox-counts'], queryFn: () => request(token, Counts, { dataset }) });
  const stats = counts.data?.dataset?.stats;
  const rows = inbox.data?.pages.flatMap((p) => p.conflictInbox.edges.map((e) => e.node)) ?? [];

  const resolveMany = useMutation({
    mutationFn: async () => {
      const items = [...selected].map(([entityId, s]) => ({ entityId, version: s.version }));
      const r = (await request(token, ResolveMany, { items, note: note.trim() === '' ? null : note })).resolveConflicts;
      if (r.__typename !== 'MutationResolveConflictsSuccess') throw new Error(`Not done: ${r.message}`);
      return r.data;
    },
    onSuccess: (results) => {
      const notDone = new Map(refused);
      let resolved = 0;
      for (const item of results) {
        if (item.resolved) {
          resolved++;
          notDone.delete(item.entityId);
        } else {
          const why = item.error?.code === 'STALE_VERSION' ? `changed since you selected it (${item.error.message})` : (item.error?.message ?? 'not resolved');
          notDone.set(item.entityId, why);
        }
      }
      const failed = results.length - resolved;
      setSummary(`${plural(resolved, 'record', 'records')} marked resolved${failed > 0 ? `; ${failed} not: see the rows marked "Not resolved"` : ''}.`);
      setRefused(notDone);
      setSelected(new Map());
      setConfirming(false);
      setNote('');
      void queryClient.invalidateQueries({ queryKey: ['dataset', dataset] });
      void queryClient.invalidateQueries({ queryKey: ['overview'] });
    },
  });

  const toggle = (e: Row, on: boolean) => {
    setSelected((s) => {
      const next = new Map(s);
      if (on) next.set(e.id, { version: e.version, label: e.label });
      else next.delete(e.id);
      return next;
    });
    // Ticking a record again is deciding on what is there now.
    if (on)
      setRefused((r) => {
        const next = new Map(r);
        next.delete(e.id);
        return next;
      });
  };
  const allOnPage = rows.length > 0 && rows.every((e) => selected.has(e.id));

  return (
    <Page title={`Conflict inbox: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <p>Records where edits crossed each other, with the values that compete and the devices that wrote them. Open one to choose values, or tick several to mark them resolved as they stand. New conflicts appear here as they happen.</p>
      {stats && (
        <p role="status" className="count">
          {plural(stats.hardConflicts + stats.softConflicts, 'open conflict', 'open conflicts')} in all: {stats.hardConflicts} hard, {stats.softConflicts} soft.
        </p>
      )}
      <fieldset className="filter" aria-labelledby={legendId}>
        <legend id={legendId}>Show</legend>
        {FILTERS.map(([value, label]) => (
          <label key={value}>
            <input type="radio" name="conflict-filter" value={value} checked={filter === value} onChange={() => setFilter(value)} /> {label}
          </label>
        ))}
      </fieldset>
      {summary && (
        <p role="status" className="ok-note">
          {summary}
        </p>
      )}
      {!inbox.data ? (
        <QueryState pending={inbox.isPending} error={inbox.error} what="the conflicts" />
      ) : rows.length === 0 ? (
        <p className="empty" role="status">
          {filter === 'ALL' ? 'No open conflicts.' : `No open ${filter === 'HARD' ? 'hard' : 'soft'} conflicts.`}
        </p>
      ) : (
        <>
          <div className="bulk">
            <button type="button" disabled={selected.size === 0} onClick={() => setConfirming(true)}>
              Mark selected resolved{selected.size > 0 ? ` (${selected.size})` : ''}
            </button>
          </div>
          <div className="table-wrap">
            <table className="inbox">
              <caption className="visually-hidden">Open conflicts in {dataset}, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">
                    <input
                      type="checkbox"
                      aria-label="Select every record on this page"
                      checked={allOnPage}
                      onChange={(ev) => rows.forEach((e) => toggle(e, ev.target.checked))}
                    />
                  </th>
                  <th scope="col">Record</th>
                  <th scope="col">Conflict</th>
                  <th scope="col">Competing values</th>
                  <th scope="col">Devices</th>
                  <th scope="col">When</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((e) => (
                  <tr key={e.id}>
                    <td>
                      <input type="checkbox" aria-label={`Select ${e.label}`} checked={selected.has(e.id)} onChange={(ev) => toggle(e, ev.target.checked)} />
                    </td>
                    <th scope="row">
                      <Link href={`/entities/${e.id}`}>{e.label}</Link>
                      {e.deleted && <span className="tag">deleted</span>}
                      {refused.has(e.id) && (
                        <p className="error refused">
                          Not resolved: {refused.get(e.id)}
                        </p>
                      )}
                    </th>
                    <td>{e.conflict && <ConflictTag type={e.conflict} />}</td>
                    <td>
                      <Competing row={e} />
                    </td>
                    <td>
                      {e.conflictDetails.length === 0 ? (
                        // A soft conflict overwrote nothing: no values compete, so no devices are named here (the record's history has them).
                        <span className="muted">–</span>
                      ) : (
                        devicesOf(e).join(', ') || <span className="muted">none named</span>
                      )}
                    </td>
                    <td>{e.lastConflictAt && <Ago at={e.lastConflictAt} now={now} />}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {inbox.hasNextPage && (
        <button type="button" onClick={() => void inbox.fetchNextPage()} disabled={inbox.isFetchingNextPage}>
          {inbox.isFetchingNextPage ? 'Loading…' : 'Show more'}
        </button>
      )}
      <ConfirmStep
        open={confirming}
        title={`Mark ${plural(selected.size, 'record', 'records')} resolved?`}
        confirmLabel="Mark resolved"
        onConfirm={() => resolveMany.mutate()}
        onCancel={() => {
          setConfirming(false);
          resolveMany.reset();
        }}
        pending={resolveMany.isPending}
        error={resolveMany.isError ? resolveMany.error.message : null}
      >
        <p>Their values stay as they are now; each is resolved at the version you saw when you ticked it (one that changed since is refused, not cleared unseen):</p>
        <ul>
          {[...selected].map(([id, s]) => (
            <li key={id}>
              {s.label} (version {s.version})
            </li>
          ))}
        </ul>
        <label htmlFor={noteId}>Note for all of them (optional)</label>
        <textarea id={noteId} className="note" maxLength={2000} rows={2} value={note} onChange={(ev) => setNote(ev.target.value)} />
      </ConfirmStep>
    </Page>
  );
}

/** Per conflicting property: the value now and the other values written, each with its device. */
function Competing({ row }: { row: Row }) {
  if (row.conflictDetails.length === 0) return <span className="muted">{row.conflictingProperties.length > 0 ? row.conflictingProperties.join(', ') : 'none overwritten'}</span>;
  return (
    <ul className="plain competing">
      {row.conflictDetails.map((d) => (
        <li key={d.property}>
          <strong>{d.property}</strong>: <Value value={d.now.value} /> now{d.now.deviceId && <> ({d.now.deviceId})</>}
          {d.writes
            .filter((w) => w.version !== d.now.version)
            .reverse()
            .map((w) => (
              <span key={w.version}>
                {' '}
                vs <Value value={w.value} />
                {w.deviceId && <> ({w.deviceId})</>}
              </span>
            ))}
        </li>
      ))}
    </ul>
  );
}
