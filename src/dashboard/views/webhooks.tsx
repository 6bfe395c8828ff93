import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ResultOf } from 'gql.tada';
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { request } from '../api.ts';
import { Page, QueryState } from '../components/page.tsx';
import { graphql } from '../graphql.ts';
import { useSession } from '../session.tsx';

const Webhooks = graphql(`
  query Webhooks {
    webhooks { id url datasets events createdAt deliveryCounts { pending delivered failed } }
    datasets { name }
  }
`);

const CreateWebhook = graphql(`
  mutation CreateWebhook($url: String!, $datasets: [String!], $events: [WebhookEvent!]!) {
    createWebhook(url: $url, datasets: $datasets, events: $events) {
      __typename
      ... on MutationCreateWebhookSuccess { data { secret webhook { id url } } }
      ... on Error { code message }
    }
  }
`);

const DeleteWebhook = graphql(`
  mutation DeleteWebhook($id: ID!) {
    deleteWebhook(id: $id) {
      __typename
      ... on MutationDeleteWebhookSuccess { data { id url } }
      ... on Error { message }
    }
  }
`);

type Webhook = ResultOf<typeof Webhooks>['webhooks'][number];
type EventType = Webhook['events'][number];

/** The event types in words, in the order they are offered. */
export const EVENT_LABELS: Record<EventType, string> = {
  CONFLICT_DETECTED: 'Conflict detected',
  CONFLICT_RESOLVED: 'Conflict resolved',
  CHANGE_HELD: 'Change held',
  BACKLOG_FLUSHED: 'Backlog flushed',
  ENTITY_CHANGED: 'Record changed',
  CHANGE_REJECTED: 'Change refused',
};

/** Administrators register the endpoints that are sent events, see how their deliveries go, and delete them. */
export function WebhooksView() {
  const { token } = useSession();
  const list = useQuery({ queryKey: ['webhooks'], queryFn: () => request(token, Webhooks), refetchInterval: 5000 });
  const [secret, setSecret] = useState<{ url: string; secret: string } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <Page title="Webhooks" crumbs={<Link href="/">Datasets</Link>}>
      <p>
        A webhook is an endpoint outside the service that is sent the chosen events of the chosen datasets as they are committed, signed with its secret (Standard Webhooks headers
        <code> webhook-id</code>, <code>webhook-timestamp</code>, <code>webhook-signature</code>), and retried until it answers or its retry time runs out.
      </p>
      {secret && <SecretOnce {...secret} onDone={() => setSecret(null)} />}
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      {!list.data ? (
        <QueryState pending={list.isPending} error={list.error} what="the webhooks" />
      ) : (
        <>
          <WebhookTable webhooks={list.data.webhooks} onDeleted={(url) => setNotice(`The webhook to ${url} was deleted.`)} />
          <CreateForm datasets={list.data.datasets.map((d) => d.name)} onCreated={(made) => (setNotice(null), setSecret(made))} />
        </>
      )}
    </Page>
  );
}

