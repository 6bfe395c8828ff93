import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { BarChart, dayLabel } from '../components/charts.tsx';
import { DatasetNav } from '../components/dataset-nav.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { Pager, useCursorPages } from '../components/pager.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const PAGE_SIZE = 50;
export const DAYS = 30;

const Activity = graphql(`
  query DatasetActivity($dataset: String!, $days: Int) {
    dataset(name: $dataset) {
      name
      activity(days: $days) { day backlog conflictsOpened conflictsResolved }
    }
  }
`);

const Devices = graphql(`
  query DatasetDevices($dataset: String!, $first: Int, $after: String) {
    dataset(name: $dataset) {
      name
      devices(first: $first, after: $after) {
        nodes { deviceId lastChangeAt heldChanges rejectedLastDay lastPullAt }
        hasNextPage endCursor
      }
    }
  }
`);

interface Day {
  day: string;
  backlog: number;
  conflictsOpened: number;
  conflictsResolved: number;
}

/** The charts' text alternatives: what someone looking at them would take away, in a sentence. */
export function backlogSummary(days: readonly Day[]): string {
  if (days.length === 0) return 'No days to show.';
  const peak = days.reduce((a, d) => (d.backlog > a.backlog ? d : a), days[0]!);
  const now = days[days.length - 1]!.backlog;
  return peak.backlog === 0
    ? `Nothing was held in the last ${days.length} days.`
    : `Held changes at the end of each day over the last ${days.length} days: ${now} now, at most ${peak.backlog} (${dayLabel(peak.day)}).`;
}

export function conflictSummary(days: readonly Day[]): string {
  const opened = days.reduce((n, d) => n + d.conflictsOpened, 0);
  const resolved = days.reduce((n, d) => n + d.conflictsResolved, 0);
  if (opened === 0 && resolved === 0) return `No conflict was opened or resolved in the last ${days.length} days.`;
  const busiest = days.reduce((a, d) => (d.conflictsOpened > a.conflictsOpened ? d : a), days[0]!);
  return `Over the last ${days.length} days, ${opened} conflicts opened and ${resolved} resolved${busiest.conflictsOpened > 0 ? `; the most opened on ${dayLabel(busiest.day)} (${busiest.conflictsOpened})` : ''}.`;
}

/** Who sends to a dataset and how it goes: per device its last change and pull, what is held and refused; the backlog and conflicts per day. */
export function DevicesView({ dataset }: { dataset: string }) {
  const { token } = useSession();
  const now = useNow(30_000);
  const pages = useCursorPages();
  const activity = useQuery({ queryKey: ['dataset', dataset, 'activity'], queryFn: () => request(token, Activity, { dataset, days: DAYS }) });
  const devices = useQuery({
    queryKey: ['dataset', dataset, 'devices', pages.after],
    queryFn: () => request(token, Devices, { dataset, first: PAGE_SIZE, after: pages.after }),
    placeholderData: keepPreviousData,
  });
  const days = activity.data?.dataset?.activity ?? [];
  const page = devices.data?.dataset?.devices;
  const base = `/datasets/${encodeURIComponent(dataset)}`;
  const missing = (activity.data && !activity.data.dataset) || (devices.data && !devices.data.dataset);
  return (
    <Page title={`Devices and activity: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <DatasetNav dataset={dataset} />
      {missing ? (
        <p role="alert" className="error">
          There is no dataset named {dataset}.
        </p>
      ) : (
        <>
          <h2>Last {DAYS} days</h2>
          {!activity.data ? (
            <QueryState pending={activity.isPending} error={activity.error} what="the activity" />
          ) : (
            <div className="charts">
              <BarChart title="Held backlog at the end of each day" summary={backlogSummary(days)} data={days} series={[{ key: 'backlog', label: 'Held changes', className: 'series-backlog' }]} />
              <BarChart
                title="Conflicts opened and resolved per day"
                summary={conflictSummary(days)}
                data={days}
                series={[
                  { key: 'conflictsOpened', label: 'Opened', className: 'series-opened' },
                  { key: 'conflictsResolved', label: 'Resolved', className: 'series-resolved' },
                ]}
              />
            </div>
          )}
          <h2>Devices</h2>
          {!page ? (
            <QueryState pending={devices.isPending} error={devices.error} what="the devices" />
          ) : page.nodes.length === 0 ? (
            <p className="empty" role="status">
              No device has sent a change to or pulled this dataset yet.
            </p>
          ) : (
            <div className="table-wrap">
              <table aria-busy={devices.isFetching}>
                <caption className="visually-hidden">Devices of {dataset}, by id</caption>
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Last change received</th>
                    <th scope="col" className="num">
                      Held now
                    </th>
                    <th scope="col" className="num">
                      Refused in the last day
                    </th>
                    <th scope="col">Last pull</th>
                  </tr>
                </thead>
                <tbody>
                  {page.nodes.map((d) => (
                    <tr key={d.deviceId}>
                      <th scope="row">{d.deviceId}</th>
                      <td>{d.lastChangeAt ? <Ago at={d.lastChangeAt} now={now} /> : <span className="muted">never</span>}</td>
                      <td className="num">{d.heldChanges}</td>
                      <td className="num">
                        {d.rejectedLastDay > 0 ? (
                          <Link href={`${base}/rejected/${encodeURIComponent(d.deviceId)}`} aria-label={`${d.rejectedLastDay} refused from ${d.deviceId}: show them`}>
                            {d.rejectedLastDay}
                          </Link>
                        ) : (
                          0
                        )}
                      </td>
                      <td>{d.lastPullAt ? <Ago at={d.lastPullAt} now={now} /> : <span className="muted">never</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager what="devices" page={pages.page} hasNext={page?.hasNextPage ?? false} busy={devices.isFetching} onNext={() => pages.next(page?.endCursor)} onPrevious={pages.previous} />
        </>
      )}
    </Page>
  );
}
