import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Page, QueryState } from '../components/page.tsx';
import { Ago, duration, useNow } from '../components/time.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const Backlog = graphql(`
  query Backlog($dataset: String!) {
    heldChanges(dataset: $dataset, first: 500) {
      nodes {
        changeId entityId deviceId branchId baseVersion waitsFor heldSince forceAfter
        entity { id label }
      }
      pageInfo { hasNextPage }
    }
  }
`);

const ForceNow = graphql(`
  mutation ForceNow($changeId: String!) {
    flushBacklog(olderThanSeconds: 0, changeId: $changeId) {
      changeId outcome version
      error { message }
      released { changeId }
    }
  }
`);

/** Changes waiting for the step before them in their offline run, with when each will be forced. */
export function BacklogView({ dataset }: { dataset: string }) {
  const { token, isAdmin } = useSession();
  const queryClient = useQueryClient();
  const now = useNow(1000);
  const [outcome, setOutcome] = useState<string | null>(null);
  const backlog = useQuery({ queryKey: ['dataset', dataset, 'backlog'], queryFn: () => request(token, Backlog, { dataset }) });
  const force = useMutation({
    mutationFn: (changeId: string) => request(token, ForceNow, { changeId }),
    onSuccess: (data, changeId) => {
      const r = data.flushBacklog[0];
      if (!r) setOutcome(`Change ${changeId.slice(0, 8)} was no longer held: it was applied meanwhile.`);
      else if (r.outcome === 'APPLIED') setOutcome(`Forced: change ${changeId.slice(0, 8)} is now version ${r.version}${r.released.length > 0 ? `, and ${r.released.length} step(s) after it were released` : ''}.`);
      else setOutcome(`Change ${changeId.slice(0, 8)} could not be applied: ${r.error?.message ?? r.outcome}.`);
      void queryClient.invalidateQueries({ queryKey: ['dataset', dataset] });
      void queryClient.invalidateQueries({ queryKey: ['overview'] });
    },
  });
  // The oldest page only (the API's largest): paging through the rest is still to come.
  const held = backlog.data?.heldChanges.nodes ?? [];
  const more = backlog.data?.heldChanges.pageInfo.hasNextPage ?? false;
  return (
    <Page title={`Held backlog: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <p>
        A change from an offline run waits here until the step before it arrives; then it is applied (released). If that never happens, it is applied anyway when its waiting time runs out
        (forced), and marked for review.
      </p>
      {outcome && (
        <p role="status" className="notice">
          {outcome}
        </p>
      )}
      {force.isError && (
        <p role="alert" className="error">
          {force.error.message}
        </p>
      )}
      {!backlog.data ? (
        <QueryState pending={backlog.isPending} error={backlog.error} what="the backlog" />
      ) : held.length === 0 ? (
        <p className="empty" role="status">
          Nothing is held. Changes that arrive ahead of the step before them appear here as they come.
        </p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Held changes in {dataset}, oldest first</caption>
            <thead>
              <tr>
                <th scope="col">Record</th>
                <th scope="col">Device</th>
                <th scope="col">Run</th>
                <th scope="col">Waits for</th>
                <th scope="col">Held since</th>
                <th scope="col">Forced in</th>
                {isAdmin && <th scope="col"><span className="visually-hidden">Action</span></th>}
              </tr>
            </thead>
            <tbody>
              {held.map((h) => {
                const left = Date.parse(h.forceAfter) - now;
                const rowId = `held-${h.changeId}`;
                return (
                  <tr key={h.changeId}>
                    <th scope="row" id={rowId}>
                      {h.entity ? <Link href={`/entities/${h.entity.id}`}>{h.entity.label}</Link> : <span>not created yet <code title={h.entityId}>{h.entityId.slice(0, 8)}</code></span>}
                    </th>
                    <td>{h.deviceId ?? <span className="muted">none named</span>}</td>
                    <td>
                      <code title={h.branchId}>{h.branchId.slice(0, 8)}</code>, step {h.baseVersion}
                    </td>
                    <td>step {h.waitsFor}</td>
                    <td>
                      <Ago at={h.heldSince} now={now} />
                    </td>
                    <td>{left > 0 ? duration(left) : <span className="tag soft">due: the next flush forces it</span>}</td>
                    {isAdmin && (
                      <td>
                        <button type="button" onClick={() => force.mutate(h.changeId)} disabled={force.isPending} aria-describedby={rowId}>
                          Force now
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
          {more && <p className="muted">The oldest {held.length} held changes are shown; more are held after them.</p>}
        </div>
      )}
    </Page>
  );
}
