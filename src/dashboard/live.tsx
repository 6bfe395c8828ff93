import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { GRAPHQL_WS_URL, request } from './api.ts';
import { graphql } from './graphql.ts';
import { useSession } from './session.tsx';

/**
 * Live updates over graphql-ws (the token in connection_init, as browsers cannot set socket
 * headers). Events carry ids only; each one marks the queries of its dataset and entity stale,
 * so what is on screen is re-read through the API (never patched by hand from the event).
 */

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'refused';

const LiveContext = createContext<{ state: LiveState; reconnect(): void }>({ state: 'connecting', reconnect: () => {} });
export const useLive = () => useContext(LiveContext);

const DatasetNames = graphql(`
  query DatasetNames {
    datasets { name }
  }
`);

const EVENTS = [
  graphql(`subscription ConflictDetected($dataset: String!) { conflictDetected(dataset: $dataset) { entityId } }`),
  graphql(`subscription ChangeHeld($dataset: String!) { changeHeld(dataset: $dataset) { entityId } }`),
  graphql(`subscription BacklogFlushed($dataset: String!) { backlogFlushed(dataset: $dataset) { entityId } }`),
  graphql(`subscription EntityChanged($dataset: String!) { entityChanged(dataset: $dataset) { entityId } }`),
  graphql(`subscription ConflictResolved($dataset: String!) { conflictResolved(dataset: $dataset) { entityId } }`),
].map((document) => print(document));

/** The server closes a socket whose credentials it refuses with 44xx: retrying with the same token cannot help. */
const isRefusal = (event: unknown) => typeof event === 'object' && event !== null && 'code' in event && (event.code === 4401 || event.code === 4403);

/** Reconnect soon, then back off up to 10 s, with jitter so many dashboards do not return at once. */
const retryWait = (retries: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries) * (0.5 + Math.random() / 2)));

/** Collects the ids events name and marks their queries stale in one go (a burst of events costs one refetch). */
function invalidator(queryClient: QueryClient) {
  const datasets = new Set<string>();
  const entities = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    timer = null;
    for (const name of datasets) void queryClient.invalidateQueries({ queryKey: ['dataset', name] });
    for (const id of entities) void queryClient.invalidateQueries({ queryKey: ['entity', id] });
    if (datasets.size > 0) void queryClient.invalidateQueries({ queryKey: ['overview'] });
    datasets.clear();
    entities.clear();
  };
  return (dataset: string, entityId: string | undefined) => {
    datasets.add(dataset);
    if (entityId) entities.add(entityId);
    timer ??= setTimeout(flush, 200);
  };
}

export function LiveProvider({ children }: { children: ReactNode }) {
  const { token } = useSession();
  const queryClient = useQueryClient();
  const [state, setState] = useState<LiveState>('connecting');
  const [client, setClient] = useState<Client | null>(null);
  const [generation, setGeneration] = useState(0);
  const names = useQuery({ queryKey: ['dataset-names'], queryFn: () => request(token, DatasetNames) });

  useEffect(() => {
    let connectedBefore = false;
    let silence: ReturnType<typeof setTimeout> | undefined;
    const c = createClient({
      url: GRAPHQL_WS_URL,
      connectionParams: { authorization: `Bearer ${token}` },
      lazy: false,
      retryAttempts: Infinity,
      retryWait,
      shouldRetry: (event) => !isRefusal(event),
      onNonLazyError: () => {},
      on: {
        connecting: (isRetry) => setState(isRetry ? 'reconnecting' : 'connecting'),
        connected: () => {
          setState('live');
          // Events sent while the socket was down are lost: read everything on screen again.
          if (connectedBefore) void queryClient.invalidateQueries();
          connectedBefore = true;
        },
        // The server pings every 12 s by default: a socket silent for much longer is dead even if the browser has not noticed.
        ping: () => {
          clearTimeout(silence);
          silence = setTimeout(() => c.terminate(), 45_000);
        },
        closed: (event) => {
          clearTimeout(silence);
          if (isRefusal(event)) {
            setState('refused');
            // A revoked token: the viewer query now gets 401, which signs out with a reason.
            void queryClient.refetchQueries({ queryKey: ['viewer', token] });
          } else {
            setState('reconnecting');
          }
        },
      },
    });
    setClient(c);
    return () => {
      clearTimeout(silence);
      setClient(null);
      void c.dispose();
    };
  }, [token, queryClient, generation]);

  const datasetNames = names.data?.datasets.map((d) => d.name).join('\n') ?? '';
  useEffect(() => {
    if (!client || datasetNames === '') return;
    const touch = invalidator(queryClient);
    const stops = datasetNames.split('\n').flatMap((dataset) =>
      EVENTS.map((query) =>
        client.subscribe<Record<string, { entityId?: string }>>(
          { query, variables: { dataset } },
          {
            next: (result) => touch(dataset, Object.values(result.data ?? {})[0]?.entityId),
            // A refused subscription (a restricted token) just brings no events.
            error: () => {},
            complete: () => {},
          },
        ),
      ),
    );
    return () => stops.forEach((stop) => stop());
  }, [client, datasetNames, queryClient]);

  return <LiveContext.Provider value={{ state, reconnect: () => setGeneration((g) => g + 1) }}>{children}</LiveContext.Provider>;
}

const WORDS: Record<LiveState, string> = {
  connecting: 'connecting…',
  live: 'on',
  reconnecting: 'reconnecting… (what you see may be out of date)',
  refused: 'refused by the service',
};

/** The connection state, announced politely to screen readers when it changes. */
export function LiveStatus() {
  const { state, reconnect } = useLive();
  return (
    <div className={`live live-${state}`}>
      <span role="status">
        <span className="dot" aria-hidden="true" /> Live updates: {WORDS[state]}
      </span>
      {state === 'refused' && (
        <button type="button" className="link" onClick={reconnect}>
          Reconnect
        </button>
      )}
    </div>
  );
}