function WebhookTable({ webhooks, onDeleted }: { webhooks: Webhook[]; onDeleted: (url: string) => void }) {
  const { token } = useSession();
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState<Webhook | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    if (confirming) dialog.current?.showModal();
    else dialog.current?.close();
  }, [confirming]);
  const remove = useMutation({
    mutationFn: (id: string) => request(token, DeleteWebhook, { id }),
    onSuccess: (data) => {
      const r = data.deleteWebhook;
      setConfirming(null);
      if (r.__typename === 'MutationDeleteWebhookSuccess') onDeleted(r.data.url);
      void queryClient.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  if (webhooks.length === 0) return <p className="empty" role="status">No webhooks yet. Create one below.</p>;
  return (
    <>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Webhooks, oldest first, with their deliveries</caption>
          <thead>
            <tr>
              <th scope="col">Endpoint</th>
              <th scope="col">Datasets</th>
              <th scope="col">Events</th>
              <th scope="col">Deliveries</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {webhooks.map((w) => {
              const rowId = `webhook-${w.id}`;
              const c = w.deliveryCounts;
              return (
                <tr key={w.id}>
                  <th scope="row" id={rowId}>
                    <code className="value">{w.url}</code>
                  </th>
                  <td>{w.datasets ? w.datasets.join(', ') : <span className="muted">all datasets</span>}</td>
                  <td>{w.events.map((e) => EVENT_LABELS[e]).join(', ')}</td>
                  <td>
                    <Link href={`/webhooks/${w.id}`} aria-label={`Deliveries to ${w.url}: ${c.delivered} delivered, ${c.pending} pending, ${c.failed} failed`}>
                      {c.delivered} delivered, {c.pending} pending
                    </Link>
                    {c.failed > 0 && <span className="tag hard">{c.failed} failed</span>}
                  </td>
                  <td>
                    <button type="button" className="danger" aria-describedby={rowId} onClick={() => setConfirming(w)}>
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <dialog ref={dialog} aria-labelledby={titleId} onClose={() => setConfirming(null)}>
        {confirming && (
          <>
            <h2 id={titleId}>Delete the webhook to {confirming.url}?</h2>
            <p>It is sent nothing more, and its deliveries are dropped, those not yet delivered included. This cannot be undone.</p>
            {remove.isError && (
              <p role="alert" className="error">
                {remove.error.message}
              </p>
            )}
            <div className="actions">
              <button type="button" className="danger" onClick={() => remove.mutate(confirming.id)} disabled={remove.isPending}>
                Delete webhook
              </button>{' '}
              <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                Cancel
              </button>
            </div>
          </>
        )}
      </dialog>
    </>
  );
}

function CreateForm({ datasets, onCreated }: { datasets: string[]; onCreated: (made: { url: string; secret: string }) => void }) {
  const { token } = useSession();
  const queryClient = useQueryClient();
  const [url, setUrl] = useState('');
  const [everyDataset, setEveryDataset] = useState(true);
  const [chosen, setChosen] = useState<string[]>([]);
  const [events, setEvents] = useState<EventType[]>(['CONFLICT_DETECTED']);
  const [refusal, setRefusal] = useState<string | null>(null);
  const headingId = useId();
  const create = useMutation({
    mutationFn: () => request(token, CreateWebhook, { url, datasets: everyDataset ? null : chosen, events }),
    onSuccess: (data) => {
      const r = data.createWebhook;
      if (r.__typename !== 'MutationCreateWebhookSuccess') {
        setRefusal('message' in r ? r.message : 'The webhook was refused.');
        return;
      }
      setRefusal(null);
      setUrl('');
      onCreated({ url: r.data.webhook.url, secret: r.data.secret });
      void queryClient.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  const toggle = <T,>(list: T[], item: T) => (list.includes(item) ? list.filter((x) => x !== item) : [...list, item]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (events.length === 0) return setRefusal('Choose at least one event.');
    if (!everyDataset && chosen.length === 0) return setRefusal('Choose at least one dataset, or all datasets.');
    create.mutate();
  };
  return (
    <section aria-labelledby={headingId} className="panel">
      <h2 id={headingId}>New webhook</h2>
      <form onSubmit={submit} className="stack">
        <label>
          Endpoint URL
          <input type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://example.org/entity-sync" aria-invalid={refusal !== null} />
        </label>
        <fieldset>
          <legend>Datasets</legend>
          <label>
            <input type="radio" name="scope" checked={everyDataset} onChange={() => setEveryDataset(true)} /> All datasets
          </label>
          <label>
            <input type="radio" name="scope" checked={!everyDataset} onChange={() => setEveryDataset(false)} /> Only these:
          </label>
          {datasets.map((name) => (
            <label key={name}>
              <input type="checkbox" disabled={everyDataset} checked={chosen.includes(name)} onChange={() => setChosen(toggle(chosen, name))} /> {name}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Events</legend>
          {(Object.keys(EVENT_LABELS) as EventType[]).map((e) => (
            <label key={e}>
              <input type="checkbox" checked={events.includes(e)} onChange={() => setEvents(toggle(events, e))} /> {EVENT_LABELS[e]}
            </label>
          ))}
        </fieldset>
        {(refusal || create.isError) && (
          <p role="alert" className="error">
            {refusal ?? create.error?.message}
          </p>
        )}
        <button type="submit" disabled={create.isPending}>
          Create webhook
        </button>
      </form>
    </section>
  );
}

/** The signing secret, shown this once: the service never shows it again. */
function SecretOnce({ url, secret, onDone }: { url: string; secret: string; onDone: () => void }) {
  const headingId = useId();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section role="region" aria-labelledby={headingId} className="notice secret">
      <h2 id={headingId} ref={heading} tabIndex={-1}>
        Signing secret for {url}
      </h2>
      <p>Copy it now into the receiver: it is shown only this once. The receiver verifies each request&apos;s <code>webhook-signature</code> with it.</p>
      <p>
        <code aria-label="Signing secret" className="value">
          {secret}
        </code>
      </p>
      <button type="button" onClick={onDone}>
        I have copied it
      </button>
    </section>
  );
}
