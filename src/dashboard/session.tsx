import { useQuery, useQueryClient } from '@tanstack/react-query';
import type { ResultOf } from 'gql.tada';
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { ApiError, request } from './api.ts';
import { graphql } from './graphql.ts';
import { SignIn } from './views/sign-in.tsx';

/** The token lives in sessionStorage: it survives a reload of the tab, not the closing of the browser. */
const TOKEN_KEY = 'entity-sync.token';

export const ViewerQuery = graphql(`
  query Viewer {
    viewer { tokenId role deviceId datasets }
  }
`);
export type Viewer = ResultOf<typeof ViewerQuery>['viewer'];

export interface Session {
  token: string;
  viewer: Viewer;
  /** Reviewers and admins read entities, the backlog and the stats; collectors only submit. */
  mayReview: boolean;
  isAdmin: boolean;
  signOut(reason?: string): void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionGate');
  return session;
}

const REVOKED = 'You were signed out: the service no longer accepts this token (it may have been revoked).';

/** Shows the sign-in form until a token the service accepts is given, then the dashboard with that session. */
export function SessionGate({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [notice, setNotice] = useState<string | null>(null);
  const viewer = useQuery({ queryKey: ['viewer', token], queryFn: () => request(token!, ViewerQuery), enabled: token !== null, retry: false, staleTime: Infinity });

  const signOut = useCallback(
    (reason?: string) => {
      sessionStorage.removeItem(TOKEN_KEY);
      setToken(null);
      setNotice(reason ?? null);
      queryClient.clear();
    },
    [queryClient],
  );

  const signIn = useCallback(
    async (secret: string) => {
      // Checked before it is kept: a wrong token is refused here, with the service's reason.
      await queryClient.fetchQuery({ queryKey: ['viewer', secret], queryFn: () => request(secret, ViewerQuery), retry: false, staleTime: Infinity });
      sessionStorage.setItem(TOKEN_KEY, secret);
      setNotice(null);
      setToken(secret);
    },
    [queryClient],
  );

  // Any request refused with 401 later on (a revoked token) ends the session, with a reason.
  useEffect(() => {
    const isRefused = (error: unknown) => error instanceof ApiError && error.kind === 'unauthenticated';
    const offQueries = queryClient.getQueryCache().subscribe((event) => {
      if (event.type === 'updated' && event.action.type === 'error' && isRefused(event.action.error) && token !== null) signOut(REVOKED);
    });
    const offMutations = queryClient.getMutationCache().subscribe((event) => {
      if (event.type === 'updated' && event.action.type === 'error' && isRefused(event.action.error) && token !== null) signOut(REVOKED);
    });
    return () => {
      offQueries();
      offMutations();
    };
  }, [queryClient, signOut, token]);

  if (token === null) return <SignIn onSignIn={signIn} notice={notice} />;
  if (viewer.isPending) return <p className="loading" role="status">Checking your token…</p>;
  if (viewer.isError) {
    return (
      <main className="narrow">
        <h1>Cannot check your token</h1>
        <p role="alert">{viewer.error.message}</p>
        <button type="button" onClick={() => void viewer.refetch()}>Try again</button> <button type="button" onClick={() => signOut()}>Sign out</button>
      </main>
    );
  }
  const v = viewer.data.viewer;
  const session: Session = { token, viewer: v, mayReview: v.role !== 'COLLECTOR', isAdmin: v.role === 'ADMIN', signOut };
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
