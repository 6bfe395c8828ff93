import type { ResultOf } from 'gql.tada';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { memo, useCallback, useEffect, useId, useRef, useState } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { ChangeSets } from '../components/change-sets.tsx';
import { LiveAgo, LiveCountdown } from '../components/clock.tsx';
import { DatasetNav } from '../components/dataset-nav.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { Pager, useCursorPages } from '../components/pager.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

export const BACKLOG_PAGE = 50;

const Backlog = graphql(`
  query Backlog($dataset: String!, $first: Int, $after: String) {
    heldChanges(dataset: $dataset, first: $first, after: $after) {
      nodes {
        changeId entityId deviceId branchId step waitsForStep heldSince forceAfter change
        entity { id label }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const HeldCount = graphql(`
  query HeldCount($dataset: String!) {
    dataset(name: $dataset) { name stats { heldChanges } }
  }
`);

const ForceNow = graphql(`
  mutation ForceNow($changeId: String!) {
    flushBacklog(olderThanSeconds: 0, changeId: $changeId) {
      changes { changeId outcome version error { message } released { changeId } }
    }
  }
`);

type Held = ResultOf<typeof Backlog>['heldChanges']['nodes'][number];

/** "Step 3 of run 1a2b3c4d, waits for step 2": a run as the person who made it counts, not in base versions. */
export const runText = (h: Pick<Held, 'step' | 'waitsForStep'>) => `step ${h.step} of the run, waits for step ${h.waitsForStep}`;

/**
 * One held change. Memoised, and its times tick on their own (components/clock.tsx): a page of
 * rows renders once, and again only when its data changes.
 */
const HeldRow = memo(function HeldRow({ h, mayForce, onForce }: { h: Held; mayForce: boolean; onForce: (h: Held) => void }) {
  const rowId = `held-${h.changeId}`;
  return (
    <tr>
      <th scope="row" id={rowId}>
        {h.entity ? <Link href={`/entities/${h.entity.id}`}>{h.entity.label}</Link> : <span>not created yet <code title={h.entityId}>{h.entityId.slice(0, 8)}</code></span>}
      </th>
      <td className="nowrap">{h.deviceId ?? <span className="muted">none named</span>}</td>
      <td>
        {runText(h)}
        <div className="muted">
          run <code title={h.branchId}>{h.branchId.slice(0, 8)}</code>
        </div>
      </td>
      <td>
        <ChangeSets payload={h.change} inRun />
      </td>
      <td className="nowrap">
        <LiveAgo at={h.heldSince} />
      </td>
      <td className="nowrap">
        <LiveCountdown until={h.forceAfter} due="due: the next flush forces it" />
      </td>
      {mayForce && (
        <td className="nowrap">
          <button type="button" onClick={() => onForce(h)} aria-describedby={rowId}>
            Force now
          </button>
        </td>
      )}
    </tr>
  );
});

/** Changes waiting for the step before them in their offline run, a page at a time, with what each would set and when it will be forced. */
export function BacklogView({ dataset }: { dataset: string }) {
  const { token, isAdmin } = useSession();
  const queryClient = useQueryClient();
  const [outcome, setOutcome] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Held | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const pages = useCursorPages();
  const backlog = useQuery({
    queryKey: ['dataset', dataset, 'backlog', pages.after],
    // One page from the server (keyset paged: a page costs the same at 50 or 50,000 held). The answer
    // carries its page number, so while the next one loads the caption describes the rows shown.
    queryFn: async () => ({ ...(await request(token, Backlog, { dataset, first: BACKLOG_PAGE, after: pages.after })), page: pages.page }),
    placeholderData: keepPreviousData,
  });
  const count = useQuery({ queryKey: ['dataset', dataset, 'held-count'], queryFn: () => request(token, HeldCount, { dataset }) });
  useEffect(() => {
    if (confirming) dialog.current?.showModal();
    else dialog.current?.close();
  }, [confirming]);
  const force = useMutation({
    mutationFn: (changeId: string) => request(token, ForceNow, { changeId }),
    onSuccess: (data, changeId) => {
      const r = data.flushBacklog.changes[0];
      setConfirming(null);
      if (!r) setOutcome(`Change ${changeId.slice(0, 8)} was no longer held: it was applied meanwhile.`);
      else if (r.outcome === 'APPLIED') setOutcome(`Forced: change ${changeId.slice(0, 8)} is now version ${r.version}${r.released.length > 0 ? `, and ${r.released.length} step(s) after it were released` : ''}.`);
      else setOutcome(`Change ${changeId.slice(0, 8)} could not be applied: ${r.error?.message ?? r.outcome}.`);
      void queryClient.invalidateQueries({ queryKey: ['dataset', dataset] });
      void queryClient.invalidateQueries({ queryKey: ['overview'] });
    },
  });
  const resetForce = force.reset;
  // Stable, so the memoised rows do not re-render when the mutation's state changes.
  const onForce = useCallback(
    (h: Held) => {
      resetForce();
      setConfirming(h);
    },
    [resetForce],
  );
  const held = backlog.data?.heldChanges.nodes ?? [];
  const pageInfo = backlog.data?.heldChanges.pageInfo;
  const shownPage = backlog.data?.page ?? pages.page;
  const total = count.data?.dataset?.stats?.heldChanges;
  // Forcing the last change of a later page leaves it empty: step back rather than say "nothing is held".
  const emptyLaterPage = backlog.data && !backlog.isPlaceholderData && held.length === 0 && pages.page > 1;
  const { previous } = pages;
  useEffect(() => {
    if (emptyLaterPage) previous();
  }, [emptyLaterPage, previous]);
  return (
    <Page title={`Held backlog: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <DatasetNav dataset={dataset} />
      <p>
        A change from an offline run waits here until the step before it arrives; then it is applied (released). If that never happens, it is applied anyway when its waiting time runs out
        (forced), and marked for review.
      </p>
      {outcome && (
        <p role="status" className="notice">
          {outcome}
        </p>
      )}
      {!backlog.data ? (
        <QueryState pending={backlog.isPending} error={backlog.error} what="the backlog" />
      ) : held.length === 0 ? (
        <p className="empty" role="status">
          Nothing is held. Changes that arrive ahead of the step before them appear here as they come.
        </p>
      ) : (
        <>
          {total !== undefined && (
            <p>
              {total.toLocaleString()} held, oldest first; {BACKLOG_PAGE} a page.
            </p>
          )}
          <div className="table-wrap">
            <table aria-busy={backlog.isFetching}>
              <caption className="visually-hidden">
                Held changes in {dataset}, oldest first, page {shownPage}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Record</th>
                  <th scope="col">Device</th>
                  <th scope="col">Place in its run</th>
                  <th scope="col">What it would set</th>
                  <th scope="col">Held since</th>
                  <th scope="col">Forced in</th>
                  {isAdmin && (
                    <th scope="col">
                      <span className="visually-hidden">Action</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {held.map((h) => (
                  <HeldRow key={h.changeId} h={h} mayForce={isAdmin} onForce={onForce} />
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <Pager
        what="held changes"
        page={pages.page}
        hasNext={pageInfo?.hasNextPage ?? false}
        busy={backlog.isFetching}
        onNext={() => pages.next(pageInfo?.endCursor)}
        onPrevious={pages.previous}
      />
      <dialog ref={dialog} aria-labelledby={titleId} onClose={() => setConfirming(null)}>
        {confirming && (
          <>
            <h2 id={titleId}>
              Force the change to {confirming.entity?.label ?? 'a record not created yet'} now?
            </h2>
            <p>
              It is {runText(confirming)}. Forcing applies it now without step {confirming.waitsForStep}, on the record as it is; it is marked for review as a conflict, and the held steps
              after it in the run are released.
            </p>
            <ChangeSets payload={confirming.change} inRun />
            {force.isError && (
              <p role="alert" className="error">
                {force.error.message}
              </p>
            )}
            <div className="actions">
              <button type="button" onClick={() => force.mutate(confirming.changeId)} disabled={force.isPending}>
                Force it now
              </button>{' '}
              <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                Cancel
              </button>
            </div>
          </>
        )}
      </dialog>
    </Page>
  );
}
