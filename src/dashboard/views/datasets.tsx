import { useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Ago, useNow } from '../components/time.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const Overview = graphql(`
  query Overview {
    datasets {
      name
      properties
      stats { entities hardConflicts softConflicts heldChanges oldestHeldSince }
    }
  }
`);

const Names = graphql(`
  query DatasetList {
    datasets { name properties }
  }
`);

/** Datasets at a glance: entities, open conflicts, held changes and how long the oldest has waited. */
export function DatasetsView() {
  const session = useSession();
  return <Page title="Datasets">{session.mayReview ? <ReviewerOverview /> : <CollectorOverview />}</Page>;
}

function ReviewerOverview() {
  const { token } = useSession();
  const now = useNow(5000);
  const overview = useQuery({ queryKey: ['overview'], queryFn: () => request(token, Overview) });
  if (!overview.data) return <QueryState pending={overview.isPending} error={overview.error} what="the datasets" />;
  const datasets = overview.data.datasets;
  if (datasets.length === 0) return <p>There are no datasets yet. An administrator creates them with the <code>createDataset</code> mutation.</p>;
  return (
    <div className="table-wrap">
      <table className="overview">
        <caption className="visually-hidden">Datasets with their records, open conflicts and held changes</caption>
        <thead>
          <tr>
            <th scope="col">Dataset</th>
            <th scope="col" className="num">Records</th>
            <th scope="col">Open conflicts</th>
            <th scope="col">Held changes</th>
            <th scope="col">Oldest held</th>
          </tr>
        </thead>
        <tbody>
          {datasets.map((d) => {
            const s = d.stats;
            const open = s ? s.hardConflicts + s.softConflicts : 0;
            return (
              <tr key={d.name}>
                <th scope="row">
                  <Link href={`/datasets/${encodeURIComponent(d.name)}/records`} aria-label={`Records of ${d.name}`}>
                    {d.name}
                  </Link>
                </th>
                <td className="num">{s?.entities ?? '–'}</td>
                <td>
                  <Link href={`/datasets/${encodeURIComponent(d.name)}/conflicts`} aria-label={`Conflict inbox of ${d.name}: ${open} open`}>
                    {open === 0 ? 'none' : `${open} open`}
                  </Link>
                  {s && open > 0 && (
                    <span className="counts">
                      {' '}
                      {s.hardConflicts > 0 && <span className="tag hard">{s.hardConflicts} hard</span>}{' '}
                      {s.softConflicts > 0 && <span className="tag soft">{s.softConflicts} soft</span>}
                    </span>
                  )}
                </td>
                <td>
                  <Link href={`/datasets/${encodeURIComponent(d.name)}/backlog`} aria-label={`Held backlog of ${d.name}: ${s?.heldChanges ?? 0} held`}>
                    {s && s.heldChanges > 0 ? `${s.heldChanges} held` : 'none'}
                  </Link>
                </td>
                <td>{s?.oldestHeldSince ? <Ago at={s.oldestHeldSince} now={now} /> : <span className="muted">–</span>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A collector's token submits from a device; it may not read entities, so nothing of them is offered. */
function CollectorOverview() {
  const { token } = useSession();
  const list = useQuery({ queryKey: ['dataset', '*', 'names'], queryFn: () => request(token, Names) });
  return (
    <>
      <p className="notice">
        This is a <strong>collector</strong> token: it sends changes from a field device. Reviewing entities, conflicts and the held backlog needs a reviewer's or an administrator's token.
      </p>
      <h2>Datasets this token may send changes to</h2>
      {!list.data ? (
        <QueryState pending={list.isPending} error={list.error} what="the datasets" />
      ) : list.data.datasets.length === 0 ? (
        <p>None.</p>
      ) : (
        <ul className="plain">
          {list.data.datasets.map((d) => (
            <li key={d.name}>
              <strong>{d.name}</strong>: {d.properties.join(', ') || 'no properties declared'}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
