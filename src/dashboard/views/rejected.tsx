import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { DatasetNav } from '../components/dataset-nav.tsx';
import { Page, QueryState } from '../components/page.tsx';
import { Pager, useCursorPages } from '../components/pager.tsx';
import { Ago, useNow } from '../components/time.tsx';
import { ChangeSets } from '../components/change-sets.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const PAGE_SIZE = 25;

const Rejected = graphql(`
  query RejectedChanges($dataset: String!, $deviceId: String, $first: Int, $after: String) {
    rejectedChanges(dataset: $dataset, deviceId: $deviceId, first: $first, after: $after) {
      nodes { id deviceId entityId receivedAt errorCode errorMessage payload }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

/** What the service refused in a dataset, newest first: which device, when, why (code and words) and what the change would have set. */
export function RejectedView({ dataset, device }: { dataset: string; device?: string }) {
  const { token } = useSession();
  const now = useNow(30_000);
  const [deviceId, setDeviceId] = useState(device ?? '');
  const [draft, setDraft] = useState(device ?? '');
  const pages = useCursorPages();
  const inputId = useId();
  const rejected = useQuery({
    queryKey: ['dataset', dataset, 'rejected', deviceId, pages.after],
    // The answer carries the device and page it is for: while the next one loads, the caption describes the rows shown.
    queryFn: async () => ({ ...(await request(token, Rejected, { dataset, deviceId: deviceId || null, first: PAGE_SIZE, after: pages.after })), deviceId, page: pages.page }),
    placeholderData: keepPreviousData,
  });
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setDeviceId(draft.trim());
    pages.reset();
  };
  const rows = rejected.data?.rejectedChanges.nodes ?? [];
  const shown = rejected.data ?? { deviceId, page: pages.page };
  return (
    <Page title={`Refused changes: ${dataset}`} crumbs={<Link href="/">Datasets</Link>}>
      <DatasetNav dataset={dataset} />
      <p>Changes the service refused, newest first. A refused change was not applied: its device has to correct it and send it again.</p>
      <form role="search" aria-label="Refused changes of one device" className="filters" onSubmit={apply}>
        <label htmlFor={inputId}>Device</label>
        <input id={inputId} value={draft} maxLength={200} placeholder="every device" onChange={(e) => setDraft(e.target.value)} />
        <div className="actions">
          <button type="submit">Show</button>
        </div>
      </form>
      {!rejected.data ? (
        <QueryState pending={rejected.isPending} error={rejected.error} what="the refused changes" />
      ) : rows.length === 0 ? (
        <p className="empty" role="status">
          {shown.deviceId ? `Nothing from ${shown.deviceId} was refused.` : 'Nothing was refused.'}
        </p>
      ) : (
        <div className="table-wrap">
          <table aria-busy={rejected.isFetching}>
            <caption className="visually-hidden">
              Refused changes in {dataset}
              {shown.deviceId ? ` from ${shown.deviceId}` : ''}, newest first, page {shown.page}
            </caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Device</th>
                <th scope="col">Why</th>
                <th scope="col">What it would have set</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={`${c.id}-${c.receivedAt}`}>
                  <th scope="row">
                    <Ago at={c.receivedAt} now={now} />
                  </th>
                  <td>{c.deviceId ?? <span className="muted">none named</span>}</td>
                  <td>
                    <code className="code">{c.errorCode}</code>
                    <div>{c.errorMessage}</div>
                  </td>
                  <td>
                    <ChangeSets payload={c.payload} entityId={c.entityId} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager
        what="refused changes"
        page={pages.page}
        hasNext={rejected.data?.rejectedChanges.pageInfo.hasNextPage ?? false}
        busy={rejected.isFetching}
        onNext={() => pages.next(rejected.data?.rejectedChanges.pageInfo.endCursor)}
        onPrevious={pages.previous}
      />
    </Page>
  );
}
