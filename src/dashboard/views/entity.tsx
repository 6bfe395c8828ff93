import { useQuery } from '@tanstack/react-query';
import type { ResultOf } from 'gql.tada';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Page, QueryState } from '../components/page.tsx';
import { ResolvePanel } from '../components/resolve-panel.tsx';
import { subsetText } from '../components/subset.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { PropertyRow } from '../components/values.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';
import { Timeline } from './timeline.tsx';

const EntityQuery = graphql(`
  query Entity($id: ID!) {
    entity(id: $id) {
      id label data version conflict conflictingProperties lastConflictAt deleted
      dataset { name }
      subsetTokens(first: 20) { nodes { id name deviceId subset { property values } } pageInfo { hasNextPage } }
      branches { id trunkVersion missing { from to } changes { position changeId state version heldSince } }
      conflictDetails {
        property
        before { value version deviceId at source conflicting }
        now { value version deviceId at source conflicting }
        writes { value version deviceId at source conflicting }
      }
    }
  }
`);

type Entity = NonNullable<ResultOf<typeof EntityQuery>['entity']>;

/** One record: where it stands now, its open conflict and the reviewer's verdict on it, its offline runs and its history. */
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
      <ResolvePanel entity={e} refetch={() => void entity.refetch()} />
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

function CurrentValues({ data }: { data: Record<string, unknown> }) {
  const entries = Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1));
  if (entries.length === 0) return <p className="muted">No properties set.</p>;
  return (
    <dl className="values">
      {entries.map(([k, v]) => (
        <PropertyRow key={k} name={k} value={v} />
      ))}
    </dl>
  );
}

/** The devices (tokens with a subset) whose share holds the record now: the first 20, oldest first. */
function Devices({ entity: e }: { entity: Entity }) {
  const { nodes, pageInfo } = e.subsetTokens;
  if (nodes.length === 0) return null;
  return (
    <section aria-labelledby="devices-heading">
      <h2 id="devices-heading">In the share of</h2>
      <ul className="plain">
        {nodes.map((t) => (
          <li key={t.id}>
            <strong>{t.name}</strong>
            {t.deviceId && <> (device {t.deviceId})</>}: {subsetText(t.subset)}
          </li>
        ))}
      </ul>
      {pageInfo.hasNextPage && <p className="muted">And more: the first {nodes.length} are shown.</p>}
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
