import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ResultOf } from 'gql.tada';
import { useState } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { ConflictTag, explainConflict, list } from '../components/conflict.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { subsetText } from '../components/subset.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { Value } from '../components/values.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';
import { Timeline } from './timeline.tsx';

const EntityQuery = graphql(`
  query Entity($id: ID!) {
    entity(id: $id) {
      id label data version conflict conflictingProperties lastConflictAt deleted
      dataset { name }
      subsetTokens { id name deviceId subset { property values } }
      branches { id trunkVersion missing { from to } changes { position changeId state version heldSince } }
    }
  }
`);

const Resolve = graphql(`
  mutation Resolve($id: ID!, $version: Int!) {
    resolveConflict(entityId: $id, version: $version) {
      __typename
      ... on MutationResolveConflictSuccess { data { id conflict } }
      ... on Error { code message }
    }
  }
`);

type Entity = NonNullable<ResultOf<typeof EntityQuery>['entity']>;

/** One record: where it stands now, its open conflict with "Resolve", its offline runs and its history. */
export function EntityView({ id }: { id: string }) {
  const { token } = useSession();
  const entity = useQuery({ queryKey: ['entity', id, 'header'], queryFn: () => request(token, EntityQuery, { id }) });
  const e = entity.data?.entity;
  if (!entity.data) {
    return (
      <Page title="Record" crumbs={<Link href="/">Datasets</Link>}>
        <QueryState pending={entity.isPending} error={entity.error} what="the record" />
      </Page>
    );
  }
  if (!e) {
    return (
      <Page title="Record not found" crumbs={<Link href="/">Datasets</Link>}>
        <p>There is no record with id {id}. It may not have been created yet (its changes can still be held).</p>
      </Page>
    );
  }
  const ds = e.dataset.name;
  return (
    <Page
      title={e.label}
      crumbs={
        <>
          <Link href="/">Datasets</Link> › <Link href={`/datasets/${encodeURIComponent(ds)}/conflicts`}>Conflict inbox: {ds}</Link>
        </>
      }
    >
      <p className="muted">
        Record {e.id} in {ds} · version {e.version}
        {e.deleted && ' · deleted'}
      </p>
      <ConflictPanel entity={e} />
      <section aria-labelledby="now-heading">
        <h2 id="now-heading">Now</h2>
        <CurrentValues data={e.data} />
      </section>
      <Devices entity={e} />
      <Runs entity={e} />
      <Timeline id={e.id} version={e.version} />
    </Page>
  );
}

function ConflictPanel({ entity: e }: { entity: Entity }) {
  const { token, mayReview } = useSession();
  const queryClient = useQueryClient();
  const now = useNow(5000);
  const [done, setDone] = useState<string | null>(null);
  const resolve = useMutation({
    mutationFn: () => request(token, Resolve, { id: e.id, version: e.version }),
    onSuccess: (data) => {
      const r = data.resolveConflict;
      setDone(r.__typename === 'MutationResolveConflictSuccess' ? 'Resolved: the conflict is cleared.' : `Not resolved: ${'message' in r ? r.message : 'unexpected answer'}`);
      void queryClient.invalidateQueries({ queryKey: ['entity', e.id] });
      void queryClient.invalidateQueries({ queryKey: ['dataset', e.dataset.name] });
      void queryClient.invalidateQueries({ queryKey: ['overview'] });
    },
  });
  if (!e.conflict) {
    return (
      <p className="ok-note" role="status">
        {done ?? 'No open conflict.'}
      </p>
    );
  }
  return (
    <section className={`conflict-panel ${e.conflict === 'HARD' ? 'hard' : 'soft'}`} aria-labelledby="conflict-heading">
      <h2 id="conflict-heading">
        <ConflictTag type={e.conflict} />
        {e.conflictingProperties.length > 0 && <> on {list(e.conflictingProperties)}</>}
        {e.lastConflictAt && (
          <span className="when">
            {' '}
            · <Ago at={e.lastConflictAt} now={now} />
          </span>
        )}
      </h2>
      <p>{explainConflict(e.conflict, e.conflictingProperties)}</p>
      {mayReview && (
        <button type="button" onClick={() => resolve.mutate()} disabled={resolve.isPending} aria-describedby="conflict-heading">
          {resolve.isPending ? 'Resolving…' : 'Resolve'}
        </button>
      )}
      {resolve.isError && (
        <p role="alert" className="error">
          {resolve.error.message}
        </p>
      )}
      {done && <p role="status">{done}</p>}
    </section>
  );
}

function CurrentValues({ data }: { data: Record<string, unknown> }) {
  const entries = Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1));
  if (entries.length === 0) return <p className="muted">No properties set.</p>;
  return (
    <dl className="values">
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>
            <Value value={v} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

/** The devices (tokens with a subset) whose share holds the record now. */
function Devices({ entity: e }: { entity: Entity }) {
  if (e.subsetTokens.length === 0) return null;
  return (
    <section aria-labelledby="devices-heading">
      <h2 id="devices-heading">In the share of</h2>
      <ul className="plain">
        {e.subsetTokens.map((t) => (
          <li key={t.id}>
            <strong>{t.name}</strong>
            {t.deviceId && <> (device {t.deviceId})</>}: {subsetText(t.subset)}
          </li>
        ))}
      </ul>
    </section>
  );
}

const short = (uuid: string) => uuid.slice(0, 8);

/** The offline runs (branches) that touched the record: what arrived, what is held, what is missing. */
function Runs({ entity: e }: { entity: Entity }) {
  const now = useNow(5000);
  if (e.branches.length === 0) return null;
  return (
    <section aria-labelledby="runs-heading">
      <h2 id="runs-heading">Offline runs</h2>
      <p className="muted">Edits one device made while offline, sent later. A step waits (is held) until the step before it has arrived.</p>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Began on</th>
              <th scope="col">Steps, in order</th>
              <th scope="col">Missing</th>
            </tr>
          </thead>
          <tbody>
            {e.branches.map((b) => (
              <tr key={b.id}>
                <th scope="row">
                  <code title={b.id}>{short(b.id)}</code>
                </th>
                <td>{b.trunkVersion === null ? 'an offline create' : `version ${b.trunkVersion}`}</td>
                <td>
                  <ul className="plain">
                    {b.changes.map((c) => (
                      <li key={c.changeId}>
                        step {c.position}:{' '}
                        {c.state === 'APPLIED' ? (
                          `version ${c.version}`
                        ) : (
                          <>
                            held{c.heldSince && <> since <Ago at={c.heldSince} now={now} /></>}
                          </>
                        )}
                      </li>
                    ))}
                  </ul>
                </td>
                <td>
                  {b.missing.length === 0 ? (
                    <span className="muted">nothing</span>
                  ) : (
                    `${b.missing.map((r) => (r.from === r.to ? `step ${r.from}` : `steps ${r.from}–${r.to}`)).join(', ')} not arrived`
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
