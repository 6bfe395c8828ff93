import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { useGraphiQL, useGraphiQLActions } from '@graphiql/react';
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { StrictMode, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

/**
 * GraphiQL bundled with its editor workers, so it loads without internet (yoga's own page pulls
 * them from a CDN). Subscriptions go over graphql-ws with the Headers tab as the connection_init
 * payload (@graphiql/toolkit passes them along), which is where the service reads a socket's token.
 */
const url = new URL('/graphql', window.location.href).toString();
const PLACEHOLDER = '<paste your API token here>';
const send = createGraphiQLFetcher({ url, subscriptionUrl: url.replace(/^http/, 'ws') });
// The placeholder is no token: sent as one, it would be refused as a wrong token (and override
// ANONYMOUS_ROLE in development). Left out, the service says that no token came.
const fetcher: Fetcher = (params, opts) => {
  const headers = Object.fromEntries(Object.entries(opts?.headers ?? {}).filter(([, value]) => !String(value).includes(PLACEHOLDER)));
  return send(params, { ...opts, headers });
};

// Signed in to the dashboard in this tab: start with its token (over headers GraphiQL kept, if told
// to); otherwise say where it goes.
const token = sessionStorage.getItem('entity-sync.token');
const headers = JSON.stringify({ Authorization: `Bearer ${token ?? PLACEHOLDER}` }, null, 2);

/**
 * GraphiQL introspects the moment it mounts, reading the Headers editor, which Monaco has not made
 * yet: the request would go without the token and be refused. So the page starts with no schema
 * and no introspection (`schema={null}`), and asks for the schema once the editor exists, with
 * the headers it shows. Later, while no schema is loaded (a refused or missing token), an edit of
 * the headers asks again, so pasting a token loads the schema without pressing Re-fetch.
 */
function IntrospectWithHeaders({ onEditorReady }: { onEditorReady: () => void }) {
  const { headerEditor, schema } = useGraphiQL((s) => ({ headerEditor: s.headerEditor, schema: s.schema }));
  const { introspect } = useGraphiQLActions();
  const loaded = useRef(false);
  loaded.current = Boolean(schema);
  useEffect(() => {
    if (!headerEditor) return;
    onEditorReady();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const listener = headerEditor.onDidChangeModelContent(() => {
      clearTimeout(timer);
      // A pause after typing or pasting: one request for the whole token, not one per key.
      timer = setTimeout(() => {
        if (!loaded.current) void introspect();
      }, 500);
    });
    return () => {
      clearTimeout(timer);
      listener.dispose();
    };
  }, [headerEditor, introspect, onEditorReady]);
  return null;
}

function Page() {
  // null: "no schema, do not introspect"; undefined: "introspect" (GraphiQL's own convention).
  const [schema, setSchema] = useState<null | undefined>(null);
  const [ready] = useState(() => () => setSchema(undefined));
  return (
    <GraphiQL fetcher={fetcher} schema={schema} initialHeaders={token ? headers : undefined} defaultHeaders={headers} defaultEditorToolsVisibility="headers">
      <IntrospectWithHeaders onEditorReady={ready} />
    </GraphiQL>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Page />
  </StrictMode>,
);
