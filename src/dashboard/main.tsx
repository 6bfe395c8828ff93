import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode, type MouseEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { Link, Route, Router, Switch, useLocation } from 'wouter';
import { useHashLocation } from 'wouter/use-hash-location';
import { ApiError } from './api.ts';
import { AddressGuard } from './components/address-guard.tsx';
import { decodeParam } from './components/dataset-nav.tsx';
import { LiveProvider, LiveStatus } from './live.tsx';
import { SessionGate, useSession } from './session.tsx';
import { BacklogView } from './views/backlog.tsx';
import { ConflictInboxView } from './views/conflict-inbox.tsx';
import { DatasetsView } from './views/datasets.tsx';
import { DevicesView } from './views/devices.tsx';
import { EntityView } from './views/entity.tsx';
import { RecordsView } from './views/records.tsx';
import { RejectedView } from './views/rejected.tsx';
import { TokensView } from './views/tokens.tsx';
import { WebhookDeliveriesView } from './views/webhook-deliveries.tsx';
import { WebhooksView } from './views/webhooks.tsx';
import './styles.css';

// Server state only: every view reads through the API; live events mark queries stale (live.tsx).
// A refused token or a forbidden field will not change by asking again; a dropped connection may.
const retry = (failures: number, error: Error) => failures < 2 && !(error instanceof ApiError && (error.kind === 'unauthenticated' || error.kind === 'forbidden'));
const queryClient = new QueryClient({ defaultOptions: { queries: { retry, refetchOnWindowFocus: true, staleTime: 2000 } } });

/** Routes live in the hash (#/datasets/trees/conflicts): the server serves one page and needs no fallback. */
function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <SessionGate>
        <LiveProvider>
          <Router hook={useHashLocation}>
            <Shell />
          </Router>
        </LiveProvider>
      </SessionGate>
    </QueryClientProvider>
  );
}

function skipToContent(event: MouseEvent) {
  event.preventDefault();
  document.querySelector<HTMLElement>('main h1')?.focus();
}

function Shell() {
  const { viewer, mayReview, isAdmin, signOut } = useSession();
  const [location] = useLocation();
  // Said as a word ("Signed in as reviewer"), not shouted as the enum is spelt.
  const who = `${viewer.role.toLowerCase()}${viewer.deviceId ? ` for device ${viewer.deviceId}` : ''}${viewer.datasets ? ` (${viewer.datasets.join(', ')})` : ''}`;
  return (
    <>
      <a className="skip" href="#/" onClick={skipToContent}>
        Skip to content
      </a>
      <header className="top">
        <Link href="/" className="brand">
          entity-sync
        </Link>
        <nav aria-label="Main">
          <Link href="/">Datasets</Link>
          {isAdmin && <Link href="/tokens">Tokens</Link>}
          {isAdmin && <Link href="/webhooks">Webhooks</Link>}
          <a href="/graphql">GraphiQL</a>
        </nav>
        <LiveStatus />
        <div className="who">
          <span>
            Signed in as <strong>{who}</strong>
          </span>
          <button type="button" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        <AddressGuard key={location}>
        <Switch>
          <Route path="/">
            <DatasetsView />
          </Route>
          {mayReview && <Route path="/datasets/:name/conflicts">{(p) => <ConflictInboxView dataset={decodeURIComponent(p.name)} />}</Route>}
          {mayReview && <Route path="/datasets/:name/backlog">{(p) => <BacklogView dataset={decodeURIComponent(p.name)} />}</Route>}
          {mayReview && <Route path="/datasets/:name/records">{(p) => <RecordsView key={p.name} dataset={decodeParam(p.name)} />}</Route>}
          {mayReview && <Route path="/datasets/:name/rejected/:device?">{(p) => <RejectedView key={`${p.name}/${p.device ?? ''}`} dataset={decodeParam(p.name)} device={p.device ? decodeParam(p.device) : undefined} />}</Route>}
          {mayReview && <Route path="/datasets/:name/devices">{(p) => <DevicesView key={p.name} dataset={decodeParam(p.name)} />}</Route>}
          {mayReview && <Route path="/entities/:id">{(p) => <EntityView id={p.id} />}</Route>}
          {isAdmin && (
            <Route path="/webhooks">
              <WebhooksView />
            </Route>
          )}
          {isAdmin && <Route path="/webhooks/:id">{(p) => <WebhookDeliveriesView id={p.id} />}</Route>}
          {isAdmin && (
            <Route path="/tokens">
              <TokensView />
            </Route>
          )}
          <Route>
            <h1 tabIndex={-1}>Nothing here</h1>
            <p>
              This page does not exist{mayReview ? '' : ' for this token'}. <Link href="/">Back to the datasets</Link>.
            </p>
          </Route>
        </Switch>
        </AddressGuard>
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
