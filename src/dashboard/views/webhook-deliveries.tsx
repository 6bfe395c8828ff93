import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Page, QueryState } from '../components/page.tsx';
import { Ago, duration, useNow } from '../components/time.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';
import { EVENT_LABELS } from './webhooks.tsx';

const Deliveries = graphql(`
  query WebhookDeliveries($id: ID!, $status: WebhookDeliveryStatus, $after: String) {
    webhookDeliveries(webhookId: $id, status: $status, first: 20, after: $after) {
      nodes { id eventId eventType dataset entityId status attempts lastStatusCode lastError createdAt nextAttemptAt deliveredAt }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const WebhookUrl = graphql(`
  query WebhookUrls {
    webhooks { id url }
  }
`);

type Filter = 'ALL' | 'PENDING' | 'FAILED';
const FILTERS: [Filter, string][] = [
  ['ALL', 'All'],
  ['PENDING', 'Pending only'],
  ['FAILED', 'Failed only'],
];
const STATUS_WORDS = { PENDING: 'Pending', DELIVERED: 'Delivered', FAILED: 'Failed' } as const;

/** One webhook's deliveries, newest first, 20 at a time: status, attempts and why the last one failed. Re-read every few seconds. */
export function WebhookDeliveriesView({ id }: { id: string }) {
  const { token } = useSession();
  const now = useNow(5000);
  const [filter, setFilter] = useState<Filter>('ALL');
  const legendId = useId();
  const hooks = useQuery({ queryKey: ['webhooks', 'urls'], queryFn: () => request(token, WebhookUrl) });
  const url = hooks.data?.webhooks.find((w) => w.id === id)?.url;
  const deliveries = useInfiniteQuery({
    queryKey: ['webhooks', id, 'deliveries', filter],
    queryFn: ({ pageParam }) => request(token, Deliveries, { id, status: filter === 'ALL' ? null : filter, after: pageParam }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => (last.webhookDeliveries.pageInfo.hasNextPage ? last.webhookDeliveries.pageInfo.endCursor : null),
    refetchInterval: 3000,
  });
  const rows = deliveries.data?.pages.flatMap((p) => p.webhookDeliveries.nodes) ?? [];
  return (
    <Page title={url ? `Deliveries to ${url}` : 'Deliveries'} crumbs={<Link href="/webhooks">Webhooks</Link>}>
      {hooks.data && !url && <p role="alert">This webhook does not exist (any more).</p>}
      <fieldset className="filter" aria-labelledby={legendId}>
        <legend id={legendId}>Show</legend>
        {FILTERS.map(([value, label]) => (
          <label key={value}>
            <input type="radio" name="delivery-filter" value={value} checked={filter === value} onChange={() => setFilter(value)} /> {label}
          </label>
        ))}
      </fieldset>
      {!deliveries.data ? (
        <QueryState pending={deliveries.isPending} error={deliveries.error} what="the deliveries" />
      ) : rows.length === 0 ? (
        <p className="empty" role="status">
          No deliveries{filter === 'ALL' ? ' yet' : ` ${filter === 'FAILED' ? 'failed' : 'pending'}`}.
        </p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Deliveries, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Record</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">Attempts</th>
                <th scope="col">Last error</th>
                <th scope="col">Committed</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id}>
                  <th scope="row">
                    {EVENT_LABELS[d.eventType]} <code title={`webhook-id ${d.eventId}`}>{d.eventId.slice(0, 8)}</code>
                  </th>
                  <td>{d.entityId ? <Link href={`/entities/${d.entityId}`}>{d.dataset}: {d.entityId.slice(0, 8)}</Link> : d.dataset}</td>
                  <td>
                    <span className={`tag ${d.status === 'FAILED' ? 'hard' : d.status === 'PENDING' ? 'soft' : 'ok'}`}>{STATUS_WORDS[d.status]}</span>
                    {d.status === 'PENDING' && d.nextAttemptAt && d.attempts > 0 && <span className="muted"> next try in {duration(Date.parse(d.nextAttemptAt) - now)}</span>}
                  </td>
                  <td className="num">{d.attempts}</td>
                  <td>{d.lastError ? <span className="value">{d.lastError}</span> : <span className="muted">{d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : '–'}</span>}</td>
                  <td>
                    <Ago at={d.createdAt} now={now} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deliveries.hasNextPage && (
        <button type="button" onClick={() => void deliveries.fetchNextPage()} disabled={deliveries.isFetchingNextPage}>
          Show older deliveries
        </button>
      )}
    </Page>
  );
}
